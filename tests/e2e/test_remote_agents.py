"""`conveyor up` without its embedded runner and two `conveyor agent` processes that run its jobs over HTTP only."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conveyor_events import JobStarted
from conveyor_runtime import SqliteEventLog

from tests.e2e.processes import Processes
from tests.e2e.test_conveyor_up import free_port

pytestmark = pytest.mark.e2e

WORKFLOW = """
on: push
jobs:
  build:
    runs-on: self-hosted
    steps:
      - run: echo "built ${{ github.sha }}"
      - run: echo "packed" && echo "oops" >&2
  test:
    runs-on: [self-hosted, linux, extra]
    needs: build
    steps:
      - run: echo "tested on ${{ runner.os }}"
"""


def serving(base: str, data: Path, server: subprocess.Popen[bytes], processes: Processes) -> dict[str, str]:
    """Wait until the API answers with the admin token the server wrote into `data`; its Authorization header."""
    deadline = time.monotonic() + 30
    while True:
        assert server.poll() is None, processes.output(server)
        assert time.monotonic() < deadline, f"the API did not start serving:\n{processes.output(server)}"
        token = data / "admin-token"
        if token.exists() and token.read_text():
            headers = {"Authorization": f"Bearer {token.read_text()}"}
            try:
                if httpx.get(f"{base}/api/runs", headers=headers).status_code == 200:
                    return headers
            except httpx.TransportError:
                pass
        time.sleep(0.1)


def serving_agents(data: Path, processes: Processes) -> tuple[str, dict[str, str], dict[str, str]]:
    """`conveyor up` over `data` without its embedded runner, serving: its URL, the admin's Authorization header,
    and the environment an agent registers with."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = processes.start(
        "up", "up", "--port", str(port), "--data-dir", str(data), env={"CONVEYOR_EMBEDDED_RUNNER": "false"}
    )
    admin = serving(base, data, server, processes)
    return base, admin, {"CONVEYOR_AGENT_REGISTRATION_TOKEN": admin["Authorization"].removeprefix("Bearer ")}


def wait_for(check: Callable[[], object], what: str, timeout: float = 30) -> object:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return found


def job_starts(data: Path) -> Counter[tuple[str, str, int]]:
    async def read() -> Counter[tuple[str, str, int]]:
        async with SqliteEventLog(data / "events.db") as log:
            started = await log.read(0, 100_000, types=[JobStarted.event_type()])
        return Counter(
            (event.run_id, event.job_id, event.attempt)
            for event in (envelope.event for envelope in started)
            if isinstance(event, JobStarted)
        )

    return asyncio.run(read())


def test_two_agents_run_the_jobs_of_a_conveyor_over_http_and_stop_cleanly(
    tmp_path: Path, repository: Callable[..., Path], processes: Processes
) -> None:
    root = repository({".github/workflows/ci.yml": WORKFLOW})
    data = tmp_path / "data"
    base, admin, token = serving_agents(data, processes)
    for name in ("first", "second"):
        args = ["--server", base, "--name", name, "--work-dir", str(tmp_path / name), "--concurrency", "2"]
        processes.start(name, "agent", *args, "--labels", "extra", env=token)
    registered = httpx.post(f"{base}/api/repositories", json={"name": "r", "url": str(root)}, headers=admin)
    assert registered.status_code == 201, registered.text

    def both_registered() -> bool:
        names = {runner["name"] for runner in httpx.get(f"{base}/api/runners", headers=admin).json()}
        return names == {"first", "second"}

    wait_for(both_registered, "the agents did not both register")  # a slow start must not leave one out
    run_ids = [httpx.post(f"{base}/api/runs", json={"repository": "r"}, headers=admin).json()["id"] for _ in range(3)]

    def completed() -> list[dict[str, object]] | None:
        runs = [httpx.get(f"{base}/api/runs/{run_id}", headers=admin).json() for run_id in run_ids]
        return runs if all(run["status"] == "completed" for run in runs) else None

    runs = wait_for(completed, "the runs did not complete", timeout=40)
    assert isinstance(runs, list)
    assert [run["conclusion"] for run in runs] == ["success"] * 3, runs
    for run in runs:
        assert {job["key"]: job["conclusion"] for job in run["jobs"]} == {"build": "success", "test": "success"}
        build = httpx.get(f"{base}/api/runs/{run['id']}/jobs/build/logs", headers=admin).json()["lines"]
        test = httpx.get(f"{base}/api/runs/{run['id']}/jobs/test/logs", headers=admin).json()["lines"]
        assert [line["text"] for line in build] == [f"built {run['sha']}", "packed", "oops"]
        assert [line["text"] for line in test] == ["tested on Linux"]
    runners = httpx.get(f"{base}/api/runners", headers=admin).json()
    assert sorted(runner["name"] for runner in runners) == ["first", "second"]
    assert all({"self-hosted", "Linux", "extra"} <= set(runner["labels"]) for runner in runners)
    assert {job["runner"] for run in runs for job in run["jobs"]} <= {runner["id"] for runner in runners}

    ended = processes.stop()

    assert [status for status, _ in ended] == [0, 0, 0], "\n".join(output[-3000:] for _, output in ended)
    starts = job_starts(data)
    assert len(starts) == 6
    assert set(starts.values()) == {1}
    for name in ("first", "second"):
        assert stat.S_IMODE((tmp_path / name / "runner.json").stat().st_mode) == 0o600
