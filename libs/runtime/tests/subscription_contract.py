"""Subscribing to any event log: what is there first, then each new envelope as it is appended.

Subclassed once per log, with the `log` fixture of `log_contract.LogContract`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable

from conveyor_events import Envelope, JobQueued, RunCompleted
from conveyor_runtime import EventLog

Make = Callable[..., Envelope]


async def take(source: AsyncIterator[Envelope], count: int) -> list[Envelope]:
    taken: list[Envelope] = []
    assert isinstance(source, AsyncGenerator)
    async with contextlib.aclosing(source), asyncio.timeout(10):
        async for envelope in source:
            taken.append(envelope)
            if len(taken) == count:
                break
    return taken


class SubscriptionContract:
    async def test_a_subscriber_sees_what_is_there_then_new_events_in_order(self, log: EventLog, make: Make) -> None:
        await log.append([make("run-a"), make("run-a")])
        seen: list[Envelope] = []
        caught_up = asyncio.Event()

        async def subscriber() -> None:
            envelopes = log.subscribe()
            assert isinstance(envelopes, AsyncGenerator)
            async with contextlib.aclosing(envelopes):
                async for envelope in envelopes:
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

        assert seen == await log.read()
        assert len(seen) == 12

    async def test_a_subscriber_starts_after_the_given_position(self, log: EventLog, make: Make) -> None:
        written = [envelope for _ in range(5) for envelope in await log.append([make("run-a")])]

        seen = await take(log.subscribe(written[2].position), 2)

        assert seen == written[3:]

    async def test_a_subscriber_wakes_up_for_concurrent_appends(self, log: EventLog, make: Make) -> None:
        reading = asyncio.create_task(take(log.subscribe(), 200))
        await asyncio.sleep(0.05)

        await asyncio.gather(*[log.append([make(f"run-{index % 5}")]) for index in range(200)])
        seen = await reading

        assert seen == await log.read()

    async def test_a_types_filtered_subscriber_sees_only_those_types(self, log: EventLog, make: Make) -> None:
        reading = asyncio.create_task(take(log.subscribe(types=["RunCompleted"]), 3))
        await asyncio.sleep(0.05)

        completed: list[Envelope] = []
        for index in range(3):
            await log.append([make("run-a"), make("run-a", JobQueued(run_id="run-a", job_id=f"j{index}"))])
            done = RunCompleted(run_id=f"run-{index}", conclusion="success")
            completed += await log.append([make(f"run-{index}", done)])
        seen = await reading

        assert seen == completed
        assert [envelope.stream for envelope in seen] == ["run-0", "run-1", "run-2"]

    async def test_a_filtered_subscriber_skips_long_stretches_of_other_types(self, log: EventLog, make: Make) -> None:
        for _ in range(30):
            await log.append([make("run-a")])
        [done] = await log.append([make("run-a", RunCompleted(run_id="run-a", conclusion="success"))])
        batches = log.subscribe_batches(types=["RunCompleted"], limit=4)
        assert isinstance(batches, AsyncGenerator)

        async with contextlib.aclosing(batches), asyncio.timeout(10):
            batch = await anext(batches)

        assert batch == [done]

    async def test_subscribe_batches_respects_the_limit(self, log: EventLog, make: Make) -> None:
        for _ in range(10):
            await log.append([make("run-a")])
        batches = log.subscribe_batches(limit=4)
        assert isinstance(batches, AsyncGenerator)

        sizes: list[int] = []
        async with contextlib.aclosing(batches), asyncio.timeout(10):
            while sum(sizes) < 10:
                sizes.append(len(await anext(batches)))

        assert max(sizes) == 4
        assert sum(sizes) == 10

    async def test_a_cancelled_subscriber_stops_cleanly(self, log: EventLog, make: Make) -> None:
        task = asyncio.create_task(take(log.subscribe(), 5))
        await asyncio.sleep(0.05)
        task.cancel()

        done, _ = await asyncio.wait([task], timeout=5)

        assert task in done
        assert task.cancelled()
        [envelope] = await log.append([make("run-a")])
        assert await log.head() == envelope.position
