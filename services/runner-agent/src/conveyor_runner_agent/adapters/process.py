"""Running one step's process on the host, with its output read line by line as it comes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from conveyor_runner_agent.domain.log_lines import LineSplitter

_CHUNK = 1 << 16


async def run_process(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], on_line: Callable[[str], None]
) -> int:
    """Run `argv` in its own process group, pass each output line (stdout and stderr merged) to `on_line`.

    Returns the exit code (128 + the signal number when a signal ended it). Undecodable bytes are replaced,
    NUL shown as `␀`, and a line longer than 64 KiB without a newline is passed on in pieces rather than held
    in memory.
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
    try:
        await _read_lines(process.stdout, on_line)
        code = await process.wait()
    except BaseException:
        _kill_group(process.pid)
        raise
    return 128 - code if code < 0 else code


async def _read_lines(stream: asyncio.StreamReader, on_line: Callable[[str], None]) -> None:
    splitter = LineSplitter()
    while chunk := await stream.read(_CHUNK):
        for line in splitter.feed(chunk):
            on_line(line)
    for line in splitter.finish():
        on_line(line)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
