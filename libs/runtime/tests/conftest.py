"""Fixtures of the runtime tests: an open SQLite event log in a temporary directory, envelopes to put in it, and
a real Kafka broker (scripts/kafka.sh) with fresh topics for each test that asks for them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
from conveyor_events import Envelope, Event, RunCancelRequested
from conveyor_runtime import KafkaTopics, SqliteEventLog, create_kafka_topics, delete_kafka_topics

KAFKA_SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "kafka.sh"
KAFKA_SETUP_TIMEOUT = 900
"""On a fresh machine the broker's jars are fetched in the setup of the first test that needs the broker."""

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


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what will not run
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give the first test that starts the broker the time to fetch it: pytest-timeout counts fixture setup."""
    for item in items:
        if "kafka_broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(KAFKA_SETUP_TIMEOUT))
            return


@pytest.fixture(scope="session")
def kafka_broker() -> str:
    """The bootstrap address of a broker started by scripts/kafka.sh; the tests fail (never skip) without one."""
    try:
        done = subprocess.run(
            ["bash", str(KAFKA_SCRIPT)], capture_output=True, text=True, timeout=KAFKA_SETUP_TIMEOUT - 30, check=False
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"scripts/kafka.sh did not finish within {expired.timeout:.0f}s:\n{expired.stdout!r}")
    if done.returncode != 0:
        pytest.fail(f"scripts/kafka.sh failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return f"127.0.0.1:{os.environ.get('CONVEYOR_KAFKA_PORT', '19092')}"


@pytest.fixture
async def kafka_topics(kafka_broker: str) -> AsyncIterator[KafkaTopics]:
    """Topics of their own for one test, deleted after it."""
    topics = KafkaTopics.with_prefix(f"test-{uuid.uuid4().hex[:12]}")
    await create_kafka_topics(kafka_broker, topics)
    yield topics
    await delete_kafka_topics(kafka_broker, topics)
