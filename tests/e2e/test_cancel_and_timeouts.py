"""Stopping jobs: cancelling a run through the API and timeouts leave no process of the job behind."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from conveyor_cli.main import app
from conveyor_cli.system import EmbeddedSystem
from conveyor_events import Envelope, JobTimedOut
from conveyor_runtime import RuntimeSettings
from typer.testing import CliRunner

from tests.e2e.conftest import admin_headers

if TYPE_CHECKING:
    from tests.e2e.conftest import Until

pytestmark = pytest.mark.e2e


def processes_with(marker: str) -> list[int]:
    """Processes whose environment holds MARKER=<marker>."""
    found = []
    needle = f"MARKER={marker}".encode()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as environ:
                    if needle in environ.read().split(b"\0"):
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


async def test_cancelling_a_run_stops_its_processes_and_runs_cleanup_steps(
    client: httpx.AsyncClient, repository: Callable[..., Path], until: Until
) -> None:
    marker = uuid.uuid4().hex
    workflow = f"""
on: push
env:
  MARKER: {marker}
jobs:
  long:
    runs-on: x
    steps:
      - name: Sleep with a daemon
        run: |
          setsid sleep 300 > /dev/null 2>&1 &
          echo started
          sleep 300
      - name: Never
        run: echo never
      - name: Cleanup
        if: cancelled()
        run: echo cleaning after cancel
"""
    root = repository({".github/workflows/ci.yml": workflow})
    await client.post("/api/repositories", json={"name": "r", "url": str(root)})
    run_id = (await client.post("/api/runs", json={"repository": "r"})).json()["id"]
    await until(client, run_id, lambda run: bool(run["jobs"] and run["jobs"][0]["steps"]))
    async with asyncio.timeout(10):
        while len(processes_with(marker)) < 2:
            await asyncio.sleep(0.05)

    assert (await client.post(f"/api/runs/{run_id}/cancel")).status_code == 202
    run = await until(client, run_id, lambda run: run["status"] == "completed")

    assert run["conclusion"] == "cancelled"
    [job] = run["jobs"]
    assert job["conclusion"] == "cancelled"
    assert [(step["name"], step["conclusion"]) for step in job["steps"]] == [
        ("Sleep with a daemon", "cancelled"),
        ("Never", "skipped"),
        ("Cleanup", "success"),
    ]
    assert processes_with(marker) == []
    logs = (await client.get(f"/api/runs/{run_id}/jobs/long/logs")).json()["lines"]
    assert "cleaning after cancel" in [line["text"] for line in logs]
    again = await client.post(f"/api/runs/{run_id}/cancel")
    assert again.status_code == 409


def test_step_and_job_timeouts(repository: Callable[..., Path]) -> None:
    marker = uuid.uuid4().hex
    workflow = f"""
on: push
env:
  MARKER: {marker}
jobs:
  step-timeout:
    runs-on: x
    steps:
      - name: Too slow
        timeout-minutes: 0.02
        run: sleep 30
      - if: failure()
        run: echo "after the step timed out"
  job-timeout:
    runs-on: x
    timeout-minutes: 0.03
    steps:
      - run: sleep 30
      - if: always()
        run: echo "always after the job timed out"
  background:
    runs-on: x
    steps:
      - run: setsid sleep 300 > /dev/null 2>&1 &
"""
    root = repository({".github/workflows/ci.yml": workflow})
    result = CliRunner().invoke(app, ["run", "-C", str(root)])
    output = result.output

    assert result.exit_code == 1, output
    assert "The action 'Too slow' has timed out after 0.02 minutes." in output
    assert "after the step timed out" in output
    assert "The job has exceeded the maximum execution time of 0.03 minutes." in output
    assert "always after the job timed out" in output
    assert processes_with(marker) == []  # the background job's daemon too


async def test_a_timeout_the_scheduler_decides_stops_the_job_as_its_own_limit_would(
    settings: RuntimeSettings, repository: Callable[..., Path], until: Until
) -> None:
    """The scheduler's clock may pass the deadline before the runner's: the job still fails with the timeout."""
    marker = uuid.uuid4().hex
    workflow = f"""
on: push
jobs:
  long:
    runs-on: x
    timeout-minutes: 30
    steps:
      - run: sleep 300
        env:
          MARKER: {marker}
      - if: always()
        run: echo "always after the job timed out"
"""
    root = repository({".github/workflows/ci.yml": workflow})
    system = EmbeddedSystem(settings)
    async with system.running():
        transport = httpx.ASGITransport(app=system.api())
        headers = admin_headers(settings)
        async with httpx.AsyncClient(transport=transport, base_url="http://conveyor", headers=headers) as client:
            await client.post("/api/repositories", json={"name": "r", "url": str(root)})
            run_id = (await client.post("/api/runs", json={"repository": "r"})).json()["id"]
            async with asyncio.timeout(10):
                while not processes_with(marker):
                    await asyncio.sleep(0.05)
            now = datetime.now(UTC)
            timed_out = JobTimedOut(
                run_id=run_id, job_id="ci.long", attempt=1, phase="running", deadline=now, limit_minutes=30
            )
            await system.log.append([Envelope.wrap(timed_out, stream=run_id)])
            run = await until(client, run_id, lambda run: run["status"] == "completed")
            logs = (await client.get(f"/api/runs/{run_id}/jobs/long/logs")).json()["lines"]

    assert run["conclusion"] == "failure"
    texts = [line["text"] for line in logs]
    assert "##[error]The job has exceeded the maximum execution time of 30 minutes." in texts
    assert "always after the job timed out" in texts
    assert processes_with(marker) == []
