"""Stopping a step's process: SIGINT, SIGTERM, SIGKILL, however many times the caller is cancelled."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from conveyor_runner_agent.adapters.process import Grace, run_process


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as environ:
                    if f"MARKER={marker}".encode() in environ.read().split(b"\0"):
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


async def test_a_second_cancellation_still_waits_until_the_process_is_gone(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    lines: list[str] = []
    script = "trap '' INT TERM; echo ready; while true; do sleep 0.05; done"
    task = asyncio.create_task(
        run_process(
            ["bash", "-c", script],
            cwd=tmp_path,
            env={"PATH": os.environ["PATH"], "MARKER": marker},
            on_line=lines.append,
            grace=Grace(interrupt=0.3, terminate=0.3),
        )
    )
    async with asyncio.timeout(10):
        while lines != ["ready"]:
            await asyncio.sleep(0.02)
    task.cancel()
    await asyncio.sleep(0.1)
    assert processes_with(marker), "still stopping: SIGINT and SIGTERM are ignored"
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert processes_with(marker) == []  # only SIGKILL ended it, and that was awaited
