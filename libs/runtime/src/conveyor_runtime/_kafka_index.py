"""What the Kafka log knows of its streams: built by reading a topic, kept in memory.

Kafka has no conditional append and no lookup by key, so the log keeps, for each stream, its version, where
its events are and their ids. That is what optimistic concurrency, de-duplication and `read_stream` need.

Anyone can produce to a topic, so a record may be no event at all. Reading one raises `Undecodable` with the
reason; the index leaves a record without a key or the headers it needs out (its offset counts neither as a
stream's event nor towards the head). Only the headers are read here, so a record with good headers and a value
that is not an envelope is noted, and only found out when it is decoded.
"""

from __future__ import annotations

import bisect
import heapq
from array import array
from collections.abc import Collection
from dataclasses import dataclass, field
from itertools import islice

from conveyor_events import Envelope, envelope_from_json

from conveyor_runtime._kafka_reader import Record

TYPE = "type"
EVENT_ID = "event_id"
SEQUENCE = "sequence"


def encode(envelope: Envelope) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """An envelope placed in its stream as a record: key (the stream), value (its JSON form) and headers.

    The headers repeat what the index needs, so that building it does not decode every event.
    """
    headers = [
        (TYPE, envelope.type.encode()),
        (EVENT_ID, envelope.event_id.encode()),
        (SEQUENCE, str(envelope.sequence).encode()),
    ]
    return envelope.stream.encode(), envelope.json_bytes(), headers


def position(record: Record) -> int:
    """A record's global position: the offset in the one partition, counted from 1 like the other logs."""
    return int(record.offset) + 1


class Undecodable(ValueError):
    """A record that is not an event the log can read (a value that is no envelope, a header missing)."""


def decode(record: Record) -> Envelope:
    """The envelope a record holds, at its position; `Undecodable` with the reason when it holds none."""
    try:
        return envelope_from_json(record.value, position=position(record))
    except Exception as error:
        raise Undecodable(f"the value is not an envelope: {type(error).__name__}: {error}") from error


def record_type(record: Record) -> str:
    return _header(record, TYPE)


def header(record: Record, name: str) -> str | None:
    """The header `name` of a record as text, None when it has none."""
    for key, value in record.headers or ():
        if key == name:
            try:
                return bytes(value).decode()
            except (TypeError, UnicodeDecodeError) as error:
                raise Undecodable(f"its {name!r} header is not text: {error}") from error
    return None


def _header(record: Record, name: str) -> str:
    value = header(record, name)
    if value is None:
        raise Undecodable(f"it has no {name!r} header")
    return value


@dataclass(slots=True)
class StreamEntries:
    version: int = 0
    offsets: list[int] = field(default_factory=list)
    """Where the stream's events are, in sequence order."""
    types: list[str] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)
    """Each event id of the stream, with its offset."""


class StreamIndex:
    """Each stream's version, events and ids, where the events of each type are, and the offset of the log's
    last event."""

    def __init__(self) -> None:
        self._streams: dict[str, StreamEntries] = {}
        self._typed: dict[str, array[int]] = {}
        self.last_offset = -1

    @property
    def head(self) -> int:
        return self.last_offset + 1

    def version(self, stream: str) -> int:
        entries = self._streams.get(stream)
        return entries.version if entries else 0

    def offset_of(self, stream: str, event_id: str) -> int | None:
        entries = self._streams.get(stream)
        return entries.ids.get(event_id) if entries else None

    def offsets(self, stream: str, types: Collection[str] | None = None) -> list[int]:
        entries = self._streams.get(stream)
        if entries is None:
            return []
        pairs = zip(entries.offsets, entries.types, strict=True)
        # Sorted: only two processes racing on one stream can note its events out of order, but then too the
        # stream reads in the log's order.
        return sorted(offset for offset, type_ in pairs if types is None or type_ in types)

    def typed_offsets(self, types: Collection[str], start: int, limit: int) -> list[int]:
        """The offsets of the first `limit` events of `types` at `start` or after it, in the log's order."""
        found: list[array[int]] = []
        for type_ in types:
            typed = self._typed.get(type_)
            if typed:
                first = bisect.bisect_left(typed, start)
                found.append(typed[first : first + limit])
        return list(islice(heapq.merge(*found), limit))

    def add(self, stream: str, event_id: str, type_: str, sequence: int, offset: int) -> None:
        """Note an event; one already noted (the writer notes its own before reading them back) is skipped."""
        # Called for every record of the log when it opens: nothing is built that is not kept.
        if offset > self.last_offset:
            self.last_offset = offset
        entries = self._streams.get(stream)
        if entries is None:
            entries = self._streams[stream] = StreamEntries()
        elif event_id in entries.ids:
            return
        if sequence > entries.version:
            entries.version = sequence
        entries.offsets.append(offset)
        entries.types.append(type_)
        entries.ids[event_id] = offset
        typed = self._typed.get(type_)
        if typed is None:
            typed = self._typed[type_] = array("q")
        if typed and offset < typed[-1]:
            bisect.insort(typed, offset)  # noted out of order, as `offsets` explains
        else:
            typed.append(offset)

    def add_record(self, record: Record) -> None:
        """Note the event a record holds, by its key and headers; `Undecodable`, noting nothing, if it lacks them."""
        if record.key is None:
            raise Undecodable("it has no key (the stream)")
        try:
            stream = bytes(record.key).decode()
        except UnicodeDecodeError as error:
            raise Undecodable(f"its key (the stream) is not text: {error}") from error
        text = _header(record, SEQUENCE)
        if not text.isdigit():
            raise Undecodable(f"its {SEQUENCE!r} header is not a number: {text!r}")
        sequence = int(text)
        self.add(stream, _header(record, EVENT_ID), _header(record, TYPE), sequence, int(record.offset))
