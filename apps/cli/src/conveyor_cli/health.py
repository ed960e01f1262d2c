"""Whether a process's services are alive and ready, and the `/healthz` and `/readyz` probes that say so.

Alive (`/healthz`): the process answers, and none of its service loops is in the pause before a restart (a loop
that raises is logged and started again from its checkpoint after a pause; during that pause the process is
not alive).

Ready (`/readyz`): the log is open, and every service loop has caught up once since it last started. A loop
catches up when each subscription it opens (a consumer opens one; the planner's loop two, for its planner and
its workflow_run trigger) has handed its reader every event of the reader's types up to the log's head as it
was when the subscription began, and the reader has come back for more (so it handled them too). A loop that
follows no subscription (cron schedules, the webhook back-fill) is ready once it runs. Falling behind later
does not make a process unready; a restart does, until the restarted loop has caught up again.

Each probe answers 200 when it holds and 503 when it does not, with every loop's state in the body.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from conveyor_events import Envelope
from conveyor_runtime import Checkpoint, EventLog
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

T = TypeVar("T")

IDLE = 0.05
"""How long a subscription may keep its reader waiting before the log is asked whether it caught up."""


@dataclass
class Subscription:
    caught_up: bool = False


@dataclass
class LoopHealth:
    """One service loop: whether it is pausing before a restart, and the subscriptions of its current run."""

    readers: int
    """How many subscriptions the loop opens: it is ready once that many have caught up."""
    running: bool = False
    pausing: bool = False
    subscriptions: list[Subscription] = field(default_factory=list)

    def started(self) -> None:
        """A run begins (the first or a restart): its subscriptions are still to catch up."""
        self.running, self.pausing, self.subscriptions = True, False, []

    def failed(self) -> None:
        self.running, self.pausing = False, True

    def subscribed(self) -> Subscription:
        subscription = Subscription()
        self.subscriptions.append(subscription)
        return subscription

    @property
    def ready(self) -> bool:
        caught_up = sum(subscription.caught_up for subscription in self.subscriptions)
        return self.running and caught_up >= self.readers

    @property
    def state(self) -> str:
        if self.pausing:
            return "pausing before a restart"
        if not self.running:
            return "not started"
        return "ready" if self.ready else "catching up"


@dataclass
class Health:
    """The probes' view of a process: its log and its service loops."""

    log_open: bool = False
    loops: dict[str, LoopHealth] = field(default_factory=dict)

    def loop(self, name: str, readers: int) -> LoopHealth:
        self.loops[name] = LoopHealth(readers)
        return self.loops[name]

    def alive(self) -> bool:
        return not any(loop.pausing for loop in self.loops.values())

    def ready(self) -> bool:
        return self.log_open and all(loop.ready for loop in self.loops.values())

    def report(self) -> dict[str, Any]:
        return {
            "log": "open" if self.log_open else "closed",
            "loops": {name: loop.state for name, loop in sorted(self.loops.items())},
        }


def health_router(health: Health) -> APIRouter:
    """`GET /healthz` and `GET /readyz`, left out of the API's document: they are for orchestrators."""
    router = APIRouter(tags=["health"], include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> JSONResponse:
        return _answer(health.alive(), health.report())

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        return _answer(health.ready(), health.report())

    return router


def health_app(health: Health) -> FastAPI:
    """The probes alone, for a service that serves no API."""
    app = FastAPI(title="Conveyor health", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(health_router(health))
    return app


def _answer(holds: bool, report: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"status": "ok" if holds else "failing", **report}, status_code=200 if holds else 503)


class WatchedLog:
    """The log as one run of a service loop sees it: every call is passed on, and each subscription tells the
    loop's health when it has caught up (see the module's description)."""

    def __init__(self, log: EventLog, health: LoopHealth) -> None:
        self._log = log
        self._health = health

    async def append(
        self, events: Sequence[Envelope], *, expected_version: int | None = None, checkpoint: Checkpoint | None = None
    ) -> list[Envelope]:
        return await self._log.append(events, expected_version=expected_version, checkpoint=checkpoint)

    def enqueue(
        self, events: Sequence[Envelope], *, expected_version: int | None = None, checkpoint: Checkpoint | None = None
    ) -> asyncio.Future[list[Envelope]]:
        return self._log.enqueue(events, expected_version=expected_version, checkpoint=checkpoint)

    async def read(self, after: int = 0, limit: int = 1000, *, types: Collection[str] | None = None) -> list[Envelope]:
        return await self._log.read(after, limit, types=types)

    async def read_stream(self, stream: str, *, types: Collection[str] | None = None) -> list[Envelope]:
        return await self._log.read_stream(stream, types=types)

    async def checkpoint(self, consumer: str) -> int:
        return await self._log.checkpoint(consumer)

    async def head(self) -> int:
        return await self._log.head()

    def subscribe(self, after: int = 0, *, types: Collection[str] | None = None) -> AsyncIterator[Envelope]:
        def last(envelope: Envelope) -> int:
            return envelope.position

        return self._watched(after, types, lambda: self._log.subscribe(after, types=types), last)

    def subscribe_batches(
        self, after: int = 0, *, types: Collection[str] | None = None, limit: int = 500
    ) -> AsyncIterator[list[Envelope]]:
        def last(batch: list[Envelope]) -> int:
            return batch[-1].position

        return self._watched(after, types, lambda: self._log.subscribe_batches(after, types=types, limit=limit), last)

    async def _watched(
        self,
        after: int,
        types: Collection[str] | None,
        subscribe: Callable[[], AsyncIterator[T]],
        last: Callable[[T], int],
    ) -> AsyncGenerator[T, None]:
        subscription = self._health.subscribed()
        head = await self._log.head()
        items = subscribe()
        handled = after
        try:
            while True:
                subscription.caught_up = subscription.caught_up or handled >= head
                item = await (
                    anext(items) if subscription.caught_up else self._next(items, subscription, handled, head, types)
                )
                yield item
                handled = last(item)
        finally:
            if isinstance(items, AsyncGenerator):
                await items.aclose()

    async def _next(
        self,
        items: AsyncIterator[T],
        subscription: Subscription,
        handled: int,
        head: int,
        types: Collection[str] | None,
    ) -> T:
        """The next item; when it keeps the reader waiting, whether anything of its types up to `head` is left."""
        step = asyncio.ensure_future(anext(items))
        try:
            done, _ = await asyncio.wait({step}, timeout=IDLE)
            if not done:
                following = await self._log.read(handled, 1, types=types)
                subscription.caught_up = not following or following[0].position > head
            return await step
        finally:
            if not step.done():
                # Stopped while the step runs the subscription: end the step first, for a generator another task
                # runs cannot be closed (the error would hide the cancellation, and the loop would start again).
                step.cancel()
                await asyncio.wait({step})
                if not step.cancelled():
                    step.exception()  # what it ended with, unread: the subscription is closed anyway
