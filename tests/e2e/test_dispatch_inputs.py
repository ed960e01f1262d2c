"""Dispatched runs in a running embedded system: a step sees typed `inputs`, string `github.event.inputs`, and a
repository dispatch's `client_payload`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from conveyor_cli.system import EmbeddedSystem
from conveyor_runtime import RuntimeSettings

if TYPE_CHECKING:
    from tests.e2e.conftest import Until

pytestmark = pytest.mark.e2e

DISPATCHED = """
on:
  workflow_dispatch:
    inputs:
      flag:
        type: boolean
        default: false
      count:
        type: number
        default: 1
jobs:
  show:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "inputs.flag=${{ inputs.flag }} event.inputs.flag=${{ github.event.inputs.flag }}"
          echo 'json: ${{ toJSON(inputs.flag) }} ${{ toJSON(github.event.inputs.flag) }} ${{ toJSON(inputs.count) }}'
          echo "typed: ${{ inputs.flag == true }} text: ${{ github.event.inputs.flag == 'true' }}"
"""

ON_RELEASE = """
on:
  repository_dispatch:
    types: [release]
jobs:
  show:
    runs-on: ubuntu-latest
    steps:
      - run: echo "x=${{ github.event.client_payload.x }} type=${{ github.event.action }}"
"""


async def log_lines(http: httpx.AsyncClient, run_id: str, job: str) -> list[str]:
    return [line["text"] for line in (await http.get(f"/api/runs/{run_id}/jobs/{job}/logs")).json()["lines"]]


@pytest.fixture
async def client(settings: RuntimeSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The running system's API, called with the admin token the system issues when it first starts."""
    system = EmbeddedSystem(settings)
    async with system.running():
        transport = httpx.ASGITransport(app=system.api())
        headers = {"Authorization": f"Bearer {(settings.data_dir / 'admin-token').read_text()}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://conveyor", headers=headers) as http:
            yield http


async def test_dispatched_steps_see_typed_inputs_string_event_inputs_and_the_client_payload(
    client: httpx.AsyncClient, repository: Callable[..., Path], until: Until
) -> None:
    root = repository({".github/workflows/dispatched.yml": DISPATCHED, ".github/workflows/release.yml": ON_RELEASE})
    registered = await client.post("/api/repositories", json={"name": "demo", "url": str(root)})
    assert registered.status_code == 201, registered.text

    dispatched = await client.post(
        "/api/runs",
        json={
            "repository": "demo",
            "event": "workflow_dispatch",
            "workflow": "dispatched.yml",
            "inputs": {"flag": True},
        },
    )
    released = await client.post(
        "/api/runs",
        json={
            "repository": "demo",
            "event": "repository_dispatch",
            "event_type": "release",
            "client_payload": {"x": "42"},
        },
    )

    assert dispatched.status_code == 202, dispatched.text
    assert released.status_code == 202, released.text
    for accepted in (dispatched, released):
        run = await until(client, accepted.json()["id"], lambda run: run["status"] == "completed")
        assert run["conclusion"] == "success", run
    assert await log_lines(client, dispatched.json()["id"], "show") == [
        "inputs.flag=true event.inputs.flag=true",
        'json: true "true" 1',
        "typed: true text: true",
    ]
    assert await log_lines(client, released.json()["id"], "show") == ["x=42 type=release"]
