"""A job's events on their way to the server: sent in the order handed over, in batches, retried until taken.

One batch is in flight at a time; what is handed over meanwhile gathers into the next one, so a quiet job's
events go out at once and a chatty job's in few requests. A batch that fails in transit is sent again as it
was: the server stores an event id once, so nothing is stored twice, and nothing later overtakes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from conveyor_events import Envelope

from conveyor_runner_agent.adapters.server import ConveyorServer, LeaseOver, Refused, Unavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Seconds to wait before the n-th retry: doubling from `first` up to `longest`."""

    first: float = 0.2
    longest: float = 10.0

    def delay(self, retry: int) -> float:
        return float(min(self.first * 2 ** min(retry, 30), self.longest))


@dataclass
class _Handed:
    events: list[Envelope]
    result: asyncio.Future[list[Envelope]]


class Outbox:
    """The `JobEvents` of an attempt leased over HTTP.

    When the server answers that the lease is over, `on_over` is told (the job is to stop) and events it no
    longer takes are dropped, as their attempt already ended. A batch it refuses fails the appends it holds.
    """

    def __init__(
        self,
        server: ConveyorServer,
        lease_id: str,
        *,
        on_over: Callable[[LeaseOver], None],
        max_batch: int = 500,
        backoff: Backoff = Backoff(),
    ) -> None:
        self._server = server
        self._lease_id = lease_id
        self._on_over = on_over
        self._max_batch = max_batch
        self._backoff = backoff
        self._handed: list[_Handed] = []
        self._wakeup = asyncio.Event()
        self._closed = False
        self._gone: LeaseOver | None = None
        self._task = asyncio.create_task(self._send_forever(), name=f"events of lease {lease_id}")

    def enqueue(self, events: Sequence[Envelope]) -> asyncio.Future[list[Envelope]]:
        if self._closed:
            raise RuntimeError("the outbox is closed")
        result: asyncio.Future[list[Envelope]] = asyncio.get_running_loop().create_future()
        if not events:
            result.set_result([])
            return result
        self._handed.append(_Handed(list(events), result))
        self._wakeup.set()
        return result

    async def append(self, events: Sequence[Envelope]) -> list[Envelope]:
        return await self.enqueue(events)

    async def close(self) -> None:
        """Send everything handed over, then stop; cancelling this gives up on what is still unsent."""
        self._closed = True
        self._wakeup.set()
        try:
            await asyncio.shield(self._task)
        except asyncio.CancelledError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            unsent = sum(len(handed.events) for handed in self._handed)
            logger.error("gave up sending %d events of lease %s to %s", unsent, self._lease_id, self._server.base_url)
            raise
        finally:
            for handed in self._handed:
                handed.result.cancel()

    async def _send_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._handed:
                await self._send(self._next_batch())
            if self._closed:
                return

    def _next_batch(self) -> list[_Handed]:
        """The oldest appends, whole, up to `max_batch` events (at least one append), no event id twice."""
        batch: list[_Handed] = []
        ids: set[str] = set()
        count = 0
        for handed in self._handed:
            fresh = {envelope.event_id for envelope in handed.events}
            if batch and (count + len(handed.events) > self._max_batch or fresh & ids):
                break
            batch.append(handed)
            ids |= fresh
            count += len(handed.events)
        return batch

    async def _send(self, batch: list[_Handed]) -> None:
        events = [envelope for handed in batch for envelope in handed.events]
        retry = 0
        while self._gone is None:
            try:
                await self._server.report(self._lease_id, events)
                break
            except Unavailable as error:
                delay = self._backoff.delay(retry)
                logger.warning("events of lease %s not sent (%s); again in %.1f s", self._lease_id, error, delay)
                retry += 1
                await asyncio.sleep(delay)
            except LeaseOver as over:
                self._gone = over
                logger.warning("lease %s is over (%s): its remaining events are dropped", self._lease_id, over.state)
                self._on_over(over)
            except Exception as error:  # refused, or a fault of this process: the appends fail, later ones go on
                unexpected = not isinstance(error, Refused)
                logger.error("events of lease %s not taken: %s", self._lease_id, error, exc_info=unexpected)
                del self._handed[: len(batch)]
                for handed in batch:
                    handed.result.set_exception(error)
                return
        del self._handed[: len(batch)]
        for handed in batch:
            if not handed.result.done():
                handed.result.set_result(handed.events)
