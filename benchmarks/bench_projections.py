"""Events per second projected into the read models: PostgreSQL's store against SQLite's, and the distributed
path whole — events produced to Kafka, read back and projected into PostgreSQL — with what bounds it apart from
the store: producing, and reading the log back alone. Also how fast a log opening on that topic indexes it, as
each service's log does when the service starts.

The path whole is measured twice: produced by this process while it projects, and produced by a process of its
own, as the services and agents that write the log are apart from the projector. Every process runs as a
service does (`conveyor service`): on uvloop, with the garbage collector tuned (`tune_collector`).

The events are those of real runs: each run has 5 jobs of 5 steps, each step started, logging 3 lines and
completed (103 events a run). They are made before anything is measured and then frozen out of the garbage
collector's walks (`gc.freeze`): a service holds no such pile of events, which every collection of the oldest
generation would walk. The baseline, measured in the same run, is the embedded SQLite store applying the same
batches.

Needs the Kafka broker and PostgreSQL of scripts/kafka.sh and scripts/postgres.sh (`make services`).

uv run python -m benchmarks bench_projections
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import uvloop
from conveyor_events import (
    Envelope,
    Event,
    JobAssigned,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobStarted,
    LogLine,
    RunCompleted,
    RunPlanned,
    RunRequested,
    StepCompleted,
    StepLogged,
    StepStarted,
)
from conveyor_runtime import (
    EventLog,
    KafkaEventLog,
    KafkaTopics,
    PostgresProjections,
    ProjectionStore,
    SqliteProjections,
    create_kafka_topics,
    kafka_bootstrap,
    project,
    tune_collector,
)

RUNS = 200
BATCH = 1000
POSTGRES = ("127.0.0.1", 15432, "conveyor")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run_events(number: int) -> list[Event]:
    run_id = f"run-{number}"
    jobs = [f"job-{k}" for k in range(5)]
    events: list[Event] = [RunRequested(run_id=run_id, repository="acme/app", ref="refs/heads/main", sha="a" * 40)]
    events += [JobPlanned(run_id=run_id, job_id=job, workflow="ci.yml", job_key=job, name=job) for job in jobs]
    events.append(RunPlanned(run_id=run_id, workflow="ci.yml", workflow_name="CI", index=0, count=1, jobs=jobs))
    for job in jobs:
        events += [
            JobQueued(run_id=run_id, job_id=job, labels=["ubuntu-latest"]),
            JobAssigned(run_id=run_id, job_id=job, runner_id="runner-1", lease_id=f"{run_id}-{job}"),
            JobStarted(run_id=run_id, job_id=job, runner_id="runner-1"),
        ]
        for step in range(5):
            lines = [LogLine(at=T0, text=f"line {n} of step {step}") for n in range(3)]
            events += [
                StepStarted(run_id=run_id, job_id=job, step_index=step, name=f"step {step}"),
                StepLogged(run_id=run_id, job_id=job, step_index=step, first_line=step * 3 + 1, lines=lines),
                StepCompleted(run_id=run_id, job_id=job, step_index=step, outcome="success", conclusion="success"),
            ]
        events.append(JobCompleted(run_id=run_id, job_id=job, conclusion="success"))
    events.append(RunCompleted(run_id=run_id, conclusion="success"))
    return events


def placed_runs(runs: int) -> list[Envelope]:
    """The runs' events, placed as the log places them; frozen out of the collector's walks (see above)."""
    placed: list[Envelope] = []
    for number in range(runs):
        for sequence, event in enumerate(run_events(number), 1):
            envelope = Envelope.wrap(event, stream=f"run-{number}", occurred_at=T0 + timedelta(seconds=sequence))
            placed.append(envelope.placed(sequence, len(placed) + 1))
    gc.collect()
    gc.freeze()
    return placed


async def append_by_stream(log: EventLog, envelopes: list[Envelope]) -> None:
    """Append the envelopes, each stream's in one append, every append queued at once."""
    streams: dict[str, list[Envelope]] = {}
    for envelope in envelopes:
        streams.setdefault(envelope.stream, []).append(envelope)
    await asyncio.gather(*(log.enqueue(events) for events in streams.values()))


async def apply_all(store: ProjectionStore, envelopes: list[Envelope]) -> float:
    started = time.perf_counter()
    for at in range(0, len(envelopes), BATCH):
        await store.apply(envelopes[at : at + BATCH])
    return len(envelopes) / (time.perf_counter() - started)


async def database() -> str:
    host, port, user = POSTGRES
    name = f"bench_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(host=host, port=port, user=user, database="conveyor")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"postgresql+asyncpg://{user}@{host}:{port}/{name}"


async def drop(url: str) -> None:
    host, port, user = POSTGRES
    connection = await asyncpg.connect(host=host, port=port, user=user, database="conveyor")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def projecting() -> AsyncIterator[tuple[str, KafkaEventLog, PostgresProjections]]:
    """Fresh topics (their prefix), a log on them and a database, with a projector running from one to the other."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    topics = KafkaTopics.with_prefix(prefix)
    await create_kafka_topics(kafka_bootstrap(), topics)
    url = await database()
    store = await PostgresProjections(url).open()
    log = await KafkaEventLog(topics=topics).open()
    projector = asyncio.create_task(project(log, store, batch=BATCH))
    try:
        yield prefix, log, store
    finally:
        projector.cancel()
        await asyncio.gather(projector, return_exceptions=True)
        await log.close()
        await store.close()
        await drop(url)


async def projected_to(store: PostgresProjections, head: int) -> None:
    while await store.position() < head:
        await asyncio.sleep(0.01)


async def through_kafka(envelopes: list[Envelope]) -> tuple[float, float, float, float]:
    """(events/s produced to Kafka, events/s from the first produced to the last projected in PostgreSQL, events/s
    read back from Kafka by a subscriber alone, as the projector reads them, events/s indexed by a log opening)."""
    async with projecting() as (prefix, log, store):
        started = time.perf_counter()
        await append_by_stream(log, envelopes)
        produced = time.perf_counter() - started
        head = await log.head()
        await projected_to(store, head)
        projected = time.perf_counter() - started
    topics = KafkaTopics.with_prefix(prefix)
    return len(envelopes) / produced, len(envelopes) / projected, await read_back(topics, head), await opened(topics)


async def produced_apart(envelopes: list[Envelope]) -> float:
    """Events/s from the first produced, by a process of its own, to the last projected in PostgreSQL here."""
    async with projecting() as (prefix, _, store):
        producer = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "produce", prefix, stdout=asyncio.subprocess.PIPE
        )
        output, _ = await producer.communicate()
        if producer.returncode != 0:
            raise RuntimeError(f"the producing process failed with exit code {producer.returncode}")
        started, head = output.split()
        await projected_to(store, int(head))
        return len(envelopes) / (time.time() - float(started))


async def produce(prefix: str) -> None:
    """The producing process: append the runs' events to the topics of `prefix`; print when it began (the clock's
    seconds) and the log's head once every append returned."""
    envelopes = placed_runs(RUNS)
    log = await KafkaEventLog(topics=KafkaTopics.with_prefix(prefix)).open()
    try:
        started = time.time()
        await append_by_stream(log, envelopes)
        print(started, await log.head())
    finally:
        await log.close()


async def opened(topics: KafkaTopics) -> float:
    """Events/s indexed by a log opening on the topic, as every service's log does when it starts."""
    started = time.perf_counter()
    log = await KafkaEventLog(topics=topics).open()
    try:
        return await log.head() / (time.perf_counter() - started)
    finally:
        await log.close()


async def read_back(topics: KafkaTopics, head: int) -> float:
    """Events/s read from the start of the log to `head` in batches, decoded, and nothing more done with them."""
    log = await KafkaEventLog(topics=topics).open()
    try:
        started = time.perf_counter()
        async for envelopes in log.subscribe_batches(0, limit=BATCH):
            if envelopes[-1].position >= head:
                break
        return head / (time.perf_counter() - started)
    finally:
        await log.close()


async def measure() -> None:
    envelopes = placed_runs(RUNS)
    with tempfile.TemporaryDirectory() as folder:
        sqlite_rate = await apply_all(SqliteProjections(Path(folder) / "projections.db"), envelopes)
    url = await database()
    store = await PostgresProjections(url).open()
    try:
        postgres_rate = await apply_all(store, envelopes)
    finally:
        await store.close()
        await drop(url)
    print(f"{len(envelopes):,} events of {RUNS} runs, applied {BATCH} at a time")
    print(f"  SQLite store (baseline)    {sqlite_rate:10,.0f} events/s")
    print(f"  PostgreSQL store           {postgres_rate:10,.0f} events/s  ({postgres_rate / sqlite_rate:.2f}x SQLite)")
    produced, projected, read, indexed = await through_kafka(envelopes)
    print(f"  produced to Kafka          {produced:10,.0f} events/s")
    print(f"  read back from Kafka       {read:10,.0f} events/s  (decoded, not projected)")
    print(f"  indexed opening the log    {indexed:10,.0f} events/s  (as a service starts; {indexed / read:.2f}x read)")
    print(
        f"  Kafka -> PostgreSQL        {projected:10,.0f} events/s end to end, produced here"
        f"  ({projected / sqlite_rate:.2f}x SQLite store)"
    )
    apart = await produced_apart(envelopes)
    print(
        f"  Kafka -> PostgreSQL        {apart:10,.0f} events/s end to end, produced by another process"
        f"  ({apart / sqlite_rate:.2f}x SQLite store)"
    )


def main() -> None:
    tune_collector()
    if sys.argv[1:2] == ["produce"]:
        uvloop.run(produce(sys.argv[2]))
    else:
        uvloop.run(measure())


if __name__ == "__main__":
    main()
