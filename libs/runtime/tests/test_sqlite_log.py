"""The SQLite event log: the log contract, and what only SQLite promises (consecutive positions)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conveyor_events import Envelope
from conveyor_runtime import SqliteEventLog
from conveyor_runtime._sqlite_log import Synchronous

from libs.runtime.tests.log_contract import AnotherLog, LogContract

Make = Callable[..., Envelope]


@pytest.fixture
def another_log(tmp_path: Path) -> AnotherLog:
    return lambda: SqliteEventLog(tmp_path / "events.db", poll_interval=0.05)


class TestSqliteLog(LogContract):
    """The contract, on the `log` of conftest.py: a SQLite file in a temporary directory."""


async def test_positions_are_consecutive_from_1(log: SqliteEventLog, make: Make) -> None:
    first = await log.append([make("run-a"), make("run-a")])
    second = await log.append([make("run-b")])
    third = await log.append([make("run-a")])

    placed = [(envelope.stream, envelope.sequence, envelope.position) for envelope in [*first, *second, *third]]
    assert placed == [("run-a", 1, 1), ("run-a", 2, 2), ("run-b", 1, 3), ("run-a", 3, 4)]
    assert await log.head() == 4


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
async def test_a_thousand_concurrent_appends_land_at_consecutive_positions(
    tmp_path: Path, make: Make, synchronous: Synchronous
) -> None:
    """With NORMAL the loop commits them; with FULL, whose commits wait for the disk, the writer thread does."""
    async with SqliteEventLog(tmp_path / "events.db", synchronous=synchronous) as log:
        outcomes = await asyncio.gather(*[log.append([make(f"run-{index % 7}")]) for index in range(1000)])

        assert sorted(result[0].position for result in outcomes) == list(range(1, 1001))
        assert [envelope.position for envelope in await log.read(limit=2000)] == list(range(1, 1001))
        for stream in {f"run-{index}" for index in range(7)}:
            sequences = [envelope.sequence for envelope in await log.read_stream(stream)]
            assert sequences == list(range(1, len(sequences) + 1))


async def test_a_duplicate_in_a_group_of_appends_keeps_the_positions_consecutive(
    log: SqliteEventLog, make: Make
) -> None:
    """A duplicate id sends the writer down its one-append-at-a-time path, which numbers alike."""
    [stored] = await log.append([make("run-a", event_id="the-one")])

    outcomes = await asyncio.gather(
        log.append([make("run-b")]), log.append([make("run-a", event_id="the-one")]), log.append([make("run-c")])
    )

    assert [result[0].position for result in outcomes] == [2, 1, 3]
    assert outcomes[1][0] == stored


async def test_while_another_connection_holds_the_write_lock_the_loop_runs_on_and_appends_keep_their_order(
    log: SqliteEventLog, make: Make
) -> None:
    """Another process's write holds the lock: the appends wait in the writer thread, not on the event loop."""
    elsewhere = sqlite3.connect(log.path, isolation_level=None)
    elsewhere.execute("BEGIN IMMEDIATE")
    first = asyncio.ensure_future(log.append([make("run-a")]))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(log.append([make("run-b")]))
    started = time.monotonic()
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert time.monotonic() - started < 2  # a loop waiting for the lock would wait out SQLite's busy timeout
    assert not first.done()
    assert not second.done()

    elsewhere.execute("COMMIT")
    elsewhere.close()
    [a], [b] = await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert (a.stream, a.position, b.stream, b.position) == ("run-a", 1, "run-b", 2)
    [c] = await log.append([make("run-a")])
    assert (c.sequence, c.position) == (2, 3)


async def test_appends_from_another_event_loop_interleave_with_the_loops_own(log: SqliteEventLog, make: Make) -> None:
    async def from_the_other_loop() -> list[int]:
        placed = await asyncio.gather(*[log.append([make("run-other")]) for _ in range(200)])
        return [envelopes[0].position for envelopes in placed]

    other = asyncio.to_thread(asyncio.run, from_the_other_loop())
    own = asyncio.gather(*[log.append([make(f"run-{index % 3}")]) for index in range(600)])
    theirs, ours = await asyncio.gather(other, own)

    positions = sorted([*theirs, *(envelopes[0].position for envelopes in ours)])
    assert positions == list(range(1, 801))
    for stream in ("run-other", "run-0", "run-1", "run-2"):
        sequences = [envelope.sequence for envelope in await log.read_stream(stream)]
        assert sequences == list(range(1, len(sequences) + 1))


async def test_the_write_ahead_log_is_copied_into_the_database_as_the_loop_commits(
    log: SqliteEventLog, make: Make
) -> None:
    """The loop's connection never checkpoints (that waits for the disk); the writer thread does, when asked."""
    for round_ in range(24):
        await log.append([make(f"run-{round_}") for _ in range(500)])

    async with asyncio.timeout(10):
        while log.path.stat().st_size < 1024 * 1024:
            await asyncio.sleep(0.05)
