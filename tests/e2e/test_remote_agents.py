"""`conveyor up` without its embedded runner and two `conveyor agent` processes that run its jobs over HTTP only."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from conveyor_events import JobStarted
from conveyor_runtime import SqliteEventLog

from tests.e2e.test_conveyor_up import CONVEYOR, free_port

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


class Processes:
    """Processes started with their output in files (nobody reads a pipe here), all stopped at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[tuple[subprocess.Popen[bytes], Path, IO[bytes]]] = []

    def start(self, name: str, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        output = self.folder / f"{name}.log"
        file = output.open("wb")
        process = subprocess.Popen([CONVEYOR, *args], stdout=file, stderr=subprocess.STDOUT, env={**os.environ, **env})
        self.started.append((process, output, file))
        return process

    def output(self, process: subprocess.Popen[bytes]) -> str:
        return next(path.read_text() for started, path, _ in self.started if started is process)

    def stop(self) -> list[tuple[int | None, str]]:
        """SIGTERM to all at once; each one's exit status (None: it had to be killed) and output."""
        for process, _, _ in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        ended: list[tuple[int | None, str]] = []
        for process, path, file in self.started:
            try:
                status: int | None = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                status = None
            file.close()
            ended.append((status, path.read_text()))
        return ended


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop()


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
    port, data = free_port(), tmp_path / "data"
    base = f"http://127.0.0.1:{port}"
    server = processes.start(
        "up", "up", "--port", str(port), "--data-dir", str(data), env={"CONVEYOR_EMBEDDED_RUNNER": "false"}
    )
    admin = serving(base, data, server, processes)
    token = {"CONVEYOR_AGENT_REGISTRATION_TOKEN": admin["Authorization"].removeprefix("Bearer ")}
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
