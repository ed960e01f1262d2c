"""Subscribing to the SQLite event log: what is there first, then each new envelope as it is appended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable

from conveyor_events import Envelope, JobQueued, RunCompleted
from conveyor_runtime import SqliteEventLog

Make = Callable[..., Envelope]


async def take(source: AsyncIterator[Envelope], count: int) -> list[Envelope]:
    taken: list[Envelope] = []
    async with asyncio.timeout(10):
        async for envelope in source:
            taken.append(envelope)
            if len(taken) == count:
                break
    return taken


async def test_a_subscriber_sees_what_is_there_then_new_events_in_order(log: SqliteEventLog, make: Make) -> None:
    await log.append([make("run-a"), make("run-a")])
    seen: list[Envelope] = []
    caught_up = asyncio.Event()

    async def subscriber() -> None:
        async for envelope in log.subscribe():
            seen.append(envelope)
            if len(seen) == 2:
                caught_up.set()
            if len(seen) == 12:
                return

    task = asyncio.create_task(subscriber())
    async with asyncio.timeout(10):
        await caught_up.wait()
    for index in range(10):
        await log.append([make(f"run-{index % 3}")])
    async with asyncio.timeout(10):
        await task

    assert [envelope.position for envelope in seen] == list(range(1, 13))
    assert seen == await log.read()


async def test_a_subscriber_starts_after_the_given_position(log: SqliteEventLog, make: Make) -> None:
    for _ in range(5):
        await log.append([make("run-a")])

    seen = await take(log.subscribe(3), 2)

    assert [envelope.position for envelope in seen] == [4, 5]


async def test_a_subscriber_wakes_up_for_concurrent_appends(log: SqliteEventLog, make: Make) -> None:
    reading = asyncio.create_task(take(log.subscribe(), 200))
    await asyncio.sleep(0.05)

    await asyncio.gather(*[log.append([make(f"run-{index % 5}")]) for index in range(200)])
    seen = await reading

    assert [envelope.position for envelope in seen] == list(range(1, 201))


async def test_a_types_filtered_subscriber_sees_only_those_types(log: SqliteEventLog, make: Make) -> None:
    reading = asyncio.create_task(take(log.subscribe(types=["RunCompleted"]), 3))
    await asyncio.sleep(0.05)

    for index in range(3):
        await log.append([make("run-a"), make("run-a", JobQueued(run_id="run-a", job_id=f"j{index}"))])
        await log.append([make(f"run-{index}", RunCompleted(run_id=f"run-{index}", conclusion="success"))])
    seen = await reading

    assert [envelope.type for envelope in seen] == ["RunCompleted"] * 3
    assert [envelope.stream for envelope in seen] == ["run-0", "run-1", "run-2"]
    assert [envelope.position for envelope in seen] == [3, 6, 9]


async def test_a_filtered_subscriber_skips_long_stretches_of_other_types(log: SqliteEventLog, make: Make) -> None:
    for _ in range(30):
        await log.append([make("run-a")])
    await log.append([make("run-a", RunCompleted(run_id="run-a", conclusion="success"))])
    batches = log.subscribe_batches(types=["RunCompleted"], limit=4)
    assert isinstance(batches, AsyncGenerator)

    async with asyncio.timeout(10):
        batch = await anext(batches)
    await batches.aclose()

    assert [envelope.position for envelope in batch] == [31]


async def test_subscribe_batches_respects_the_limit(log: SqliteEventLog, make: Make) -> None:
    for _ in range(10):
        await log.append([make("run-a")])
    batches = log.subscribe_batches(limit=4)
    assert isinstance(batches, AsyncGenerator)

    async with asyncio.timeout(10):
        sizes = [len(await anext(batches)) for _ in range(3)]
    await batches.aclose()

    assert sizes == [4, 4, 2]


async def test_a_cancelled_subscriber_stops_cleanly(log: SqliteEventLog, make: Make) -> None:
    task = asyncio.create_task(take(log.subscribe(), 5))
    await asyncio.sleep(0.05)
    task.cancel()

    done, _ = await asyncio.wait([task], timeout=5)

    assert task in done
    assert task.cancelled()
    await log.append([make("run-a")])
    assert await log.head() == 1
