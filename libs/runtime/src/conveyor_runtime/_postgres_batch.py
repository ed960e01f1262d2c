"""A batch applied to the read models in PostgreSQL through a scratch SQLite database (`_projection_batch`): the rows
its events name loaded with a query or two, the projector's own apply functions run on them in SQLite, the changes
written back with a few statements, all on the asyncpg connection of the caller's transaction.

A round trip costs about as much as writing a hundred rows, and a row costs less to copy in (`COPY`) than to
insert, so: the loads of a round are one query (each table's rows as anonymous records); the rows deleted,
changed, and added to a table in small numbers are one statement (a data-modifying `WITH` a table and a change,
the rows as one array a column); the rows added to a table in large numbers are copied in. No conflict can fail
such a copy: the keys of the rows added were looked for under the projector's lock and not found; log lines,
which are never loaded, are looked for first, by range.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any, Protocol

from conveyor_events import Envelope

from conveyor_runtime._projection_batch import Change, Loaded, Table, Touched, Values, apply_in_scratch, rounds

_ARRAYS = {"TEXT": "text[]", "INTEGER": "bigint[]"}
"""The PostgreSQL array a column's values travel in, by SQLite's declared type."""


class Driver(Protocol):
    """What is used here of an asyncpg connection."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def execute(self, query: str, *args: Any) -> str: ...

    async def copy_records_to_table(
        self, table_name: str, *, records: Sequence[Values], columns: Sequence[str]
    ) -> str: ...


async def apply_through_scratch(connection: Driver, envelopes: Sequence[Envelope]) -> int:
    """Apply `envelopes` and store the new position in the transaction `connection` is in; returns the last
    position applied (0: none)."""
    touched = Touched.by(envelopes)
    loaded: dict[str, Loaded] = {}
    for tables in rounds():
        wanted = {table: keys for table in tables if (keys := touched.keys(table, loaded))}
        if wanted:
            found: list[list[Values]] = [[] for _ in wanted]
            for which, row in await connection.fetch(_select(tuple(wanted)), *map(list, wanted.values())):
                found[which].append(row)
            loaded |= {
                table.name: Loaded(keys, rows) for (table, keys), rows in zip(wanted.items(), found, strict=True)
            }
    last, changes = await asyncio.to_thread(apply_in_scratch, loaded, envelopes)
    await _write(connection, changes)
    return last


async def _write(connection: Driver, changes: Sequence[Change]) -> None:
    parts = [(change.table, "delete", change.deleted) for change in changes if change.deleted]
    parts += [(change.table, "update", change.updated) for change in changes if change.updated]
    parts += [(change.table, "insert", change.added) for change in changes if 0 < len(change.added) < COPIED]
    if parts:
        arrays = [column for _, _, rows in parts for column in _columns(rows)]
        await connection.execute(_change(tuple((table, kind) for table, kind, _ in parts)), *arrays)
    for table, added in ((change.table, change.added) for change in changes if len(change.added) >= COPIED):
        if table.loaded_by is None:
            added = await _not_stored(connection, table, added)
        if added:
            await connection.copy_records_to_table(table.name, records=added, columns=table.columns)


COPIED = 100
"""Rows added to a table from which copying them in costs less than inserting them (the copy's round trips)."""


async def _not_stored(connection: Driver, table: Table, rows: list[Values]) -> list[Values]:
    """The rows whose key is not stored: a line already stored is kept, as `ON CONFLICT DO NOTHING` keeps it.

    Looked for as ranges of the key's last column (lines of one job are numbered on), each one index scan."""
    ranges: dict[Values, tuple[int, int]] = {}
    for key in map(table.key_of, rows):
        low, high = ranges.get(key[:-1], (key[-1], key[-1]))
        ranges[key[:-1]] = (min(low, key[-1]), max(high, key[-1]))
    given = [(*prefix, low, high) for prefix, (low, high) in ranges.items()]
    stored = {tuple(row) for row in await connection.fetch(_stored(table), *_columns(given))}
    return [row for row in rows if table.key_of(row) not in stored] if stored else rows


def _columns(rows: Sequence[Values]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


@functools.cache
def _select(tables: tuple[Table, ...]) -> str:
    """Each table's rows with the keys given for it (`$1` the first's, …), as (its number, the row as a record)."""
    return " UNION ALL ".join(
        f"SELECT {number} AS which, ROW({', '.join(table.columns)}) AS row FROM {table.name}"
        f" WHERE {table.loaded_by} = ANY({_arrays(table, [str(table.loaded_by)], number + 1)})"
        for number, table in enumerate(tables)
    )


@functools.cache
def _stored(table: Table) -> str:
    """The keys stored within the ranges given: (prefix of the key, lowest and highest of its last column)."""
    *prefix, last = table.key
    kind = _ARRAYS[table.types[table.at(last)]]
    arrays = _arrays(table, prefix, 1)
    matching = " AND ".join(f"{table.name}.{column} = given.{column}" for column in prefix)
    return (
        f"SELECT {', '.join(f'{table.name}.{column}' for column in table.key)} FROM {table.name}"
        f" JOIN unnest({arrays}, ${len(prefix) + 1}::{kind}, ${len(prefix) + 2}::{kind})"
        f" AS given ({', '.join(prefix)}, low, high)"
        f" ON {matching} AND {table.name}.{last} BETWEEN given.low AND given.high"
    )


@functools.cache
def _change(parts: tuple[tuple[Table, str], ...]) -> str:
    """One statement for every part: a table, and rows to delete (given by key), update or insert, given as one
    array a column numbered on from the part before. The parts' rows are distinct, so none needs to see another's
    effect. Rows of a loaded table are inserted as they are (a conflict is an error); log lines unless stored."""
    statements = []
    first = 1
    for table, kind in parts:
        columns = table.key if kind == "delete" else table.columns
        given = f"unnest({_arrays(table, columns, first)}) AS given ({', '.join(columns)})"
        first += len(columns)
        matching = " AND ".join(f"{table.name}.{column} = given.{column}" for column in table.key)
        if kind == "delete":
            statements.append(f"DELETE FROM {table.name} USING {given} WHERE {matching}")
        elif kind == "update":
            values = ", ".join(f"{column} = given.{column}" for column in table.columns if column not in table.key)
            statements.append(f"UPDATE {table.name} SET {values} FROM {given} WHERE {matching}")
        else:
            kept = "" if table.loaded_by else f" ON CONFLICT ({', '.join(table.key)}) DO NOTHING"
            statements.append(f"INSERT INTO {table.name} ({', '.join(table.columns)}) SELECT * FROM {given}{kept}")
    return "WITH " + ", ".join(f"part{number} AS ({sql})" for number, sql in enumerate(statements)) + " SELECT 1"


def _arrays(table: Table, columns: Sequence[str], first: int) -> str:
    """`$first::text[], …`: the arrays that give `columns`, one parameter each from `first` on."""
    types = (table.types[table.at(column)] for column in columns)
    return ", ".join(f"${number}::{_ARRAYS[kind]}" for number, kind in enumerate(types, first))
