"""The embedded event log: one SQLite file in WAL mode, written by one thread that commits in groups."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from conveyor_events import Envelope, envelope_from_dict

from conveyor_runtime._log import Checkpoint, ConcurrencyError

Synchronous = Literal["OFF", "NORMAL", "FULL"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    occurred_at TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    causation_id TEXT,
    traceparent TEXT,
    tracestate TEXT,
    data TEXT NOT NULL,
    UNIQUE (stream, sequence),
    -- An event's id is unique within its stream (a redelivery lands on the same stream); keyed by stream
    -- first, the index grows where the stream grows instead of at random places.
    UNIQUE (stream, event_id)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    consumer TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
"""
_COLUMNS = (
    "position, stream, sequence, event_id, type, schema_version, occurred_at,"
    " correlation_id, causation_id, traceparent, tracestate, data"
)
_INSERT = f"INSERT INTO events ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
_UPSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (consumer, position) VALUES (?, ?)"
    " ON CONFLICT (consumer) DO UPDATE SET position = excluded.position"
)
_STOP = object()


Placement = tuple[int, int]
"""Where the log put an event: (sequence in its stream, global position)."""
Placed = list[Placement | Envelope]
"""Per event of an append: its placement, or the envelope already stored under its id."""


@dataclass(slots=True)
class _Append:
    stream: str
    rows: list[tuple[Any, ...]]
    """The events, encoded by the caller: everything of a row but position, stream and sequence."""
    ids: list[str]
    expected_version: int | None
    checkpoint: Checkpoint | None
    future: asyncio.Future[Placed]
    loop: asyncio.AbstractEventLoop


@dataclass(slots=True)
class _Batch:
    """What one transaction knows while it writes: the head and the versions of the streams it touched."""

    head: int
    versions: dict[str, int] = field(default_factory=dict)


def _row_to_envelope(row: sqlite3.Row | tuple[Any, ...]) -> Envelope:
    (position, stream, sequence, event_id, type_, version, occurred_at) = row[:7]
    (correlation_id, causation_id, traceparent, tracestate, data) = row[7:]
    return envelope_from_dict(
        {
            "position": position,
            "stream": stream,
            "sequence": sequence,
            "event_id": event_id,
            "type": type_,
            "schema_version": version,
            "occurred_at": occurred_at,
            "correlation_id": correlation_id,
            "causation_id": causation_id,
            "traceparent": traceparent,
            "tracestate": tracestate,
            "data": json.loads(data),
        }
    )


def _settle_all(settled: list[tuple[asyncio.Future[Placed], Placed | BaseException]]) -> None:
    for future, outcome in settled:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class SqliteEventLog:
    """An `EventLog` in one SQLite file.

    Appends from any task are queued to a single writer thread, which takes everything queued at that moment
    and commits it in one transaction (group commit), each append inside its own savepoint so that one
    conflict does not fail the others. An event's id is unique within its stream: appending it again returns
    the stored envelope instead of writing a second one. An append returns only after its transaction
    committed: with WAL and ``synchronous=NORMAL`` a committed event survives the process being killed;
    ``FULL`` also survives the machine losing power, at the cost of an fsync per commit.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: Synchronous = "NORMAL",
        max_batch: int = 4096,
        poll_interval: float = 0.25,
    ) -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._max_batch = max_batch
        self._poll_interval = poll_interval
        self._queue: queue.SimpleQueue[_Append | object] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[asyncio.Event, frozenset[str] | None] = {}
        """Each waiting subscriber, with the event types it follows (None: all)."""
        self._local = threading.local()
        self._versions: dict[str, int] = {}
        self._head: int | None = None

    # -- life cycle -----------------------------------------------------------------------------------------

    async def open(self) -> SqliteEventLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        connection = self._connect()
        connection.executescript(_SCHEMA)
        ready = threading.Event()
        self._writer = threading.Thread(
            target=self._write_forever, args=(connection, ready), name="event-log-writer", daemon=True
        )
        self._writer.start()
        ready.wait()
        return self

    async def close(self) -> None:
        if self._writer is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        reader = getattr(self._local, "connection", None)
        if reader is not None:
            reader.close()
            self._local.connection = None

    async def __aenter__(self) -> SqliteEventLog:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        connection.execute("PRAGMA cache_size=-65536")
        return connection

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
        streams = {envelope.stream for envelope in events}
        if len(streams) > 1:
            raise ValueError(f"one append writes one stream, not {sorted(streams)}")
        loop = asyncio.get_running_loop()
        result: asyncio.Future[list[Envelope]] = loop.create_future()
        if not events and checkpoint is None:
            result.set_result([])
            return result
        ids = [envelope.event_id for envelope in events]
        if len(set(ids)) < len(ids):
            twice = next(event_id for event_id in ids if ids.count(event_id) > 1)
            raise ValueError(f"one append holds the event id {twice!r} more than once")
        # Encoded here, so that an event that cannot be encoded fails its own append and no other.
        rows = [_encode(envelope) for envelope in events]
        placed: asyncio.Future[Placed] = loop.create_future()
        stream = events[0].stream if events else ""
        self._queue.put(_Append(stream, rows, ids, expected_version, checkpoint, placed, loop))

        def finish(done: asyncio.Future[Placed]) -> None:
            if result.cancelled():
                return
            if done.exception() is not None:
                result.set_exception(done.exception())  # type: ignore[arg-type]
                return
            result.set_result(
                [
                    where if isinstance(where, Envelope) else envelope.placed(*where)
                    for envelope, where in zip(events, done.result(), strict=True)
                ]
            )

        placed.add_done_callback(finish)
        return result

    def _write_forever(self, connection: sqlite3.Connection, ready: threading.Event) -> None:
        ready.set()
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            batch = [item]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            appends = [entry for entry in batch if isinstance(entry, _Append)]
            outcomes = self._commit(connection, appends)
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
            for entry, outcome in zip(appends, outcomes, strict=True):
                by_loop.setdefault(entry.loop, []).append((entry.future, outcome))
            for loop, settled in by_loop.items():
                if not loop.is_closed():
                    loop.call_soon_threadsafe(_settle_all, settled)
            if self._loop is not None and not self._loop.is_closed():
                appended = frozenset(row[1] for entry in appends for row in entry.rows)
                self._loop.call_soon_threadsafe(self._wake, appended)
        connection.close()

    def _commit(self, connection: sqlite3.Connection, appends: list[_Append]) -> list[Placed | BaseException]:
        """Write a group of appends in one transaction: the fast way first, the careful way on a conflict.

        The fast way trusts the stream versions this writer remembers (forgotten whenever the log's head
        moved without it, as when another process wrote) and writes every row with one statement. A unique-key
        violation (an event id already in its stream) rolls it back, and the group is written again one append
        at a time, each in its own savepoint.
        """
        try:
            connection.execute("BEGIN IMMEDIATE")
            self._sync_head(connection)
            try:
                outcomes = self._write_fast(connection, appends)
            except sqlite3.IntegrityError:
                connection.execute("ROLLBACK")
                connection.execute("BEGIN IMMEDIATE")
                self._sync_head(connection)
                outcomes = self._write_careful(connection, appends)
            connection.execute("COMMIT")
        except Exception as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            self._versions.clear()
            self._head = None
            return [error] * len(appends)
        return outcomes

    def _sync_head(self, connection: sqlite3.Connection) -> None:
        (head,) = connection.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()
        if head != self._head or len(self._versions) > 100_000:
            self._versions.clear()
        self._head = head

    def _write_fast(self, connection: sqlite3.Connection, appends: list[_Append]) -> list[Placed | BaseException]:
        assert self._head is not None
        head = self._head
        versions: dict[str, int] = {}
        rows: list[tuple[Any, ...]] = []
        checkpoints: list[tuple[str, int]] = []
        outcomes: list[Placed | BaseException] = []
        for entry in appends:
            placed: Placed = []
            if entry.rows:
                stream = entry.stream
                version = versions.get(stream, self._versions.get(stream))
                if version is None:
                    version = self._stream_version(connection, stream)
                if entry.expected_version is not None and entry.expected_version != version:
                    versions[stream] = version
                    stored = self._already_stored(connection, entry)
                    if len(stored) < len(entry.ids):
                        outcomes.append(ConcurrencyError(stream, entry.expected_version, version))
                        continue
                    placed = [stored[event_id] for event_id in entry.ids]  # a retry of an append that landed
                else:
                    for row in entry.rows:
                        version += 1
                        head += 1
                        placed.append((version, head))
                        rows.append((head, stream, version, *row))
                    versions[stream] = version
            if entry.checkpoint is not None:
                checkpoints.append((entry.checkpoint.consumer, entry.checkpoint.position))
            outcomes.append(placed)
        connection.executemany(_INSERT, rows)
        connection.executemany(_UPSERT_CHECKPOINT, checkpoints)
        self._versions.update(versions)
        self._head = head
        return outcomes

    def _write_careful(
        self, connection: sqlite3.Connection, appends: list[_Append]
    ) -> list[Placed | BaseException]:
        assert self._head is not None
        batch = _Batch(head=self._head, versions=self._versions)
        outcomes = [self._write_one(connection, batch, entry) for entry in appends]
        self._head = batch.head
        return outcomes

    def _write_one(self, connection: sqlite3.Connection, batch: _Batch, entry: _Append) -> Placed | BaseException:
        """One append inside the group's transaction; what fails is undone without failing the others."""
        saved = batch.head, dict(batch.versions)
        connection.execute("SAVEPOINT one_append")
        try:
            placed = self._insert(connection, batch, entry)
        except Exception as error:
            batch.head = saved[0]
            batch.versions.clear()
            batch.versions.update(saved[1])
            connection.execute("ROLLBACK TO one_append")
            connection.execute("RELEASE one_append")
            return error
        connection.execute("RELEASE one_append")
        return placed

    def _insert(self, connection: sqlite3.Connection, batch: _Batch, entry: _Append) -> Placed:
        placed: Placed = []
        if entry.rows:
            stream = entry.stream
            version = batch.versions.get(stream)
            if version is None:
                version = self._stream_version(connection, stream)
            stored = self._already_stored(connection, entry)
            if len(stored) == len(entry.ids):
                placed = [stored[event_id] for event_id in entry.ids]
            else:
                if entry.expected_version is not None and entry.expected_version != version:
                    raise ConcurrencyError(stream, entry.expected_version, version)
                rows = []
                for event_id, row in zip(entry.ids, entry.rows, strict=True):
                    if event_id in stored:
                        placed.append(stored[event_id])
                        continue
                    version += 1
                    batch.head += 1
                    placed.append((version, batch.head))
                    rows.append((batch.head, stream, version, *row))
                connection.executemany(_INSERT, rows)
                batch.versions[stream] = version
        if entry.checkpoint is not None:
            connection.execute(_UPSERT_CHECKPOINT, (entry.checkpoint.consumer, entry.checkpoint.position))
        return placed

    @staticmethod
    def _stream_version(connection: sqlite3.Connection, stream: str) -> int:
        (version,) = connection.execute(
            "SELECT COALESCE(MAX(sequence), 0) FROM events WHERE stream = ?", (stream,)
        ).fetchone()
        return int(version)

    @staticmethod
    def _already_stored(connection: sqlite3.Connection, entry: _Append) -> dict[str, Envelope]:
        marks = ",".join("?" * len(entry.ids))
        rows = connection.execute(
            f"SELECT {_COLUMNS} FROM events WHERE stream = ? AND event_id IN ({marks})", [entry.stream, *entry.ids]
        )
        return {row[3]: _row_to_envelope(row) for row in rows}

    def _wake(self, appended: frozenset[str]) -> None:
        """Wake the subscribers that follow a type just appended; the others would find nothing new."""
        for waiter, types in self._waiters.items():
            if types is None or not appended.isdisjoint(types):
                waiter.set()

    # -- reading --------------------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            connection.execute("PRAGMA query_only=1")
            self._local.connection = connection
        return connection

    async def read(self, after: int = 0, limit: int = 1000, *, types: Collection[str] | None = None) -> list[Envelope]:
        return self._select("position > ?", (after,), types, f"ORDER BY position LIMIT {int(limit)}")

    async def read_stream(self, stream: str, *, types: Collection[str] | None = None) -> list[Envelope]:
        return self._select("stream = ?", (stream,), types, "ORDER BY sequence")

    def _select(
        self, where: str, parameters: tuple[Any, ...], types: Collection[str] | None, tail: str
    ) -> list[Envelope]:
        if types is not None:
            where += f" AND type IN ({','.join('?' * len(types))})"
            parameters += tuple(types)
        rows = self._reader().execute(f"SELECT {_COLUMNS} FROM events WHERE {where} {tail}", parameters)
        return [_row_to_envelope(row) for row in rows]

    def _read_ahead(self, after: int, limit: int, types: Collection[str] | None) -> tuple[list[Envelope], int]:
        """Matching envelopes after `after`, and the position up to which the log was looked through."""
        reader = self._reader()
        reader.execute("BEGIN")
        try:
            (head,) = reader.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()
            batch = self._select("position > ?", (after,), types, f"ORDER BY position LIMIT {limit}")
        finally:
            reader.execute("COMMIT")
        return batch, (head if len(batch) < limit else after)

    async def checkpoint(self, consumer: str) -> int:
        row = self._reader().execute("SELECT position FROM checkpoints WHERE consumer = ?", (consumer,)).fetchone()
        return int(row[0]) if row else 0

    async def head(self) -> int:
        (head,) = self._reader().execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()
        return int(head)

    async def subscribe(self, after: int = 0, *, types: Collection[str] | None = None) -> AsyncIterator[Envelope]:
        async for batch in self.subscribe_batches(after, types=types):
            for envelope in batch:
                yield envelope

    async def subscribe_batches(
        self, after: int = 0, *, types: Collection[str] | None = None, limit: int = 500
    ) -> AsyncIterator[list[Envelope]]:
        position = after
        waiter = asyncio.Event()
        self._waiters[waiter] = None if types is None else frozenset(types)
        try:
            while True:
                waiter.clear()
                batch, scanned_to = self._read_ahead(position, limit, types)
                if batch:
                    yield batch
                    position = batch[-1].position
                position = max(position, scanned_to)
                if not batch:
                    # asyncio.timeout rather than wait_for: on 3.11 wait_for can swallow a cancellation.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._poll_interval):
                            await waiter.wait()
        finally:
            self._waiters.pop(waiter, None)


def _encode(envelope: Envelope) -> tuple[Any, ...]:
    """An envelope as the columns of its row, but position, stream and sequence."""
    return (
        envelope.event_id,
        envelope.type,
        envelope.schema_version,
        envelope.occurred_at_text(),
        envelope.correlation_id,
        envelope.causation_id,
        envelope.traceparent,
        envelope.tracestate,
        envelope.data_json(),
    )
