"""The SQLite event log: the log contract, and what only SQLite promises (consecutive positions)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from conveyor_events import Envelope
from conveyor_runtime import SqliteEventLog

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


async def test_a_thousand_concurrent_appends_land_at_consecutive_positions(log: SqliteEventLog, make: Make) -> None:
    outcomes = await asyncio.gather(*[log.append([make(f"run-{index % 7}")]) for index in range(1000)])

    assert sorted(result[0].position for result in outcomes) == list(range(1, 1001))
    assert [envelope.position for envelope in await log.read(limit=2000)] == list(range(1, 1001))


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
