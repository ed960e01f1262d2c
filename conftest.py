"""Shared by every test: a test that hangs ends the run with where it hangs, as the last lines printed.

pytest-timeout's own dump (every thread's stack) can be longer than what a CI log keeps of its tail, and it
does not show asyncio tasks. This watchdog fires a few seconds earlier: it prints each pending asyncio task's
stack, then each busy thread's innermost frames, then one line per task and the test's id last, and ends the
process.

Also the `fake_github` fixture: a local GitHub REST API that records calls, for the notifier's tests; and
`postgres_server` / `postgres_url`: the PostgreSQL of scripts/postgres.sh (started when it does not answer; a test
fails, never skips, without it) and an empty database of the test's own, dropped after it; `actions_toolkit`:
the small actions scripts/actions-toolkit.sh bundles on GitHub's toolkit clients (built when they have not been).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import pytest

if TYPE_CHECKING:
    from tests.fakes.github_api import FakeGitHub
    from tests.postgres import PostgresServer

MARGIN = 5.0
THREAD_FRAMES = 15  # innermost frames shown of each busy thread
ROOT = Path(__file__).resolve().parent


def _timeout(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("timeout") or 0)


def _where(task: asyncio.Task[object]) -> str:
    frames = task.get_stack()
    if not frames:
        return f"{task.get_name()}: {task.get_coro()!r}"
    frame = frames[-1]
    return f"{task.get_name()}: {frame.f_code.co_name} at {frame.f_code.co_filename}:{frame.f_lineno}"


def _idle(frames: traceback.StackSummary) -> bool:
    """A pool worker waiting for work, or a timer waiting for its time: nothing to see."""
    names = {(Path(frame.filename).name, frame.name) for frame in frames}
    return ("thread.py", "_worker") in names and frames[-1].name in {"wait", "get", "_worker"}


def _threads(out: TextIO) -> None:
    """Every busy thread's innermost frames (idle pool workers left out)."""
    main = threading.main_thread().ident
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        if ident == threading.get_ident():
            continue
        frames = traceback.extract_stack(frame)
        if ident != main and _idle(frames):
            continue
        out.write(f"\nthread {names.get(ident, ident)} (innermost last):\n")
        out.write("".join(traceback.format_list(frames[-THREAD_FRAMES:])))


def _hung(item: pytest.Item, seconds: float) -> None:
    nodeid = item.nodeid
    capture = item.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)  # what is printed below must reach the terminal
    out = sys.__stderr__
    assert out is not None
    out.write(f"\n{'=' * 30} hung: {nodeid} {'=' * 30}\n")
    # Every loop's tasks, read from this timer thread (asyncio.all_tasks only sees this thread's loop).
    every: Iterable[asyncio.Task[object]] = getattr(asyncio.tasks, "_all_tasks", ())
    tasks = [task for task in list(every) if not task.done()]
    for task in tasks:
        task.print_stack(limit=8, file=out)
    # What a CI log keeps is its tail: the threads (where a blocking call waits), then the tasks, then the id.
    _threads(out)
    out.write(f"\npending asyncio tasks ({len(tasks)}):\n")
    for task in tasks[:20]:
        out.write(f"  {_where(task)}\n")
    out.write(f"hung: {nodeid} ran for {seconds:.0f} s; ending the test run\n")
    out.flush()
    os._exit(3)


@pytest.fixture(autouse=True)
def _watchdog(request: pytest.FixtureRequest) -> Iterator[None]:
    seconds = _timeout(request.node)
    if seconds <= MARGIN:
        yield
        return
    timer = threading.Timer(seconds - MARGIN, _hung, args=(request.node, seconds - MARGIN))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A fake GitHub REST API on 127.0.0.1 that records every call (tests/fakes/github_api.py)."""
    from tests.fakes.github_api import FakeGitHub

    with FakeGitHub() as github:
        yield github


def pytest_configure(config: pytest.Config) -> None:
    """The importlib import mode puts no folder on sys.path: the shared test modules (`tests.postgres`,
    `services.scheduler.tests.feeding`, ...) are found from the root, whichever test imports them first."""
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))


POSTGRES_SETUP_TIMEOUT = 600
"""On a fresh machine Debian's postgresql package is installed in the setup of the first test that needs it."""


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what will not run
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give the first test that starts PostgreSQL the time to install it: pytest-timeout counts fixture setup."""
    first = next((item for item in items if "postgres_server" in getattr(item, "fixturenames", ())), None)
    if first is not None:
        first.add_marker(pytest.mark.timeout(POSTGRES_SETUP_TIMEOUT))


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The server of scripts/postgres.sh, started by it when none answers."""
    from tests.postgres import PostgresServer, answers_now, start_postgres

    server = PostgresServer.from_environment()
    if not answers_now(server):
        start_postgres()
        if not answers_now(server):
            pytest.fail(f"scripts/postgres.sh succeeded, yet {server.url()} does not answer")
    return server


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """The SQLAlchemy URL of an empty database of the test's own, dropped after it."""
    from tests.postgres import fresh_database

    async with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def actions_toolkit() -> Path:
    """The folder of the bundled actions on `@actions/artifact` and `@actions/cache` (upload-artifact.js, ...)."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "actions-toolkit.sh")], capture_output=True, text=True, timeout=300, check=False
    )
    last = done.stdout.strip().splitlines()[-1:] or [""]
    if done.returncode != 0 or "ready: " not in last[0]:
        pytest.fail(f"scripts/actions-toolkit.sh failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return Path(last[0].split("ready: ", 1)[1])
