"""Where a job's events go: the port between running a job and whoever stores what it reports.

The in-process runner hands them to the log itself (an `EventLog` is a `JobEvents`); a runner on another host
sends them to its Conveyor over HTTP (`adapters.outbox.Outbox`). The job's code is the same either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from conveyor_events import Envelope


class JobEvents(Protocol):
    """Appends a job's events in the order they are handed over, each event id stored once."""

    async def append(self, events: Sequence[Envelope]) -> list[Envelope]:
        """Store `events` (of one stream) after everything handed over before; what was stored."""
        ...

    def enqueue(self, events: Sequence[Envelope]) -> asyncio.Future[list[Envelope]]:
        """Hand `events` over now, keeping their place in the order, and return the future of `append`'s result."""
        ...
