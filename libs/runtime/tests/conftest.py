"""Fixtures of the runtime tests: an open SQLite event log in a temporary directory and envelopes to put in it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
from conveyor_events import Envelope, Event, RunCancelRequested
from conveyor_runtime import SqliteEventLog

START = datetime(2024, 5, 17, 8, 0, tzinfo=UTC)

MakeEnvelope = Callable[..., Envelope]
WaitFor = Callable[[Callable[[], Awaitable[bool]]], Awaitable[None]]


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[SqliteEventLog]:
    async with SqliteEventLog(tmp_path / "events.db", poll_interval=0.05) as opened:
        yield opened


@pytest.fixture
def make() -> MakeEnvelope:
    """Envelopes with readable ids (`<stream>-<n>`) and times one second apart."""
    numbers = count(1)

    def make_envelope(
        stream: str = "run-1", event: Event | None = None, *, event_id: str | None = None, cause: Envelope | None = None
    ) -> Envelope:
        number = next(numbers)
        return Envelope.wrap(
            event or RunCancelRequested(run_id=stream, reason=f"reason {number}"),
            stream=stream,
            event_id=event_id or f"{stream}-{number}",
            occurred_at=START + timedelta(seconds=number),
            cause=cause,
        )

    return make_envelope


@pytest.fixture
def wait_for() -> WaitFor:
    """Poll an async condition until it holds; fail after a few seconds instead of hanging."""

    async def wait(condition: Callable[[], Awaitable[bool]]) -> None:
        async with asyncio.timeout(10):
            while True:
                if await condition():
                    return
                await asyncio.sleep(0.01)

    return wait
