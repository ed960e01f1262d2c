"""Reading one partition of one topic from any offset, seeing only committed transactions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

Record = Any
"""An aiokafka `ConsumerRecord` (aiokafka ships no type information)."""


class PartitionReader:
    """A consumer without a group, assigned to partition 0 of `topic`, moved by hand.

    `read_committed`: records of a transaction appear only once it committed, and never when it aborted, so
    what a reader sees is what the log holds. The lock is for its users: one reader serves one task at a time.
    """

    def __init__(self, bootstrap: str, topic: str, *, wait_ms: int = 100) -> None:
        self.lock = asyncio.Lock()
        self._bootstrap = bootstrap
        self._partition = TopicPartition(topic, 0)
        self._wait_ms = wait_ms
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
        ends = await self._consumer.end_offsets([self._partition])
        return int(ends[self._partition])

    async def fetch(self, max_records: int | None = None, timeout_ms: int | None = None) -> Sequence[Record]:
        """The next records, waiting up to `timeout_ms` for some; markers of transactions are skipped."""
        wait = self._wait_ms if timeout_ms is None else timeout_ms
        got = await self._consumer.getmany(self._partition, timeout_ms=wait, max_records=max_records)
        records: list[Record] = got.get(self._partition, [])
        return records

    async def read_to(self, end: int) -> AsyncIterator[Sequence[Record]]:
        """Batches of records from the current position until the position reaches `end`.

        Records past `end` that came in the same fetch are given too: they are committed as well.
        """
        while await self.position() < end:
            records = await self.fetch()
            if records:
                yield records
