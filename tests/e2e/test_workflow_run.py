"""`on: workflow_run` from Conveyor's own runs: a completed workflow starts the workflows that wait for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from conveyor_cli.system import EmbeddedSystem
from conveyor_events import RunRequested
from conveyor_planner import WORKFLOW_RUN_CONSUMER
from conveyor_runtime import RuntimeSettings

from tests.e2e.test_webhooks import log_lines, serving

if TYPE_CHECKING:
    from tests.e2e.conftest import Until

pytestmark = pytest.mark.e2e

CI = """
name: CI
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: exit 1
"""

AFTER_CI = """
name: After CI
on:
  workflow_run:
    workflows: [CI]
    types: [completed]
jobs:
  report:
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ github.event.workflow_run.conclusion }} ${{ github.event.workflow_run.name }}"
"""


async def workflow_runs(http: httpx.AsyncClient) -> list[dict[str, object]]:
    return [run for run in (await http.get("/api/runs")).json() if run["event"] == "workflow_run"]


async def handled_every_completed_run(system: EmbeddedSystem, runs: int) -> None:
    """Wait until the workflow_run trigger has handled the `RunCompleted` of `runs` runs."""
    async with asyncio.timeout(30):
        while True:
            completed = await system.log.read(0, types=["RunCompleted"])
            checkpoint = await system.log.checkpoint(WORKFLOW_RUN_CONSUMER)
            if len(completed) >= runs and checkpoint >= completed[runs - 1].position:
                return
            await asyncio.sleep(0.05)


async def test_a_completed_workflow_runs_the_workflow_waiting_for_it_once(
    settings: RuntimeSettings, repository: Callable[..., Path], until: Until
) -> None:
    root = repository({".github/workflows/ci.yml": CI, ".github/workflows/after-ci.yml": AFTER_CI})
    async with serving(settings) as (system, http):
        assert (await http.post("/api/repositories", json={"name": "demo", "url": str(root)})).status_code == 201

        response = await http.post("/api/runs", json={"repository": "demo", "event": "push"})

        assert response.status_code == 202, response.text
        ci = await until(http, response.json()["id"], lambda run: run["status"] == "completed")
        assert (ci["conclusion"], [w["name"] for w in ci["workflows"]]) == ("failure", ["CI"])
        async with asyncio.timeout(30):
            while not (found := await workflow_runs(http)):
                await asyncio.sleep(0.05)
        after = await until(http, str(found[0]["id"]), lambda run: run["status"] == "completed")
        await handled_every_completed_run(system, 2)

        assert (after["conclusion"], after["ref"], after["sha"]) == ("success", ci["ref"], ci["sha"])
        assert await log_lines(http, after["id"], "report") == ["failure CI"]
        assert [run["id"] for run in await workflow_runs(http)] == [after["id"]]
        requested = [e.event for e in await system.log.read(0, types=["RunRequested"])]
        assert [r.payload["action"] for r in requested if isinstance(r, RunRequested) and r.payload.get("action")] == [
            "completed"
        ]
