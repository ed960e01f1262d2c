"""Concurrency groups across runs: cancel-in-progress stops the older run for the newer one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Until

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


async def test_a_newer_run_cancels_the_one_in_progress(
    client: httpx.AsyncClient, repository: Callable[..., Path], until: Until
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
