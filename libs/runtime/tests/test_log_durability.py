"""Nothing acknowledged is lost: a process killed with SIGKILL keeps every event whose append had returned."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from conveyor_runtime import SqliteEventLog

APPENDER = Path(__file__).with_name("_appender.py")
ACKNOWLEDGED = 300


async def acknowledged_ids_until_killed(path: Path, count: int) -> list[str]:
    """Run the appender, read `count` acknowledged ids while it keeps appending, then SIGKILL it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(APPENDER), str(path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    acknowledged: list[str] = []
    try:
        async with asyncio.timeout(30):
            while len(acknowledged) < count:
                line = await process.stdout.readline()
                if not line:
                    _, errors = await process.communicate()
                    pytest.fail(f"the appender stopped early: {errors.decode()}")
                acknowledged.append(line.decode().strip())
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
    assert process.returncode == -signal.SIGKILL
    return acknowledged


@pytest.mark.integration
async def test_every_acknowledged_event_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "events.db"

    acknowledged = await acknowledged_ids_until_killed(path, ACKNOWLEDGED)

    async with SqliteEventLog(path) as log:
        stored = await log.read(limit=1_000_000)
        [resumed] = await log.append([stored[0].model_copy(update={"event_id": "after-the-crash"})])
    stored_ids = {envelope.event_id for envelope in stored}
    assert [event_id for event_id in acknowledged if event_id not in stored_ids] == []
    assert len(stored) >= ACKNOWLEDGED
    assert [envelope.position for envelope in stored] == list(range(1, len(stored) + 1))
    sequences: dict[str, list[int]] = defaultdict(list)
    for envelope in stored:
        sequences[envelope.stream].append(envelope.sequence)
    assert all(found == list(range(1, len(found) + 1)) for found in sequences.values())
    positions = {envelope.event_id: envelope.position for envelope in stored}
    assert [positions[event_id] for event_id in acknowledged] == sorted(
        positions[event_id] for event_id in acknowledged
    )
    assert resumed.position == len(stored) + 1
    assert resumed.sequence == len(sequences[resumed.stream]) + 1
