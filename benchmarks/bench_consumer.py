"""Events per second through a service's consumer (`consume`): the scheduler's, on SQLite and on Kafka.

The log holds the events of real runs (bench_projections' runs: 5 jobs of 5 steps, 103 events a run) before the
consumer starts; it is timed from its start until its checkpoint reaches the last event it handles. Most of
those events ask nothing of the scheduler (it only follows them); the others make it write decisions, each with
the checkpoint. Baseline, measured in the same run: the same consumer on the embedded SQLite log.

Needs the Kafka broker of scripts/kafka.sh (`make services`).

uv run python -m benchmarks bench_consumer
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

from conveyor_events import Envelope
from conveyor_runtime import (
    EventLog,
    KafkaEventLog,
    KafkaTopics,
    SqliteEventLog,
    consume,
    create_kafka_topics,
    delete_kafka_topics,
    kafka_bootstrap,
)
from conveyor_scheduler.handlers import CONSUMER, Scheduler

from benchmarks.bench_projections import append_by_stream, placed_runs

SQLITE_RUNS, KAFKA_RUNS = 100, 20


class Counting:
    """Counts the appends a consumer makes, passing each to the log."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.appends = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.log, name)

    async def append(self, events: list[Envelope], **options: Any) -> list[Envelope]:
        self.appends += 1
        return await self.log.append(events, **options)


async def through(log: EventLog, runs: int) -> tuple[int, float, int]:
    """(events the scheduler handled, their rate per second, the appends it made) over `runs` runs."""
    await append_by_stream(log, placed_runs(runs))
    counting = Counting(log)
    counted = cast(EventLog, counting)
    consumer = Scheduler(counted).consumer()
    handled = await log.read(0, 10**7, types=consumer.types)
    started = time.perf_counter()
    task = asyncio.create_task(consume(counted, consumer))
    try:
        while await log.checkpoint(CONSUMER) < handled[-1].position:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return len(handled), len(handled) / elapsed, counting.appends


async def measure() -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with SqliteEventLog(Path(folder) / "events.db") as sqlite:
            count, sqlite_rate, appends = await through(sqlite, SQLITE_RUNS)
    print("the scheduler's consumer, events of runs of 5 jobs x 5 steps stored before it starts")
    print(f"  SQLite (baseline)  {count:6,} events handled  {sqlite_rate:8,.0f} events/s  {appends:5,} appends")
    topics = KafkaTopics.with_prefix(f"bench-{uuid.uuid4().hex[:8]}")
    await create_kafka_topics(kafka_bootstrap(), topics)
    try:
        kafka = await KafkaEventLog(topics=topics).open()
        try:
            count, kafka_rate, appends = await through(kafka, KAFKA_RUNS)
        finally:
            await kafka.close()
    finally:
        await delete_kafka_topics(kafka_bootstrap(), topics)
    print(
        f"  Kafka              {count:6,} events handled  {kafka_rate:8,.0f} events/s  {appends:5,} appends"
        f"  ({kafka_rate / sqlite_rate:.2f}x SQLite)"
    )


def main() -> None:
    asyncio.run(measure())


if __name__ == "__main__":
    main()
