"""The distributed event log: events in one Kafka topic of one partition, checkpoints in a compacted topic,
dead letters in a topic of their own.

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
`expected_version` and event ids against the index (`_kafka_plan`); a conflict fails only its own append.
Two processes appending to one stream at the same moment can both pass the check: one writer per run at a
time (rule 3) is what rules that out.

Atomicity. Events and the checkpoints that go with them are written in one Kafka transaction (an idempotent,
transactional producer, acks from every in-sync replica), and every reader reads `read_committed`, so a
consumer's position is never seen without what it wrote, nor the other way round. An append returns once the
transaction committed and its markers are in place, so what it wrote can be read at once. A log opened without
`fenced` (the edge's, which writes requests and decides nothing) writes a group of events without checkpoints as
one batch of an idempotent producer instead: the broker stores a batch whole or not at all, and it costs a
third of a transaction; a process started again under the same transactional id cannot refuse those, though.

Dead letters. The `dead-letters` stream, where a consumer leaves the events it could not handle, is written to
the dead-letter topic rather than the events topic, in the same transaction as the consumer's checkpoint; it
has an index of its own, so appending to it and `read_stream` work as for any stream, but it is not in the
log's order: `read` and `subscribe` never give it, and its envelopes' positions are offsets + 1 of the
dead-letter topic. A record of the events topic that is no event (a value that is not an envelope, a key or
header missing: anyone can produce to a topic) is skipped by every reader, and the first reader to meet it
hands it to the writer task, which keeps it on the dead-letter topic with the reason, its topic and offset and
its raw key, value and headers (see `_kafka_dead_letters`). Once per record: the dead-letter topic is read
before anything is kept there, so a record another process kept already is not kept again (two processes
meeting the same record at the very same moment may both keep it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from conveyor_events import Envelope

from conveyor_runtime._consumer import DEAD_LETTERS
from conveyor_runtime._kafka_dead_letters import DeadLetterIndex, Origin, kept_record
from conveyor_runtime._kafka_index import StreamIndex, Undecodable, decode, record_type
from conveyor_runtime._kafka_plan import Append, Group, Mark, plan
from conveyor_runtime._kafka_reader import EndOffsets, PartitionReader, Record
from conveyor_runtime._kafka_topics import KafkaTopics, kafka_bootstrap, partition_counts
from conveyor_runtime._log import Checkpoint, appended_ids

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Unreadable:
    """A record of the events topic that is no event, to be kept on the dead-letter topic."""

    record: Record
    reason: str

    @property
    def origin(self) -> Origin:
        return str(self.record.topic), int(self.record.offset)


@dataclass(slots=True, eq=False)
class _Topic:
    """A topic streams are appended to: a reader following it for its index, and one to read its events.

    `recent` keeps the last `RECENT_RECORDS` records the tail read, by offset: the reads that follow an append
    or a catch-up mostly ask for a run's latest events, which are then at hand without a fetch. Records, not
    envelopes: every read decodes its own, so no caller shares an event's mutable fields with another.
    """

    name: str
    tail: PartitionReader
    reader: PartitionReader
    index: StreamIndex
    recent: OrderedDict[int, Record] = field(default_factory=OrderedDict)

    def remember(self, record: Record) -> None:
        self.recent[int(record.offset)] = record
        if len(self.recent) > RECENT_RECORDS:
            self.recent.popitem(last=False)


RECENT_RECORDS = 4_096
"""How many of a topic's latest records a log keeps at hand (about 4 MiB of runs' events)."""
SPARSE_GAP = 2_000
"""Offsets of one stream further apart than this are read by seeking to the next, not by reading what is between:
a fetch costs about a round trip, reading 2,000 records about as much."""
BATCH_BYTES = 512 * 1024
"""The most one batch of records the producer sends to a partition holds: with aiokafka's default, 16 KiB, a
large append goes out as a batch per 40 events or so (producing 200 runs' events: 7,200-8,000 events/s, and
8,700-11,200 with this); half the broker's default largest message (1 MiB) leaves room."""


def _runs(offsets: list[int], gap: int) -> list[tuple[int, int]]:
    """The sorted `offsets` as (first, last) runs, split where two neighbours are more than `gap` apart."""
    runs: list[tuple[int, int]] = []
    for offset in offsets:
        if runs and offset - runs[-1][1] <= gap:
            runs[-1] = (runs[-1][0], offset)
        else:
            runs.append((offset, offset))
    return runs


class KafkaEventLog:
    """An `EventLog` on Kafka topics (see the module's description for how order, streams, atomicity and dead
    letters work).

    Open it in the event loop that uses it: the Kafka clients belong to that loop. `transactional_id` names its
    writer to the brokers (see `open_event_log` for the ids the services use); `fenced=False` lets appends without
    a checkpoint go outside transactions (see the module's description).
    """

    def __init__(
        self,
        bootstrap: str | None = None,
        topics: KafkaTopics | None = None,
        *,
        transactional_id: str | None = None,
        fenced: bool = True,
        max_batch: int = 4096,
        poll_interval: float = 0.25,
    ) -> None:
        self.bootstrap = bootstrap or kafka_bootstrap()
        self.topics = topics or KafkaTopics()
        # Unique by default, so that two live processes never fence each other; a service that restarts under
        # the same stable id fences its previous incarnation instead.
        self._transactional_id = transactional_id or f"conveyor-log-{uuid.uuid4().hex}"
        self._fenced = fenced
        self._max_batch = max_batch
        self._poll_ms = int(poll_interval * 1000)
        self._producer: Any = None
        self._unfenced: Any = None
        """Without `fenced`: the idempotent producer outside transactions that writes groups without checkpoints."""
        self._ends = EndOffsets(self.bootstrap)
        self._events = self._topic(self.topics.events, StreamIndex())
        self._dead_letters = DeadLetterIndex()
        self._dead = self._topic(self.topics.dead_letter, self._dead_letters)
        self._checkpoint_reader = PartitionReader(self.bootstrap, self.topics.checkpoints, ends=self._ends)
        self._checkpoints: dict[str, int] = {}
        self._reported: set[Origin] = set()
        """Unreadable records this log handed to the writer to keep (or found kept already)."""
        self._queue: asyncio.Queue[Append | _Unreadable | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def _topic(self, name: str, index: StreamIndex) -> _Topic:
        follow, read = (PartitionReader(self.bootstrap, name, ends=self._ends) for _ in range(2))
        return _Topic(name, follow, read, index)

    def _topic_of(self, stream: str) -> _Topic:
        return self._dead if stream == DEAD_LETTERS else self._events

    def _where(self, stream: str) -> tuple[str, StreamIndex]:
        topic = self._topic_of(stream)
        return topic.name, topic.index

    def _readers(self) -> list[PartitionReader]:
        return [self._events.tail, self._events.reader, self._dead.tail, self._dead.reader, self._checkpoint_reader]

    # -- life cycle -----------------------------------------------------------------------------------------

    async def open(self) -> KafkaEventLog:
        await self._check_topics()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            transactional_id=self._transactional_id,
            enable_idempotence=True,
            acks="all",
            max_batch_size=BATCH_BYTES,
        )
        if not self._fenced:
            self._unfenced = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all", max_batch_size=BATCH_BYTES
            )
        try:
            await self._producer.start()
            if self._unfenced is not None:
                await self._unfenced.start()
            await self._ends.start()
            for reader in self._readers():
                await reader.start()
            for topic in (self._dead, self._events):  # dead letters first: which unreadable records are kept
                async with topic.tail.lock:
                    await self._catch_up(topic)
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
        self._closed = True
        for reader in self._readers():
            await reader.stop()
        await self._ends.stop()
        for name in ("_producer", "_unfenced"):
            producer = getattr(self, name)
            if producer is not None:
                setattr(self, name, None)
                await producer.stop()

    async def __aenter__(self) -> KafkaEventLog:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _check_topics(self) -> None:
        names = [self.topics.events, self.topics.checkpoints, self.topics.dead_letter]
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
        self._queue.put_nowait(Append(stream, events, expected_version, checkpoint, result))
        return result

    async def _write_forever(self) -> None:
        stopping = False
        while not stopping:
            item = await self._queue.get()
            group: list[Append | _Unreadable] = []
            while item is not None:
                group.append(item)
                if len(group) >= self._max_batch or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            stopping = item is None
            if group:
                await self._write(group)

    async def _write(self, items: list[Append | _Unreadable]) -> None:
        """Write a group of appends (and unreadable records to keep) in one transaction; what one append did
        wrong fails only that append."""
        appends = [item for item in items if isinstance(item, Append)]
        unreadable = [item for item in items if isinstance(item, _Unreadable)]
        try:
            async with self._events.tail.lock:
                await self._catch_up(self._events)
            if unreadable or any(entry.stream == DEAD_LETTERS for entry in appends):
                async with self._dead.tail.lock:
                    await self._catch_up(self._dead)
            group = plan(appends, self._where)
            fresh = [item for item in unreadable if item.origin not in self._dead_letters.kept]
            group.kept = [(self._dead.name, *kept_record(item.record, item.reason)) for item in fresh]
            found = await self._stored(appends, group.outcomes)
            offsets = await self._commit(group) if group.records or group.kept or group.checkpoints else []
        except Exception as error:
            self._reported.difference_update(item.origin for item in unreadable)  # met again, they are tried again
            if unreadable:
                logger.exception("records that are no event could not be kept on %s", self._dead.name)
            for entry in appends:
                if not entry.future.done():
                    entry.future.set_exception(error)
            return
        placed = zip(group.records, offsets, strict=True)
        written = [record.placed(record.sequence, offset + 1) for record, offset in placed]
        for entry, outcome in zip(appends, group.outcomes, strict=True):
            if entry.future.done():
                continue
            topic = self._topic_of(entry.stream).name
            if isinstance(outcome, Exception):
                entry.future.set_exception(outcome)
            elif lost := [at for kind, at in outcome if kind == "stored" and (topic, at) not in found]:
                stored = f"offset {lost[0]} of {topic}, which holds an event id of this append"
                entry.future.set_exception(Undecodable(f"{stored}, cannot be read: see {self._dead.name}"))
            else:
                entry.future.set_result([written[at] if kind == "new" else found[(topic, at)] for kind, at in outcome])

    async def _stored(self, appends: list[Append], outcomes: list[list[Mark] | Exception]) -> dict[Origin, Envelope]:
        """The envelopes already stored that appends return in place of events they hold again."""
        found: dict[Origin, Envelope] = {}
        for topic in (self._events, self._dead):
            offsets = [
                at
                for entry, marks in zip(appends, outcomes, strict=True)
                if isinstance(marks, list) and self._topic_of(entry.stream) is topic
                for kind, at in marks
                if kind == "stored"
            ]
            envelopes = await self._envelopes_at(topic, offsets)
            found.update(((topic.name, at), envelope) for at, envelope in envelopes.items())
        return found

    async def _commit(self, group: Group) -> list[int]:
        """Write the group in one transaction, or as one batch (see `_unfenced_batch`); the offsets of its events
        once they can be read."""
        if (batch := self._unfenced_batch(group)) is not None:
            sent = await (await self._unfenced.send_batch(batch, self._events.name, partition=0))
            offsets = [int(sent.offset) + number for number in range(len(group.records))]
            await _until_readable(self._events.tail, offsets[-1])
            return offsets
        producer = self._producer
        outgoing = [*group.encoded, *group.kept]
        await producer.begin_transaction()
        try:
            sending = [
                await producer.send(topic, value, key=key, headers=headers, partition=0)
                for topic, key, value, headers in outgoing
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
        last = {topic: offset for (topic, *_), offset in zip(outgoing, offsets, strict=False)}
        if group.checkpoints:
            last[self.topics.checkpoints] = offsets[-1]
        following = {self._events.name: self._events.tail, self._dead.name: self._dead.tail}
        for topic, offset in last.items():
            await _until_readable(following.get(topic, self._checkpoint_reader), offset)
        return offsets[: len(group.records)]

    def _unfenced_batch(self, group: Group) -> Any:
        """The group's events as one batch of the producer outside transactions, when the log is not `fenced` and
        the group is events alone that fit one batch; else None.

        The broker writes a batch whole or not at all, so such a group needs no transaction to be atomic: it
        saves the transaction's requests to its coordinator and the wait for its markers (2-3 ms an append
        instead of 7-8 here, alone). What it gives up is fencing, which only the transactional producer has.
        """
        if self._unfenced is None or group.checkpoints or group.kept or not group.records:
            return None
        if any(topic != self._events.name for topic, *_ in group.encoded):
            return None
        batch = self._unfenced.create_batch()
        for _, key, value, headers in group.encoded:
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                return None  # larger than one batch: a transaction keeps it whole
        return batch

    async def _catch_up(self, topic: _Topic) -> None:
        """Read a topic to its end into its index (the caller holds its tail's lock)."""
        async for records in topic.tail.read_to(await topic.tail.end()):
            for record in records:
                topic.remember(record)
                try:
                    topic.index.add_record(record)
                except Undecodable as error:
                    self._unreadable(record, str(error))

    def _unreadable(self, record: Record, reason: str) -> None:
        """Skip a record that is no event; have the writer keep it on the dead-letter topic, once."""
        origin: Origin = (str(record.topic), int(record.offset))
        if origin in self._reported or origin in self._dead_letters.kept:
            return
        self._reported.add(origin)
        if record.topic != self._events.name or self._closed:
            logger.warning("skipped offset %d of %s, which is no event: %s", record.offset, record.topic, reason)
            return
        logger.warning(
            "skipped offset %d of %s, which is no event: %s; it is kept on %s",
            record.offset,
            record.topic,
            reason,
            self._dead.name,
        )
        self._queue.put_nowait(_Unreadable(record, reason))

    def _readable(self, records: Sequence[Record], wanted: frozenset[str] | None, at_most: int) -> list[Envelope]:
        """The events of `wanted` types among `records`, at most `at_most`; records that are none are skipped."""
        found: list[Envelope] = []
        for record in records:
            if len(found) >= at_most:
                break
            try:
                if wanted is None or record_type(record) in wanted:
                    found.append(decode(record))
            except Undecodable as error:
                self._unreadable(record, str(error))
        return found

    # -- reading --------------------------------------------------------------------------------------------

    async def read(self, after: int = 0, limit: int = 1000, *, types: Collection[str] | None = None) -> list[Envelope]:
        if types is not None:
            # The index knows where events of each type are: only those are read, not what lies between.
            async with self._events.tail.lock:
                await self._catch_up(self._events)
                offsets = self._events.index.typed_offsets(set(types), after, limit)
            at = await self._envelopes_at(self._events, offsets)
            return [at[offset] for offset in offsets if offset in at]
        found: list[Envelope] = []
        reader = self._events.reader
        async with reader.lock:
            end = await reader.end()
            if after >= end:
                return []
            reader.seek(after)
            while len(found) < limit and await reader.position() < end:
                found += self._readable(await reader.fetch(limit), None, limit - len(found))
        return found

    async def read_stream(self, stream: str, *, types: Collection[str] | None = None) -> list[Envelope]:
        topic = self._topic_of(stream)
        async with topic.tail.lock:
            await self._catch_up(topic)
            offsets = topic.index.offsets(stream, types)
        found = await self._envelopes_at(topic, offsets)
        return [found[offset] for offset in offsets if offset in found]

    async def _envelopes_at(self, topic: _Topic, offsets: list[int]) -> dict[int, Envelope]:
        """The events at these offsets of `topic`: each run of offsets near each other read in one pass, and
        from one run to the next by seeking, not by reading every record between (a stream's events may lie
        far apart in a long log)."""
        wanted = set(offsets)
        found: dict[int, Envelope] = {}
        for offset in offsets:
            record = topic.recent.get(offset)
            if record is None:
                continue
            wanted.discard(offset)
            if envelopes := self._readable([record], None, 1):
                found[offset] = envelopes[0]
        if not wanted:
            return found
        async with topic.reader.lock:
            for first, last in _runs(sorted(wanted), SPARSE_GAP):
                topic.reader.seek(first)
                async for records in topic.reader.read_to(last + 1):
                    for record in records:
                        if record.offset in wanted and (envelopes := self._readable([record], None, 1)):
                            found[record.offset] = envelopes[0]
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
        async with self._events.tail.lock:
            await self._catch_up(self._events)
            return self._events.index.head

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
        reader = PartitionReader(self.bootstrap, self.topics.events, wait_ms=self._poll_ms, prefetches=True)
        await reader.start(after)
        try:
            while True:
                batch = self._readable(await reader.fetch(limit), wanted, limit)
                if batch:
                    yield batch
        finally:
            await reader.stop()


async def _until_readable(reader: PartitionReader, offset: int) -> None:
    """Wait until a `read_committed` reader can read the record at `offset` (its transaction's marker is in)."""
    async with asyncio.timeout(30), reader.lock:
        while await reader.end() <= offset:
            await asyncio.sleep(0.002)
