"""Running one step's process on the host: output read line by line, and nothing left behind when stopped.

A step runs in its own process group. Stopping it (a cancellation or a timeout) sends SIGINT to the group,
then SIGTERM, then SIGKILL, each after a grace period, as GitHub's runner does. Processes that left the group
(daemons, `setsid`) are found by the `RUNNER_TRACKING_ID` in their environment, which every step's process
inherits: `kill_tracked` ends them, on a stop and at the end of the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from conveyor_runner_agent.domain.log_lines import LineSplitter

_CHUNK = 1 << 16
TRACKING_VARIABLE = "RUNNER_TRACKING_ID"


@dataclass(frozen=True)
class Grace:
    """Seconds to wait after SIGINT, then after SIGTERM, before SIGKILL."""

    interrupt: float = 7.5
    terminate: float = 2.5


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    on_line: Callable[[str], None],
    grace: Grace = Grace(),
    drain: float = 0.2,
) -> int:
    """Run `argv` in its own process group, pass each output line (stdout and stderr merged) to `on_line`.

    Returns the exit code (128 + the signal number when a signal ended it) once the process has exited and
    its output was read; output of background processes still holding the pipe is read for `drain` seconds
    more, then left. Undecodable bytes are replaced, NUL shown as `␀`, and a line longer than 64 KiB without
    a newline is passed on in pieces. When the caller is cancelled (or times out) the process group is
    stopped with `grace`, and the tracked processes are killed, before the cancellation goes on.
    """
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    reader = asyncio.create_task(_read_lines(process.stdout, on_line))
    try:
        code = await process.wait()
        done, _ = await asyncio.wait({reader}, timeout=drain)
        if not done:
            reader.cancel()
    except BaseException:
        stopping = asyncio.ensure_future(_stop(process, grace, env.get(TRACKING_VARIABLE)))
        while not stopping.done():  # a second cancellation (a timeout, then a cancel) still waits for the stop
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(stopping)
        reader.cancel()
        raise
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    return 128 - code if code < 0 else code


async def _read_lines(stream: asyncio.StreamReader, on_line: Callable[[str], None]) -> None:
    splitter = LineSplitter()
    try:
        while chunk := await stream.read(_CHUNK):
            for line in splitter.feed(chunk):
                on_line(line)
    finally:
        for line in splitter.finish():
            on_line(line)


async def _stop(process: asyncio.subprocess.Process, grace: Grace, tracking_id: str | None) -> None:
    for signal_number, wait in ((signal.SIGINT, grace.interrupt), (signal.SIGTERM, grace.terminate)):
        _signal_group(process.pid, signal_number)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), wait)
        if process.returncode is not None:
            break
    _signal_group(process.pid, signal.SIGKILL)
    if tracking_id:
        kill_tracked(tracking_id)
    with contextlib.suppress(ProcessLookupError):
        await process.wait()


def _signal_group(pid: int, signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal_number)


def kill_tracked(tracking_id: str) -> int:
    """SIGKILL every process whose environment holds `RUNNER_TRACKING_ID=<tracking_id>`; how many there were."""
    marker = f"{TRACKING_VARIABLE}={tracking_id}".encode()
    killed = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as environ:
                variables = environ.read().split(b"\0")
        except OSError:
            continue
        if marker in variables:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
    return killed
