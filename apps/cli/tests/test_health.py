"""The health probes' definitions: a loop is ready once each of its subscriptions handled everything of its types
up to the head it began at; a process is alive unless a loop is pausing before a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import cast

import httpx
import pytest
from conveyor_cli.health import IDLE, Health, LoopHealth, WatchedLog, health_app
from conveyor_events import Envelope, Event, JobQueued, RunCancelRequested
from conveyor_runtime import Consumer, EventLog, SqliteEventLog, consume


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[SqliteEventLog]:
    async with SqliteEventLog(tmp_path / "events.db", poll_interval=0.05) as opened:
        yield opened


def cancel(run_id: str) -> Envelope:
    return Envelope.wrap(RunCancelRequested(run_id=run_id, reason="test"), stream=run_id)


def queued(run_id: str) -> Envelope:
    return Envelope.wrap(JobQueued(run_id=run_id, job_id="build"), stream=run_id)


async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.01)


async def following(log: SqliteEventLog, health: LoopHealth, handler: Callable[[Envelope], Awaitable[None]]) -> None:
    async def handle(envelope: Envelope) -> Sequence[Envelope]:
        await handler(envelope)
        return []

    handlers: dict[type[Event], Callable[[Envelope], Awaitable[Sequence[Envelope]]]] = {RunCancelRequested: handle}
    health.started()
    await consume(WatchedLog(log, health), Consumer("test", handlers))


async def test_a_loop_is_ready_once_it_handled_its_events_up_to_the_head_it_began_at(log: SqliteEventLog) -> None:
    for run_id in ("run-1", "run-2"):
        await log.append([cancel(run_id)])
    await log.append([queued("run-3")])  # the head, of a type the consumer does not follow
    release = asyncio.Event()
    handled: list[str] = []

    async def slow(envelope: Envelope) -> None:
        if envelope.stream == "run-2":
            await release.wait()
        handled.append(envelope.stream)

    health = LoopHealth(readers=1)
    task = asyncio.create_task(following(log, health, slow))
    try:
        await eventually(lambda: handled == ["run-1"])
        await asyncio.sleep(0.2)
        assert not health.ready  # run-2 is up to the head, and still being handled
        assert health.state == "catching up"

        release.set()

        await eventually(lambda: health.ready)
        assert handled == ["run-1", "run-2"]
        await log.append([cancel("run-4")])
        await eventually(lambda: handled[-1:] == ["run-4"])
        assert health.ready  # once caught up, it stays ready while it runs
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_loop_with_two_readers_waits_for_both_and_a_restart_starts_over(log: SqliteEventLog) -> None:
    async def nothing(envelope: Envelope) -> None:
        return None

    health = LoopHealth(readers=2)
    first = asyncio.create_task(following(log, health, nothing))
    try:
        await eventually(lambda: any(subscription.caught_up for subscription in health.subscriptions))
        assert not health.ready
        health.subscribed().caught_up = True  # stands for the second reader, caught up
        assert health.ready

        health.failed()
        assert (health.ready, health.state) == (False, "pausing before a restart")
        health.started()
        assert (health.ready, health.state) == (False, "catching up")
    finally:
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)


async def test_the_probes_answer_503_until_the_log_is_open_and_every_loop_ready() -> None:
    health = Health()
    projector = health.loop("projector", readers=1)
    schedules = health.loop("schedules", readers=0)
    transport = httpx.ASGITransport(app=health_app(health))
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as probe:
        projector.started()
        schedules.started()
        alive, ready = await probe.get("/healthz"), await probe.get("/readyz")
        assert (alive.status_code, ready.status_code) == (200, 503)
        assert ready.json() == {
            "status": "failing",
            "log": "closed",
            "loops": {"projector": "catching up", "schedules": "ready"},
        }

        health.log_open = True
        projector.subscribed().caught_up = True
        assert (await probe.get("/readyz")).status_code == 200

        projector.failed()
        alive = await probe.get("/healthz")
        assert alive.status_code == 503
        assert alive.json()["loops"]["projector"] == "pausing before a restart"
        assert (await probe.get("/readyz")).status_code == 503


class Stalled:
    """A log whose head is ahead of a new subscriber, which then waits for ever: for its next event, and for the
    answer to whether anything is left up to the head."""

    async def head(self) -> int:
        return 10

    async def subscribe(self, after: int = 0, *, types: object = None) -> AsyncIterator[Envelope]:
        await asyncio.Event().wait()
        yield cancel("never")

    async def read(self, after: int = 0, limit: int = 1000, *, types: object = None) -> list[Envelope]:
        await asyncio.Event().wait()
        return []


async def test_a_subscription_stopped_while_it_catches_up_is_cancelled_not_broken() -> None:
    """The loop's supervisor restarts a loop that fails: an error in place of the cancellation would keep it going."""
    subscription = WatchedLog(cast(EventLog, Stalled()), LoopHealth(readers=1)).subscribe(types=["RunCancelRequested"])
    waiting = asyncio.ensure_future(anext(subscription))
    await asyncio.sleep(IDLE * 4)  # its next event and the answer are both awaited

    waiting.cancel()

    with pytest.raises(asyncio.CancelledError):
        await waiting
