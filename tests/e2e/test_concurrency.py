"""Concurrency groups across runs: cancel-in-progress stops the older run for the newer one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conveyor_cli.system import EmbeddedSystem
from conveyor_runtime import RuntimeSettings

pytestmark = pytest.mark.e2e

WORKFLOW = """
on: push
concurrency:
  group: deploy-${{ github.ref }}
  cancel-in-progress: true
jobs:
  deploy:
    runs-on: x
    steps:
      - run: echo "deploying"; sleep 60; echo "deployed"
"""


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    system = EmbeddedSystem(RuntimeSettings(data_dir=tmp_path / "data"))
    async with system.running():
        transport = httpx.ASGITransport(app=system.api())
        async with httpx.AsyncClient(transport=transport, base_url="http://conveyor") as http:
            yield http


async def until(client: httpx.AsyncClient, run_id: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            response = await client.get(f"/api/runs/{run_id}")
            if response.status_code == 200 and ready(body := response.json()):
                return body  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)


async def test_a_newer_run_cancels_the_one_in_progress(
    client: httpx.AsyncClient, repository: Callable[..., Path]
) -> None:
    root = repository({".github/workflows/ci.yml": WORKFLOW})
    await client.post("/api/repositories", json={"name": "r", "url": str(root)})
    first = (await client.post("/api/runs", json={"repository": "r"})).json()["id"]
    await until(client, first, lambda run: bool(run["jobs"]) and run["jobs"][0]["status"] == "in_progress")

    second = (await client.post("/api/runs", json={"repository": "r"})).json()["id"]

    cancelled = await until(client, first, lambda run: run["status"] == "completed")
    assert cancelled["conclusion"] == "cancelled"
    running = await until(client, second, lambda run: bool(run["jobs"]) and run["jobs"][0]["status"] == "in_progress")
    assert running["status"] != "completed"
    assert (await client.post(f"/api/runs/{second}/cancel")).status_code == 202
    await until(client, second, lambda run: run["status"] == "completed")
