"""A batch of the projector's work done in a scratch SQLite database, for a store that pays a network round trip for
each statement (PostgreSQL): it then pays a few a batch rather than a few an event.

The rows a batch's apply functions can read or write are named by its events: the run, jobs and steps of each
event's run, its runner, its lease and the runner holding that lease, its repository (`Touched`). The store loads
those rows, and the projector's position, into an in-memory database of SQLite's own schema; the projector's own
`apply_batch` runs there; what then differs from the rows loaded (`Change`) is what the store writes back. So the
apply functions stay the one meaning of the projection. An apply function that comes to read a row its event does
not name must be taught to `Touched.keys`, or the batch would not see that row.
"""

from __future__ import annotations

import functools
import operator
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor_events import Envelope, Event, RepositoryRegistered

from conveyor_runtime._projections import PROJECTOR, TABLES, apply_batch
from conveyor_runtime._sqlite_projections import SCHEMA

Values = tuple[Any, ...]
"""A row, or a row's key, as a tuple in the order of its table's columns."""

_LOADED_BY: dict[str, str | None] = {
    "projector_position": "name",
    "runs": "run_id",
    "jobs": "run_id",
    "steps": "run_id",
    "leases": "lease_id",
    "repositories": "name",
    "runners": "runner_id",
    "log_lines": None,
}
"""Each table and the column its rows are loaded by (None: never loaded, only added to)."""

_ROUNDS = (
    ("projector_position", "runs", "jobs", "steps", "leases", "repositories"),
    ("runners",),  # a renewed lease marks seen the runner holding it, known once the leases are loaded
)
"""The tables loaded together, each round's keys known from the events and the rows of the rounds before it."""


@dataclass(frozen=True)
class Table:
    """A table of the read models as SQLite's schema declares it, and how a batch finds its rows."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    """SQLite's declared types: TEXT or INTEGER."""
    key: tuple[str, ...]
    loaded_by: str | None
    """The column its rows are loaded by; None for log lines, which no apply function reads: the batch's own are
    added, and a line already stored is kept (as `INSERT … ON CONFLICT DO NOTHING` keeps it)."""

    def at(self, column: str) -> int:
        return self.columns.index(column)

    @functools.cached_property
    def key_of(self) -> Callable[[Values], Values]:
        """The key of a row (a function made once: it runs for every row of a batch)."""
        if len(self.key) == 1:
            only = self.at(self.key[0])
            return lambda row: (row[only],)
        return operator.itemgetter(*map(self.at, self.key))


@functools.cache
def tables() -> tuple[Table, ...]:
    """Every table the projector writes, its position's too, in the order they are loaded."""
    loaded = [name for name, loaded_by in _LOADED_BY.items() if loaded_by]
    if set(TABLES) - set(_LOADED_BY) or sorted(loaded) != sorted(name for names in _ROUNDS for name in names):
        raise RuntimeError("tables the batch cannot load: say how in _projection_batch._LOADED_BY and _ROUNDS")
    db = scratch()
    try:
        found = []
        for name, loaded_by in _LOADED_BY.items():
            info = db.execute(f"PRAGMA table_info({name})").fetchall()  # (cid, name, type, notnull, default, pk)
            key = tuple(column for _, column in sorted((pk, column) for _, column, _, _, _, pk in info if pk))
            columns = tuple(row[1] for row in info)
            found.append(Table(name, columns, tuple(row[2] for row in info), key, loaded_by))
        return tuple(found)
    finally:
        db.close()


def table_named(name: str) -> Table:
    return next(found for found in tables() if found.name == name)


def rounds() -> tuple[tuple[Table, ...], ...]:
    """The tables whose rows are loaded, in rounds: each round one query."""
    return tuple(tuple(table_named(name) for name in names) for names in _ROUNDS)


def scratch() -> sqlite3.Connection:
    """An empty in-memory database of the SQLite store's schema."""
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    return db


_NAMING = ("run_id", "runner_id", "lease_id", "name")
"""The fields by which events name rows, in the order of `Touched`'s."""


@functools.cache
def _naming(kind: type[Event]) -> tuple[str, ...]:
    """The fields by which events of `kind` name rows (a repository only by a registration's `name`)."""
    fields = [field for field in _NAMING[:-1] if field in kind.model_fields]
    return (*fields, "name") if issubclass(kind, RepositoryRegistered) else tuple(fields)


@dataclass(frozen=True)
class Touched:
    """The keys a batch's events name: those of the rows its apply functions may read or write."""

    runs: frozenset[str]
    runners: frozenset[str]
    leases: frozenset[str]
    repositories: frozenset[str]

    @classmethod
    def by(cls, envelopes: Iterable[Envelope]) -> Touched:
        found: dict[str, set[str]] = {attribute: set() for attribute in _NAMING}
        for envelope in envelopes:
            event = envelope.event
            for attribute in _naming(type(event)):
                value = getattr(event, attribute)
                if isinstance(value, str):
                    found[attribute].add(value)
        return cls(*(frozenset(found[attribute]) for attribute in _NAMING))

    def keys(self, table: Table, loaded: Mapping[str, Loaded]) -> frozenset[str]:
        """The values of `table.loaded_by` whose rows to load, given the tables loaded before it."""
        match table.name:
            case "projector_position":
                return frozenset({PROJECTOR})
            case "runs" | "jobs" | "steps":  # a job's ordinal counts its run's jobs
                return self.runs
            case "leases":
                return self.leases
            case "runners":
                holder = table_named("leases").at("runner_id")
                return self.runners | {row[holder] for row in loaded.get("leases", NOTHING).rows}
            case "repositories":
                return self.repositories
        raise RuntimeError(f"{table.name}: a table the batch does not know how to load")


@dataclass(frozen=True)
class Loaded:
    """The rows of one table loaded for a batch, and the keys (values of `Table.loaded_by`) they were loaded by."""

    keys: frozenset[str]
    rows: Sequence[Values]


NOTHING = Loaded(frozenset(), ())


@dataclass(frozen=True)
class Change:
    """What a batch did to one table, by what the store must do to follow."""

    table: Table
    deleted: list[Values]
    """Keys of rows loaded that are gone."""
    updated: list[Values]
    """Rows loaded that changed."""
    added: list[Values]
    """Rows the store does not hold: their keys were loaded and not found. Log lines: the batch's own, some of
    which the store may hold."""


def apply_in_scratch(loaded: Mapping[str, Loaded], envelopes: Sequence[Envelope]) -> tuple[int, list[Change]]:
    """Apply `envelopes` over the rows `loaded` (the projector's position among them) as the SQLite store would;
    returns the last position applied (0: none) and the changes to write back (the position's among them)."""
    db = scratch()
    try:
        for found in tables():
            if rows := loaded.get(found.name, NOTHING).rows:
                marks = ",".join("?" * len(found.columns))
                db.executemany(f"INSERT INTO {found.name} ({','.join(found.columns)}) VALUES ({marks})", rows)
        with db:
            last = apply_batch(db, envelopes)
        changes = [_changed(found, loaded.get(found.name, NOTHING), db) for found in tables()]
        return last, [change for change in changes if change.deleted or change.updated or change.added]
    finally:
        db.close()


def _changed(table: Table, loaded: Loaded, db: sqlite3.Connection) -> Change:
    now: list[Values] = db.execute(f"SELECT {','.join(table.columns)} FROM {table.name}").fetchall()
    if table.loaded_by is None:
        return Change(table, [], [], now)
    before = {table.key_of(row): tuple(row) for row in loaded.rows}
    after = {table.key_of(row): row for row in now}
    added = [row for key, row in after.items() if key not in before]
    by = table.at(table.loaded_by)
    if strays := sorted({row[by] for row in added} - loaded.keys):
        raise RuntimeError(
            f"the batch wrote rows of {table.name} with {table.loaded_by} in {strays}, which it did not load"
            " (and the store may hold): teach _projection_batch.Touched.keys to load them"
        )
    return Change(
        table,
        deleted=[key for key in before if key not in after],
        updated=[row for key, row in after.items() if key in before and before[key] != row],
        added=added,
    )
