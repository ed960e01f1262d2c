"""The read models in one SQLite file (WAL), with the projector's position: the embedded default."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from conveyor_events import Envelope

from conveyor_runtime import _runner_models as runners
from conveyor_runtime._projection_store import Row, Rows
from conveyor_runtime._projections import apply_batch, clear, dump_rows, stored_position

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, repository TEXT NOT NULL, ref TEXT NOT NULL, sha TEXT NOT NULL,
    event_name TEXT NOT NULL, actor TEXT NOT NULL, status TEXT NOT NULL, conclusion TEXT,
    workflows TEXT NOT NULL DEFAULT '[]', problems TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, last_position INTEGER NOT NULL,
    artifacts TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS jobs (
    run_id TEXT NOT NULL, job_id TEXT NOT NULL, workflow TEXT NOT NULL, job_key TEXT NOT NULL,
    name TEXT NOT NULL, needs TEXT NOT NULL, status TEXT NOT NULL, conclusion TEXT, attempt INTEGER NOT NULL,
    runner_id TEXT, outputs TEXT NOT NULL DEFAULT '{}', error TEXT, reason TEXT,
    queued_at TEXT, started_at TEXT, completed_at TEXT, ordinal INTEGER NOT NULL, labels TEXT,
    PRIMARY KEY (run_id, job_id)
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL, job_id TEXT NOT NULL, step_index INTEGER NOT NULL, step_id TEXT, name TEXT NOT NULL,
    status TEXT NOT NULL, outcome TEXT, conclusion TEXT, outputs TEXT NOT NULL DEFAULT '{}',
    annotations TEXT NOT NULL DEFAULT '[]', summary TEXT NOT NULL DEFAULT '',
    started_at TEXT, completed_at TEXT,
    PRIMARY KEY (run_id, job_id, step_index)
);
CREATE TABLE IF NOT EXISTS log_lines (
    run_id TEXT NOT NULL, job_id TEXT NOT NULL, line INTEGER NOT NULL, step_index INTEGER NOT NULL,
    at TEXT NOT NULL, text TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (run_id, job_id, attempt, line)
);
CREATE TABLE IF NOT EXISTS repositories (
    name TEXT PRIMARY KEY, url TEXT NOT NULL, default_branch TEXT NOT NULL,
    github TEXT, webhook_secret TEXT, token TEXT
);
CREATE TABLE IF NOT EXISTS projector_position (
    name TEXT PRIMARY KEY, position INTEGER NOT NULL
);
"""
SCHEMA += runners.SCHEMA
_ADDED_COLUMNS = {
    "repositories": ("github TEXT", "webhook_secret TEXT", "token TEXT"),
    "jobs": ("labels TEXT",),
    "runs": ("artifacts TEXT NOT NULL DEFAULT '[]'",),
}
"""Columns added after a table's first version: a read model written before them gains them when opened."""


def _key_log_lines_by_attempt(db: sqlite3.Connection) -> None:
    """A read model written before log lines were kept per attempt of a job: its lines become the first
    attempt's (a table's key cannot be altered in place: the table is copied)."""
    present = {row["name"] for row in db.execute("PRAGMA table_info(log_lines)")}
    if not present or "attempt" in present:
        return
    with db:
        db.execute("ALTER TABLE log_lines RENAME TO log_lines_unkeyed")
        db.executescript(SCHEMA)
        db.execute(
            "INSERT INTO log_lines (run_id, job_id, line, step_index, at, text)"
            " SELECT run_id, job_id, line, step_index, at, text FROM log_lines_unkeyed"
        )
        db.execute("DROP TABLE log_lines_unkeyed")


class SqliteProjections:
    """A `ProjectionStore` in one SQLite file.

    Questions are asked in a worker thread, so that a long one (a job's whole log) does not hold up the event
    loop, over a connection each thread keeps (opening one costs more than most questions do); in WAL mode each
    still sees what was committed before it began. Writes go to a worker thread with a connection of their own.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self.connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            _key_log_lines_by_attempt(db)
            db.executescript(SCHEMA)
            for table, columns in _ADDED_COLUMNS.items():
                present = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
                for column in columns:
                    if column.split()[0] not in present:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    def connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def _in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        db = self.connect()
        try:
            with db:
                return work(db)
        finally:
            db.close()

    async def position(self) -> int:
        return await asyncio.to_thread(self._in_transaction, stored_position)

    async def apply(self, envelopes: Sequence[Envelope]) -> int:
        return await asyncio.to_thread(self._in_transaction, lambda db: apply_batch(db, envelopes))

    async def reset(self) -> None:
        await asyncio.to_thread(self._in_transaction, clear)

    async def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        return await asyncio.to_thread(self._in_transaction, dump_rows)

    async def read(self, question: Callable[[Rows], T]) -> T:
        return await asyncio.to_thread(question, self._rows)

    def _rows(self, sql: str, *parameters: Any) -> list[Row]:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self.connect()
        return list(db.execute(sql, parameters))

    async def close(self) -> None:
        """Nothing to release: connections are opened per use (each thread's for questions closes with it)."""
