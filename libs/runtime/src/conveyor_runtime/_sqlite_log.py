"""The embedded event log: one SQLite file in WAL mode, written in groups by the event loop, or by a thread where
the loop would have to wait."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import NoneType
from typing import Any, Literal

from conveyor_events import Envelope, envelope_from_dict, event_json, json_value, timestamp_text

from conveyor_runtime._log import Checkpoint, ConcurrencyError, appended_ids

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
    UNIQUE (stream, sequence)
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
_NONE: frozenset[str] = frozenset()
_CHECKPOINT_WAL = object()
_PASSIVE_CHECKPOINT = "PRAGMA wal_checkpoint(PASSIVE)"
_CHECKPOINT_PAGES = 1000
"""About how many pages commits add to the write-ahead log before the thread copies it into the database
(SQLite's own `wal_autocheckpoint` default)."""
_LONG_LOG_PAGES = _CHECKPOINT_PAGES
"""A write-ahead log a checkpoint finds at least this long is copied to its end under the lock, even when the
loop's groups go to the thread meanwhile; a shorter one the loop's commits outran is left to the next."""
_FULL_LOG_PAGES = 2 * _CHECKPOINT_PAGES
"""Once commits added about this many pages since the last checkpoint began, the loop's groups go to the thread,
which writes them when it is done copying: a copy slowed by a busy disk does not let the log grow without end.
A copy at the disk's usual pace of events of a few hundred bytes ends long before the loop has added that much;
with events of tens of kilobytes the loop does wait at times."""
_PAGE = 4096
_ROW_BYTES = 200
"""What a row takes besides its data, in the table and its index, about."""


def _null(value: None) -> None:
    return value


if (NoneType, sqlite3.PrepareProtocol) not in sqlite3.adapters:
    # sqlite3 looks for an adapter for each None it binds, in vain and slowly (it raises and clears an
    # AttributeError each time); one that gives None back binds the same NULL in a fraction of the time. Most
    # events have two (no cause, no trace state).
    sqlite3.register_adapter(NoneType, _null)

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
    events: Sequence[Envelope]
    future: asyncio.Future[list[Envelope]]
    loop: asyncio.AbstractEventLoop


@dataclass(slots=True)
class _Stream:
    """What the writer knows of a stream: its version and the ids of its events."""

    version: int
    ids: set[str]


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
            "data": json_value(data),
        }
    )


def _settle_all(settled: Iterable[tuple[_Append, Placed | BaseException]]) -> None:
    """Hand each append its outcome, in the loop that asked for it."""
    for entry, outcome in settled:
        future = entry.future
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        elif len(outcome) == 1:  # most appends hold one event
            where = outcome[0]
            future.set_result([entry.events[0].placed(*where) if isinstance(where, tuple) else where])
        else:
            future.set_result(
                [
                    envelope.placed(*where) if isinstance(where, tuple) else where  # (isinstance of a model is slow)
                    for envelope, where in zip(entry.events, outcome, strict=True)
                ]
            )


class _Memory:
    """What a log's writers remember of each stream between commits: its version and event ids (an id is
    unique within its stream). That keeps duplicate detection out of the database's indexes, whose random keys
    would cost more than the rows. The log's two writing connections share it and write one at a time, under
    `lock`; it is forgotten whenever the log's head moved without them, as when another process wrote. The
    counts that ask for checkpoints are changed without the lock: an update lost costs a checkpoint's timing.
    """

    def __init__(self, remembered_streams: int) -> None:
        self.lock = threading.Lock()
        self.streams: OrderedDict[str, _Stream] = OrderedDict()
        self.remembered_streams = remembered_streams
        self.head: int | None = None
        self.pages = 0
        """About how many pages the commits since the last checkpoint added to the write-ahead log."""
        self.checkpoint_asked = False


class _Writer:
    """A connection that writes events, with the memory of the streams it shares with the log's other one."""

    def __init__(
        self, connection: sqlite3.Connection, memory: _Memory, pin: sqlite3.Connection | None = None
    ) -> None:
        self.connection = connection
        self._memory = memory
        self._pin = pin
        """The thread's, where the loop commits too: a connection whose read holds the log's end while a
        checkpoint copies it. Without it the checkpoint holds the lock throughout (nothing of this log's would
        commit meanwhile anyway)."""

    def commit(self, appends: list[_Append]) -> list[Placed | BaseException]:
        """Write a group of appends in one transaction; what one append did wrong fails only that append."""
        outcomes = self._commit(appends, give_way=False)
        assert outcomes is not None
        return outcomes

    def commit_unless_busy(self, appends: list[_Append]) -> list[Placed | BaseException] | None:
        """`commit`, or None, with nothing written, when another connection holds the write lock."""
        return self._commit(appends, give_way=True)

    def _commit(self, appends: list[_Append], *, give_way: bool) -> list[Placed | BaseException] | None:
        if not self._memory.lock.acquire(blocking=not give_way):
            return None  # the log's other connection is writing
        try:
            return self._commit_locked(appends, give_way=give_way)
        finally:
            self._memory.lock.release()

    def _commit_locked(self, appends: list[_Append], *, give_way: bool) -> list[Placed | BaseException] | None:
        connection = self.connection
        for attempt in (1, 2):
            try:
                connection.execute("BEGIN IMMEDIATE")
                self._sync_head()
                outcomes = self._write_group(appends)
                connection.execute("COMMIT")
            except Exception as error:
                if connection.in_transaction:
                    with contextlib.suppress(sqlite3.Error):  # failed, the transaction ends at the next BEGIN
                        connection.execute("ROLLBACK")
                self._forget()
                code = getattr(error, "sqlite_errorcode", None)
                if give_way and code is not None and code & 0xFF == sqlite3.SQLITE_BUSY:  # BUSY_RECOVERY too
                    return None
                if attempt == 1 and isinstance(error, sqlite3.IntegrityError):
                    continue  # someone else's write slipped past what the writer knew: once more, from the file
                return [error] * len(appends)
            return outcomes
        raise AssertionError("unreachable")

    @property
    def checkpoint_due(self) -> bool:
        return self._memory.pages >= _CHECKPOINT_PAGES

    @property
    def log_full(self) -> bool:
        return self._memory.pages >= _FULL_LOG_PAGES

    def ask_for_checkpoint(self) -> bool:
        """Whether a checkpoint is due that no one has asked the thread for yet; from now on someone has."""
        if not self.checkpoint_due or self._memory.checkpoint_asked:
            return False
        self._memory.checkpoint_asked = True
        return True

    def checkpoint_wal(self) -> None:
        """Copy the write-ahead log into the database, and start the log again from its beginning when all of
        it was copied, while the loop goes on committing.

        The copy runs without the lock, up to the log's end when it began: a read on the thread's third
        connection (`pin`) holds that end, and so keeps any commit from starting the log again meanwhile. Once
        every page is copied, the next write starts the log again, and with `synchronous=NORMAL` that write
        waits for the disk (it syncs the log's header): it is made here, under the lock, a rewrite of the
        database's `user_version`, so that it is never this log's loop's (another process's log writing the
        same file can still make it). When the loop committed during the copy, the log is left to grow until
        the next checkpoint, unless it is at least `_LONG_LOG_PAGES` long: then what the loop added is copied
        under the lock, and the loop's groups go to the thread meanwhile. Where only the thread commits
        (`synchronous=FULL`), nothing of this log's commits during the copy: there is no pin, and the lock is
        held throughout. A checkpoint that fails is tried again at the next one.
        """
        memory = self._memory
        pin = self._pin
        memory.pages = 0
        memory.checkpoint_asked = False
        with contextlib.suppress(sqlite3.Error):
            try:
                if pin is not None:
                    pin.execute("BEGIN")
                    pin.execute("SELECT 1 FROM checkpoints LIMIT 1").fetchall()
                    self.connection.execute(_PASSIVE_CHECKPOINT).fetchall()
                    # Copies nothing past the pin's end, and tells where the log ends now.
                    _, in_log, copied = self.connection.execute(_PASSIVE_CHECKPOINT).fetchone()
                    if copied < in_log < _LONG_LOG_PAGES:
                        return  # not all in the database, so no commit starts the log again when the pin ends
                with memory.lock:
                    if pin is not None:
                        pin.execute("ROLLBACK")
                    _, in_log, copied = self.connection.execute(_PASSIVE_CHECKPOINT).fetchone()
                    if in_log > 0 and copied == in_log:
                        (version,) = self.connection.execute("PRAGMA user_version").fetchone()
                        self.connection.execute(f"PRAGMA user_version = {int(version)}")
            finally:
                if pin is not None and pin.in_transaction:
                    pin.execute("ROLLBACK")

    def close(self) -> None:
        if self._pin is not None:
            self._pin.close()
        self.connection.close()

    def _forget(self) -> None:
        self._memory.streams.clear()
        self._memory.head = None

    def _sync_head(self) -> None:
        (head,) = self.connection.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()
        if head != self._memory.head:
            self._memory.streams.clear()
        self._memory.head = head

    def _read_stream(self, name: str) -> _Stream:
        """What the file holds of a stream the writer does not remember, remembered from now on."""
        rows = self.connection.execute("SELECT sequence, event_id FROM events WHERE stream = ?", (name,)).fetchall()
        known = _Stream(version=max((row[0] for row in rows), default=0), ids={row[1] for row in rows})
        self._memory.streams[name] = known
        while len(self._memory.streams) > self._memory.remembered_streams:
            self._memory.streams.popitem(last=False)
        return known

    def _write_group(self, appends: list[_Append]) -> list[Placed | BaseException]:
        memory = self._memory
        assert memory.head is not None
        head = memory.head
        remembered = memory.streams
        rows: list[tuple[Any, ...]] = []
        checkpoints: list[tuple[str, int]] = []
        outcomes: list[Placed | BaseException] = []
        for done, entry in enumerate(appends):
            placed: Placed = []
            if entry.rows:
                name = entry.stream
                stream = remembered.get(name)
                if stream is None:
                    stream = self._read_stream(name)
                else:
                    remembered.move_to_end(name)
                ids = entry.ids
                known = _NONE if stream.ids.isdisjoint(ids) else stream.ids.intersection(ids)  # usually none
                fresh = len(known) < len(ids)
                if fresh and entry.expected_version is not None and entry.expected_version != stream.version:
                    outcomes.append(ConcurrencyError(name, entry.expected_version, stream.version))
                    continue
                stored = self._stored(name, known, appends[:done], outcomes) if known else {}
                version = stream.version
                for event_id, row in zip(ids, entry.rows, strict=True):
                    if event_id in known:
                        placed.append(stored[event_id])
                        continue
                    version += 1
                    head += 1
                    placed.append((version, head))
                    rows.append((head, name, version, *row))
                stream.version = version
                stream.ids.update(ids)
            if entry.checkpoint is not None:
                checkpoints.append((entry.checkpoint.consumer, entry.checkpoint.position))
            outcomes.append(placed)
        self.connection.executemany(_INSERT, rows)
        size = sum([len(row[-1]) for row in rows]) + _ROW_BYTES * len(rows)
        streams = len({entry.stream for entry in appends})  # each its own page of the index, about
        memory.pages += 1 + streams + size // _PAGE
        if checkpoints:
            self.connection.executemany(_UPSERT_CHECKPOINT, checkpoints)
        memory.head = head
        return outcomes

    def _stored(
        self, stream: str, ids: Collection[str], earlier: list[_Append], outcomes: list[Placed | BaseException]
    ) -> dict[str, Placement | Envelope]:
        """Where the events with these ids already are: placed earlier in this group (`earlier`, with their
        `outcomes`), or stored before."""
        found: dict[str, Placement | Envelope] = {}
        for before, outcome in zip(earlier, outcomes, strict=True):
            if before.stream == stream and isinstance(outcome, list):
                for event_id, where in zip(before.ids, outcome, strict=True):
                    if event_id in ids and isinstance(where, tuple):
                        found[event_id] = where
        rest = [event_id for event_id in ids if event_id not in found]
        if rest:
            marks = ",".join("?" * len(rest))
            rows = self.connection.execute(
                f"SELECT {_COLUMNS} FROM events WHERE stream = ? AND event_id IN ({marks})", [stream, *rest]
            )
            found.update({row[3]: _row_to_envelope(row) for row in rows})
        return found


class SqliteEventLog:
    """An `EventLog` in one SQLite file.

    Appends are committed in groups: everything the event loop's tasks appended while it ran its ready callbacks
    goes into one transaction, written by the loop itself once they have run, and a conflict fails only its
    own append. The loop never waits for a lock or for the disk: when another process sharing the file holds
    the write lock, or the log's writer thread is writing, or with ``synchronous=FULL``, whose commits wait
    for the disk, the group goes to the thread instead, and the loop's later appends wait until the thread
    has written it, which keeps them in order. Appends from other event loops always go to the thread. The
    thread also copies the write-ahead log into the database (a checkpoint, which waits for the disk) and
    makes the write that starts the log again.

    An event's id is unique within its stream: appending it again returns the stored envelope instead of
    writing a second one. An append returns only after its transaction committed: with WAL and
    ``synchronous=NORMAL`` a committed event survives the process being killed; ``FULL`` also survives the
    machine losing power, at the cost of an fsync per commit.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: Synchronous = "NORMAL",
        max_batch: int = 4096,
        poll_interval: float = 0.25,
        remembered_streams: int = 10_000,
    ) -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._max_batch = min(max_batch, remembered_streams)
        """Appends per transaction: never more streams than a writer remembers, or it would forget a stream
        it wrote earlier in the same transaction and number it again from the file."""
        self._poll_interval = poll_interval
        self._remembered_streams = remembered_streams
        self._queue: queue.SimpleQueue[_Append | object] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[asyncio.Event, frozenset[str] | None] = {}
        """Each waiting subscriber, with the event types it follows (None: all)."""
        self._local = threading.local()
        self._on_loop: _Writer | None = None
        """The loop's own writer; None where every commit goes to the thread."""
        self._group: list[_Append] = []
        """Appends of this loop's tasks waiting for the loop's next commit."""
        self._handed = 0
        """This loop's appends given to the thread and not settled yet: while there are any, new ones wait."""
        self._closing = False
        self._stopped = False
        self._intake = threading.Lock()
        """Held to queue appends for the thread, and to queue its stop: nothing is queued behind the stop."""

    # -- life cycle -----------------------------------------------------------------------------------------

    async def open(self) -> SqliteEventLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        self._closing = self._stopped = False
        connection = self._connect()
        connection.executescript(_SCHEMA)
        memory = _Memory(self._remembered_streams)
        if self._synchronous != "FULL":
            on_loop = self._connect()
            on_loop.execute("PRAGMA busy_timeout=0")  # a lock held elsewhere sends the group to the thread
            self._on_loop = _Writer(on_loop, memory)
        ready = threading.Event()
        self._writer = threading.Thread(
            target=self._write_forever,
            args=(_Writer(connection, memory, pin=None if self._on_loop is None else self._connect()), ready),
            name="event-log-writer",
            daemon=True,
        )
        self._writer.start()
        ready.wait()
        return self

    async def close(self) -> None:
        self._closing = True  # what was appended is written; nothing more is taken
        while self._group or self._handed:
            if self._writer is None or not self._writer.is_alive():
                break
            if self._handed:
                await asyncio.sleep(0.001)  # the thread settles its part, then the loop commits the rest
            else:
                self._commit_group()
        if self._writer is not None:
            with self._intake:
                self._stopped = True
                self._queue.put(_STOP)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._on_loop is not None:
            self._on_loop.connection.close()
            self._on_loop = None
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
        connection.execute("PRAGMA wal_autocheckpoint=0")  # the thread checkpoints, see `_Writer.checkpoint_wal`
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
        if self._writer is None or self._closing:
            raise RuntimeError("the event log is not open")
        loop = asyncio.get_running_loop()
        result: asyncio.Future[list[Envelope]] = loop.create_future()
        if not events and checkpoint is None:
            result.set_result([])
            return result
        ids = appended_ids(events)
        # Encoded here, so that an event that cannot be encoded fails its own append and no other.
        rows = list(map(_encode, events))
        stream = events[0].stream if events else ""
        entry = _Append(stream, rows, ids, expected_version, checkpoint, events, result, loop)
        if loop is self._loop and self._on_loop is not None:
            if not self._group and not self._handed:  # else when the thread is done with what it was given
                loop.call_soon(self._commit_group)
            self._group.append(entry)
        else:
            self._hand_over([entry])
        return result

    def _commit_group(self) -> None:
        """Commit on the loop what its tasks appended since the last time, or hand it to the thread.

        What the loop hands the thread is committed before anything the loop appends later: those appends wait
        in the group until the thread is done. When the commits have filled the write-ahead log, the thread is
        asked to copy it into the database (`_Writer.checkpoint_wal`); when they filled it twice over, the copy is
        slow, and the loop hands its groups to the thread until it is done.
        """
        group, self._group = self._group, []
        for start in range(0, len(group), self._max_batch):
            chunk = group[start : start + self._max_batch]
            if self._on_loop is None:  # closed meanwhile: `close` takes no appends once it began
                _settle_all((entry, RuntimeError("the event log is not open")) for entry in chunk)
                continue
            if self._handed:
                self._group = group[start:] + self._group
                return
            outcomes = None if self._on_loop.log_full else self._on_loop.commit_unless_busy(chunk)
            if outcomes is None:
                self._hand_over(chunk)
                continue
            _settle_all(zip(chunk, outcomes, strict=True))
            if self._waiters:
                self._wake(frozenset(row[1] for entry in chunk for row in entry.rows))
            if self._on_loop.ask_for_checkpoint():
                self._queue.put(_CHECKPOINT_WAL)

    def _hand_over(self, appends: list[_Append]) -> None:
        with self._intake:  # another loop's append that comes while `close` stops the thread is refused
            if self._stopped:
                for entry in appends:
                    entry.loop.call_soon_threadsafe(_settle_all, [(entry, RuntimeError("the event log is not open"))])
                return
            for entry in appends:
                if entry.loop is self._loop:
                    self._handed += 1
                self._queue.put(entry)

    def _settle_handed(self, settled: list[tuple[_Append, Placed | BaseException]]) -> None:
        """`_settle_all` for this loop's appends the thread wrote; the loop's own writing resumes after them."""
        self._handed -= len(settled)
        _settle_all(settled)
        if not self._handed and self._group:
            self._commit_group()

    def _write_forever(self, writer: _Writer, ready: threading.Event) -> None:
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
            if appends:
                self._settle_from_thread(appends, writer.commit(appends))
            if len(appends) < len(batch) or writer.checkpoint_due:
                writer.checkpoint_wal()
        writer.close()

    def _settle_from_thread(self, appends: list[_Append], outcomes: list[Placed | BaseException]) -> None:
        """Hand each append the thread wrote its outcome, in its own loop, and wake this loop's subscribers."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
        for entry, outcome in zip(appends, outcomes, strict=True):
            by_loop.setdefault(entry.loop, []).append((entry, outcome))
        for loop, settled in by_loop.items():
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._settle_handed if loop is self._loop else _settle_all, settled)
        if self._loop is not None and not self._loop.is_closed():
            appended = frozenset(row[1] for entry in appends for row in entry.rows)
            self._loop.call_soon_threadsafe(self._wake, appended)

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
    fields = envelope.__dict__  # read at once: each attribute of a pydantic model is a slower lookup
    return (
        fields["event_id"],
        fields["type"],
        fields["schema_version"],
        timestamp_text(fields["occurred_at"]),
        fields["correlation_id"],
        fields["causation_id"],
        fields["traceparent"],
        fields["tracestate"],
        event_json(fields["event"]),
    )
