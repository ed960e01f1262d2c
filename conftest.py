"""Shared by every test: a test that hangs ends the run with where it hangs, as the last lines printed.

pytest-timeout's own dump (every thread's stack) can be longer than what a CI log keeps of its tail, and it
does not show asyncio tasks. This watchdog fires a few seconds earlier: it prints every thread's stack, then
one line per pending asyncio task (where it waits) and the test's id last, and ends the process.

Also the `fake_github` fixture: a local GitHub REST API that records calls, for the notifier's tests.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.fakes.github_api import FakeGitHub

MARGIN = 5.0
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


def _hung(item: pytest.Item, seconds: float) -> None:
    nodeid = item.nodeid
    capture = item.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)  # what is printed below must reach the terminal
    out = sys.__stderr__
    assert out is not None
    out.write(f"\n{'=' * 30} hung: {nodeid} {'=' * 30}\n")
    out.flush()
    faulthandler.dump_traceback(file=out, all_threads=True)
    tasks = [task for task in list(asyncio.tasks._all_tasks) if not task.done()]
    for task in tasks:
        task.print_stack(limit=8, file=out)
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
    # The importlib import mode puts no folder on sys.path, so the shared fakes are found from the repository root.
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    from tests.fakes.github_api import FakeGitHub

    with FakeGitHub() as github:
        yield github
