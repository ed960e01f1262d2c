"""The event log port: what every log (SQLite here, Kafka elsewhere) offers the services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from conveyor_events import Envelope


class ConcurrencyError(Exception):
    """The stream moved on since the writer read it: `expected` was not its current version."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream!r} is at version {actual}, not the expected {expected}")
        self.stream = stream
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A consumer's position, saved in the same transaction as what the consumer wrote."""

    consumer: str
    position: int


def appended_ids(events: Sequence[Envelope]) -> list[str]:
    """The event ids of one append, after checking what every log requires of it: one stream, no id twice."""
    if len(events) == 1:
        return [events[0].event_id]
    streams = {envelope.stream for envelope in events}
    if len(streams) > 1:
        named = ", ".join(repr(stream) for stream in sorted(streams)[:3])
        more = f" and {len(streams) - 3} more" if len(streams) > 3 else ""
        raise ValueError(f"one append writes one stream, not {len(streams)}: {named}{more}")
    ids = [envelope.event_id for envelope in events]
    if len(set(ids)) < len(ids):
        twice = next(event_id for event_id in ids if ids.count(event_id) > 1)
        raise ValueError(f"one append holds the event id {twice!r} more than once")
    return ids


class EventLog(Protocol):
    """An append-only log of envelopes with streams, global positions and consumer checkpoints."""

    async def append(
        self,
        events: Sequence[Envelope],
        *,
        expected_version: int | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> list[Envelope]:
        """Append `events` (all of one stream) atomically, with `checkpoint` in the same transaction.

        With `expected_version`, the stream must be at that version (0: it must not exist) or
        `ConcurrencyError` is raised and nothing is written. Events whose id is already in their stream are not
        written again; the stored envelope is returned in their place (so a retried append is harmless).
        """
        ...

    def enqueue(
        self,
        events: Sequence[Envelope],
        *,
        expected_version: int | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> asyncio.Future[list[Envelope]]:
        """Queue an append now and return the future of its result, as `append` would.

        Appends queued by one task are written in the order queued, so a writer may go on while its earlier
        events are being written and wait for them later.
        """
        ...

    async def read(self, after: int = 0, limit: int = 1000, *, types: Collection[str] | None = None) -> list[Envelope]:
        """Envelopes with a global position greater than `after` (of `types` only, when given), in order."""
        ...

    async def read_stream(self, stream: str, *, types: Collection[str] | None = None) -> list[Envelope]:
        """Every envelope of one stream (of `types` only, when given), in order."""
        ...

    def subscribe(self, after: int = 0, *, types: Collection[str] | None = None) -> AsyncIterator[Envelope]:
        """Every envelope after `after` (of `types` only, when given), then each new one, forever."""
        ...

    def subscribe_batches(
        self, after: int = 0, *, types: Collection[str] | None = None, limit: int = 500
    ) -> AsyncIterator[list[Envelope]]:
        """Like `subscribe`, a batch of at most `limit` envelopes at a time, as they are found."""
        ...

    async def checkpoint(self, consumer: str) -> int:
        """The last position `consumer` saved, 0 when none."""
        ...

    async def head(self) -> int:
        """The global position of the last envelope, 0 when the log is empty."""
        ...
