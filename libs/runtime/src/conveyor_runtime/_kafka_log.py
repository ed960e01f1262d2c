"""The distributed event log: events in one Kafka topic of one partition, checkpoints in a compacted topic.

Order. The events topic has a single partition, so the log has one total order that every process sees, and
an event's global position is its offset + 1. Positions only grow; they are not consecutive, because each
transaction's commit marker takes an offset too. The price is throughput: one partition is written by one
broker at a time, and every run's events queue behind every other's. A later step partitions the topic by
run id (rule 3: a run's events share a partition key) and positions become per partition.

Streams. Kafka cannot append on a condition nor find a record by key, so the log keeps an index in memory:
each stream's version, the offsets of its events and their ids, built by reading the whole topic when the log
opens and brought up to date before every append and `read_stream`. That costs memory and start-up time in
proportion to the log, which is fine for now. Appends of one process are serialized by one writer task that
takes everything queued and writes it in one transaction (group commit), after checking each append's
`expected_version` and event ids against the index; a conflict fails only its own append. Two processes
appending to one stream at the same moment can both pass the check: one writer per run at a time (rule 3)
is what rules that out.

Atomicity. Events and the checkpoints that go with them are written in one Kafka transaction (an idempotent,
transactional producer, acks from every in-sync replica), and every reader reads `read_committed`, so a
consumer's position is never seen without what it wrote, nor the other way round. An append returns once the
transaction committed and its markers are in place, so what it wrote can be read at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from conveyor_events import Envelope

from conveyor_runtime._kafka_index import StreamIndex, decode, encode, record_type
from conveyor_runtime._kafka_reader import PartitionReader
from conveyor_runtime._kafka_topics import KafkaTopics, kafka_bootstrap, partition_counts
from conveyor_runtime._log import Checkpoint, ConcurrencyError, appended_ids

Mark = tuple[Literal["new", "stored"], int]
"""Where an event of an append ends up: the index of a record written now, or the offset it is stored at."""


@dataclass(slots=True)
class _Append:
    stream: str
    events: Sequence[Envelope]
    expected_version: int | None
    checkpoint: Checkpoint | None
    future: asyncio.Future[list[Envelope]]


@dataclass(slots=True)
class _Group:
    """What one transaction writes for a group of appends, and what each append gets back."""

    records: list[Envelope]
    """New events, placed at their sequence; their position comes from the offset they are written at."""
    encoded: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]
    checkpoints: list[Checkpoint]
    outcomes: list[list[Mark] | Exception]


class KafkaEventLog:
    """An `EventLog` on Kafka topics (see the module's description for how order, streams and atomicity work).

    Open it in the event loop that uses it: the Kafka clients belong to that loop.
    """

    def __init__(
        self,
        bootstrap: str | None = None,
        topics: KafkaTopics | None = None,
        *,
        transactional_id: str | None = None,
        max_batch: int = 4096,
        poll_interval: float = 0.25,
    ) -> None:
        self.bootstrap = bootstrap or kafka_bootstrap()
        self.topics = topics or KafkaTopics()
        # Unique by default, so that two live processes never fence each other; a service that restarts under
        # the same stable id fences its previous incarnation instead.
        self._transactional_id = transactional_id or f"conveyor-log-{uuid.uuid4().hex}"
        self._max_batch = max_batch
        self._poll_ms = int(poll_interval * 1000)
        self._producer: Any = None
        self._tail = PartitionReader(self.bootstrap, self.topics.events)
        """Follows the events topic to keep the index up to date."""
        self._reader = PartitionReader(self.bootstrap, self.topics.events)
        self._checkpoint_reader = PartitionReader(self.bootstrap, self.topics.checkpoints)
        self._index = StreamIndex()
        self._checkpoints: dict[str, int] = {}
        self._queue: asyncio.Queue[_Append | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- life cycle -----------------------------------------------------------------------------------------

    async def open(self) -> KafkaEventLog:
        await self._check_topics()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            transactional_id=self._transactional_id,
            enable_idempotence=True,
            acks="all",
        )
        try:
            await self._producer.start()
            for reader in (self._tail, self._reader, self._checkpoint_reader):
                await reader.start()
            async with self._tail.lock:
                await self._catch_up()
        except BaseException:
            await self.close()
            raise
        self._loop = asyncio.get_running_loop()
        self._writer = asyncio.create_task(self._write_forever(), name="kafka-event-log-writer")
        return self

    async def close(self) -> None:
        if self._writer is not None:
            self._queue.put_nowait(None)
            await self._writer
            self._writer = None
        for reader in (self._tail, self._reader, self._checkpoint_reader):
            await reader.stop()
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def __aenter__(self) -> KafkaEventLog:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _check_topics(self) -> None:
        names = [self.topics.events, self.topics.checkpoints]
        counts = await partition_counts(self.bootstrap, names)
        missing = [name for name in names if name not in counts]
        if missing:
            listed = ", ".join(missing)
            raise RuntimeError(f"Kafka at {self.bootstrap} has no topic {listed}: run `conveyor kafka init`")
        if counts[self.topics.events] != 1:
            raise RuntimeError(
                f"topic {self.topics.events} has {counts[self.topics.events]} partitions; the log needs exactly 1"
            )

    # -- writing --------------------------------------------------------------------------------------------

    async def append(
        self,
        events: Sequence[Envelope],
        *,
        expected_version: int | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> list[Envelope]:
        return await self.enqueue(events, expected_version=expected_version, checkpoint=checkpoint)

    def enqueue(
        self,
        events: Sequence[Envelope],
        *,
        expected_version: int | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> asyncio.Future[list[Envelope]]:
        if self._writer is None:
            raise RuntimeError("the event log is not open")
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError("the Kafka event log is used from the event loop it was opened in only")
        appended_ids(events)
        result: asyncio.Future[list[Envelope]] = asyncio.get_running_loop().create_future()
        if not events and checkpoint is None:
            result.set_result([])
            return result
        stream = events[0].stream if events else ""
        self._queue.put_nowait(_Append(stream, events, expected_version, checkpoint, result))
        return result

    async def _write_forever(self) -> None:
        stopping = False
        while not stopping:
            item = await self._queue.get()
            group: list[_Append] = []
            while item is not None:
                group.append(item)
                if len(group) >= self._max_batch or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            stopping = item is None
            if group:
                await self._write(group)

    async def _write(self, appends: list[_Append]) -> None:
        """Write a group of appends in one transaction; what one append did wrong fails only that append."""
        try:
            async with self._tail.lock:
                await self._catch_up()
            group = self._plan(appends)
            outcomes = [marks for marks in group.outcomes if isinstance(marks, list)]
            found = await self._envelopes_at([at for marks in outcomes for kind, at in marks if kind == "stored"])
            offsets = await self._commit(group) if group.records or group.checkpoints else []
        except Exception as error:
            for entry in appends:
                if not entry.future.done():
                    entry.future.set_exception(error)
            return
        placed = zip(group.records, offsets, strict=True)
        written = [record.placed(record.sequence, offset + 1) for record, offset in placed]
        for entry, outcome in zip(appends, group.outcomes, strict=True):
            if entry.future.done():
                continue
            if isinstance(outcome, Exception):
                entry.future.set_exception(outcome)
            else:
                entry.future.set_result([written[at] if kind == "new" else found[at] for kind, at in outcome])

    def _plan(self, appends: list[_Append]) -> _Group:
        group = _Group([], [], [], [])
        versions: dict[str, int] = {}
        placed_now: dict[tuple[str, str], int] = {}
        for entry in appends:
            try:
                marks = self._place(entry, group, versions, placed_now) if entry.events else []
            except Exception as error:
                group.outcomes.append(error)
                continue
            if entry.checkpoint is not None:
                group.checkpoints.append(entry.checkpoint)
            group.outcomes.append(marks)
        return group

    def _place(
        self, entry: _Append, group: _Group, versions: dict[str, int], placed_now: dict[tuple[str, str], int]
    ) -> list[Mark]:
        """Give an append's new events their sequences; raises, having added nothing, when it cannot be written."""
        stream = entry.stream
        version = versions.get(stream, self._index.version(stream))
        known: dict[str, Mark] = {}
        for envelope in entry.events:
            if (stream, envelope.event_id) in placed_now:
                known[envelope.event_id] = ("new", placed_now[(stream, envelope.event_id)])
            elif (offset := self._index.offset_of(stream, envelope.event_id)) is not None:
                known[envelope.event_id] = ("stored", offset)
        fresh = len(known) < len(entry.events)
        if fresh and entry.expected_version is not None and entry.expected_version != version:
            raise ConcurrencyError(stream, entry.expected_version, version)
        marks: list[Mark] = []
        records: list[Envelope] = []
        for envelope in entry.events:
            if envelope.event_id in known:
                marks.append(known[envelope.event_id])
                continue
            version += 1
            records.append(envelope.placed(version, 0))
            marks.append(("new", len(group.records) + len(records) - 1))
        encoded = [encode(record) for record in records]  # an event that cannot be encoded fails its append only
        for record in records:
            placed_now[(stream, record.event_id)] = len(group.records)
            group.records.append(record)
        group.encoded.extend(encoded)
        versions[stream] = version
        return marks

    async def _commit(self, group: _Group) -> list[int]:
        """Write the group in one transaction; the offsets of its events once they can be read."""
        producer = self._producer
        await producer.begin_transaction()
        try:
            sending = [
                await producer.send(self.topics.events, value, key=key, headers=headers, partition=0)
                for key, value, headers in group.encoded
            ]
            for checkpoint in group.checkpoints:
                value = json.dumps({"position": checkpoint.position}).encode()
                sending.append(
                    await producer.send(self.topics.checkpoints, value, key=checkpoint.consumer.encode(), partition=0)
                )
            sent = await asyncio.gather(*sending)
            await producer.commit_transaction()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.abort_transaction()
            raise
        offsets = [int(metadata.offset) for metadata in sent]
        # The commit markers are written after the commit returns: wait for them, so a read right after the
        # append sees what it wrote.
        if group.records:
            await _until_readable(self._tail, offsets[len(group.records) - 1])
        if group.checkpoints:
            await _until_readable(self._checkpoint_reader, offsets[-1])
        return offsets[: len(group.records)]

    async def _catch_up(self) -> None:
        """Read the events topic to its end into the index (the caller holds the tail's lock)."""
        async for records in self._tail.read_to(await self._tail.end()):
            for record in records:
                self._index.add_record(record)

    # -- reading --------------------------------------------------------------------------------------------

    async def read(self, after: int = 0, limit: int = 1000, *, types: Collection[str] | None = None) -> list[Envelope]:
        wanted = None if types is None else frozenset(types)
        found: list[Any] = []
        async with self._reader.lock:
            end = await self._reader.end()
            if after >= end or wanted == frozenset():
                return []
            self._reader.seek(after)
            while len(found) < limit and await self._reader.position() < end:
                for record in await self._reader.fetch(limit):
                    if wanted is None or record_type(record) in wanted:
                        found.append(record)
        return [decode(record) for record in found[:limit]]

    async def read_stream(self, stream: str, *, types: Collection[str] | None = None) -> list[Envelope]:
        async with self._tail.lock:
            await self._catch_up()
            offsets = self._index.offsets(stream, types)
        found = await self._envelopes_at(offsets)
        return [found[offset] for offset in offsets]

    async def _envelopes_at(self, offsets: list[int]) -> dict[int, Envelope]:
        """The events at these offsets, read in one pass from the first to the last."""
        wanted = set(offsets)
        found: dict[int, Envelope] = {}
        if not wanted:
            return found
        async with self._reader.lock:
            self._reader.seek(min(wanted))
            async for records in self._reader.read_to(max(wanted) + 1):
                found.update((record.offset, decode(record)) for record in records if record.offset in wanted)
        return found

    async def checkpoint(self, consumer: str) -> int:
        reader = self._checkpoint_reader
        async with reader.lock:
            async for records in reader.read_to(await reader.end()):
                for record in records:
                    if record.value is None:
                        self._checkpoints.pop(bytes(record.key).decode(), None)
                    else:
                        self._checkpoints[bytes(record.key).decode()] = int(json.loads(record.value)["position"])
        return self._checkpoints.get(consumer, 0)

    async def head(self) -> int:
        async with self._tail.lock:
            await self._catch_up()
            return self._index.head

    async def subscribe(self, after: int = 0, *, types: Collection[str] | None = None) -> AsyncIterator[Envelope]:
        async with contextlib.aclosing(self.subscribe_batches(after, types=types)) as batches:
            async for batch in batches:
                for envelope in batch:
                    yield envelope

    async def subscribe_batches(
        self, after: int = 0, *, types: Collection[str] | None = None, limit: int = 500
    ) -> AsyncGenerator[list[Envelope], None]:
        """Each subscriber reads with a consumer of its own; a fetch waits at the broker until events come."""
        wanted = None if types is None else frozenset(types)
        reader = PartitionReader(self.bootstrap, self.topics.events, wait_ms=self._poll_ms)
        await reader.start(after)
        try:
            while True:
                records = await reader.fetch(limit)
                batch = [decode(record) for record in records if wanted is None or record_type(record) in wanted]
                if batch:
                    yield batch
        finally:
            await reader.stop()


async def _until_readable(reader: PartitionReader, offset: int) -> None:
    """Wait until a `read_committed` reader can read the record at `offset` (its transaction's marker is in)."""
    async with asyncio.timeout(30), reader.lock:
        while await reader.end() <= offset:
            await asyncio.sleep(0.002)
