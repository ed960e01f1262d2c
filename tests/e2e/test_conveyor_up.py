"""`conveyor up` as a real process: it serves the API on the port it is given until interrupted."""

from __future__ import annotations

import contextlib
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import CONVEYOR

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


WORKFLOW = "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo up\n"


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([CONVEYOR, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(*processes: subprocess.Popen[str], signal_number: int = signal.SIGTERM) -> list[str]:
    """Signal every process, wait for each to exit 0; what each printed. None is left running."""
    for process in processes:
        process.send_signal(signal_number)
    try:
        outputs = [process.communicate(timeout=30)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
    return outputs


def dispatch_and_wait(base: str, root: Path, server: subprocess.Popen[str], data: Path) -> dict[str, object]:
    """Dispatch a run of `root` with the admin token the server wrote into `data`, and wait for its end."""
    deadline = time.monotonic() + 60
    headers: dict[str, str] = {}
    while True:
        try:
            if (data / "admin-token").exists():
                headers = {"Authorization": f"Bearer {(data / 'admin-token').read_text()}"}
            if httpx.get(f"{base}/api/runs", headers=headers).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert server.poll() is None, server.communicate()[0]
        assert time.monotonic() < deadline, "the API did not start serving"
        time.sleep(0.1)
    registered = httpx.post(f"{base}/api/repositories", json={"name": "r", "url": str(root)}, headers=headers)
    assert registered.status_code == 201
    run_id = httpx.post(f"{base}/api/runs", json={"repository": "r"}, headers=headers).json()["id"]
    completed = False
    while not completed:
        run = httpx.get(f"{base}/api/runs/{run_id}", headers=headers)
        completed = run.status_code == 200 and run.json()["status"] == "completed"
        assert time.monotonic() < deadline, run.text
        time.sleep(0.05)
    body: dict[str, object] = run.json()
    return body


def test_up_serves_dispatches_and_stops_on_interrupt(tmp_path: Path, repository: Callable[..., Path]) -> None:
    root = repository({".github/workflows/ci.yml": WORKFLOW})
    port = free_port()
    server = start("up", "--port", str(port), "--data-dir", str(tmp_path / "data"))
    try:
        run = dispatch_and_wait(f"http://127.0.0.1:{port}", root, server, tmp_path / "data")
    finally:
        [output] = stop(server, signal_number=signal.SIGINT)
    assert run["conclusion"] == "success"
    token_file = tmp_path / "data" / "admin-token"
    assert str(token_file) in output
    assert token_file.read_text() not in output
    assert (tmp_path / "data" / "events.db").exists()


def notified(data: Path, *, timeout: float = 30.0) -> None:
    """Wait until the notifier, a process of its own, has handled the run's end (the API may show it sooner)."""
    deadline = time.monotonic() + timeout
    with contextlib.closing(sqlite3.connect(data / "events.db")) as log:
        while True:
            (ended,) = log.execute("SELECT MAX(position) FROM events WHERE type = 'RunCompleted'").fetchone()
            row = log.execute("SELECT position FROM checkpoints WHERE consumer = 'notifier'").fetchone()
            if ended is not None and row is not None and row[0] >= ended:
                return
            assert time.monotonic() < deadline, "the notifier did not reach the run's end"
            time.sleep(0.05)


def test_each_service_in_its_own_process_over_one_data_directory(
    tmp_path: Path, repository: Callable[..., Path]
) -> None:
    root = repository({".github/workflows/ci.yml": WORKFLOW})
    port, data = free_port(), str(tmp_path / "data")
    ingest = start("service", "ingest", "--port", str(port), "--data-dir", data)
    others = [
        start("service", name, "--data-dir", data)
        for name in ("planner", "scheduler", "runner-agent", "notifier", "projector")
    ]
    try:
        run = dispatch_and_wait(f"http://127.0.0.1:{port}", root, ingest, Path(data))
        notified(Path(data))
    finally:
        outputs = stop(ingest, *others)
    assert run["conclusion"] == "success", outputs
    assert "concluded: success" in outputs[4]  # the notifier's line


def test_an_unknown_service_is_refused() -> None:
    done = subprocess.run([CONVEYOR, "service", "nope"], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "no service 'nope'" in done.stderr
