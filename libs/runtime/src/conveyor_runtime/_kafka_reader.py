"""Reading one partition of one topic from any offset, seeing only committed transactions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

Record = Any
"""An aiokafka `ConsumerRecord` (aiokafka ships no type information)."""

_CATCHING_UP_MS = 2
"""How long one fetch of a reader catching up to a known end waits for records."""


class EndOffsets:
    """Asks where partitions end, over a connection of its own.

    A broker answers a connection's requests in order, so a reader asking on its own connection would wait
    behind its fetch, which waits at the broker for new records (up to the reader's wait each time).
    """

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._consumer: Any = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def end(self, partition: TopicPartition) -> int:
        """The offset after the last record of `partition` a `read_committed` reader can read now."""
        ends = await self._consumer.end_offsets([partition])
        return int(ends[partition])


class PartitionReader:
    """A consumer without a group, assigned to partition 0 of `topic`, moved by hand.

    `read_committed`: records of a transaction appear only once it committed, and never when it aborted, so
    what a reader sees is what the log holds. The lock is for its users: one reader serves one task at a time.

    Between reads the partition is paused, unless the reader `prefetches` (a subscriber's, which reads on and
    on): a consumer otherwise keeps a fetch waiting at the broker, and a read after a seek would wait for it.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        wait_ms: int = 100,
        ends: EndOffsets | None = None,
        prefetches: bool = False,
    ) -> None:
        self.lock = asyncio.Lock()
        self._bootstrap = bootstrap
        self._partition = TopicPartition(topic, 0)
        self._wait_ms = wait_ms
        self._ends = ends
        """Where to ask for the partition's end; None: on the reader's own connection (behind its fetch)."""
        self._prefetches = prefetches
        self._consumer: Any = None

    async def start(self, offset: int = 0) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._wait_ms,
        )
        await self._consumer.start()
        self._consumer.assign([self._partition])
        self._consumer.seek(self._partition, offset)
        if not self._prefetches:
            self._consumer.pause(self._partition)

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    def seek(self, offset: int) -> None:
        self._consumer.seek(self._partition, offset)

    async def position(self) -> int:
        return int(await self._consumer.position(self._partition))

    async def end(self) -> int:
        """The offset after the last record that can be read now (the last stable offset)."""
        if self._ends is not None:
            return await self._ends.end(self._partition)
        ends = await self._consumer.end_offsets([self._partition])
        return int(ends[self._partition])

    async def fetch(self, max_records: int | None = None, timeout_ms: int | None = None) -> Sequence[Record]:
        """The next records, waiting up to `timeout_ms` for some; markers of transactions are skipped."""
        wait = self._wait_ms if timeout_ms is None else timeout_ms
        if self._prefetches:
            got = await self._consumer.getmany(self._partition, timeout_ms=wait, max_records=max_records)
        else:
            self._consumer.resume(self._partition)
            try:
                got = await self._consumer.getmany(self._partition, timeout_ms=wait, max_records=max_records)
            finally:
                self._consumer.pause(self._partition)
        records: list[Record] = got.get(self._partition, [])
        return records

    async def read_to(self, end: int) -> AsyncIterator[Sequence[Record]]:
        """Batches of records from the current position until the position reaches `end`.

        Records past `end` that came in the same fetch are given too: they are committed as well. Each fetch
        waits briefly: what lies before `end` is there already, and when only a transaction's marker is left, a
        fetch gives no record however long it waits (the position moves past the marker all the same).
        """
        while await self.position() < end:
            records = await self.fetch(timeout_ms=_CATCHING_UP_MS)
            if records:
                yield records
