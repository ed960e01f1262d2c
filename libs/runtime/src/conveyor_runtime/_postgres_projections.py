"""The read models in PostgreSQL (or Aurora PostgreSQL), through SQLAlchemy's asyncio engine over asyncpg.

The schema is Alembic's (`conveyor_runtime/migrations`), brought to the newest revision when the store opens,
under an advisory lock so that processes opening it at once do not race. The projector's statements are the
same as SQLite's: written with `?` placeholders, they are run here as SQLAlchemy text with numbered binds, but
for a batch of events they are not run here one by one, each a round trip: the rows the batch's events name are
loaded into a scratch SQLite database, applied there, and written back a table at a time (`_postgres_batch`).
Each batch is one transaction that first takes the projector's advisory lock, so two projectors never apply one
batch twice; the position is stored in that transaction.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from conveyor_events import Envelope
from sqlalchemy import Connection, TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from conveyor_runtime._postgres_batch import apply_through_scratch
from conveyor_runtime._projection_store import Row, Rows
from conveyor_runtime._projections import clear, dump_rows, stored_position

T = TypeVar("T")

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x636F6E76  # advisory lock keys: "conv", and the projector's next to it
_PROJECTOR_LOCK = _MIGRATION_LOCK + 1


@functools.lru_cache(maxsize=512)
def _statement(sql: str) -> tuple[TextClause, int]:
    """`sql` with each `?` made a numbered bind (:p0, :p1, …), and how many there are."""
    count = 0

    def bind(_: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return f":p{count - 1}"

    return text(re.sub(r"\?", bind, sql)), count


def _binds(parameters: Sequence[Any]) -> dict[str, Any]:
    return {f"p{index}": value for index, value in enumerate(parameters)}


class _Connection:
    """A SQLAlchemy connection seen as the projector's `Db` (run inside `AsyncConnection.run_sync`)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        statement, _ = _statement(sql)
        return self._connection.execute(statement, _binds(parameters))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any:
        statement, _ = _statement(sql)
        batch = [_binds(row) for row in parameters]
        return self._connection.execute(statement, batch) if batch else None

    def rows(self, sql: str, *parameters: Any) -> list[Row]:
        return list(self.execute(sql, parameters).mappings().all())


def migrate(connection: Connection) -> None:
    """Bring the schema on `connection` to Alembic's newest revision (one process at a time)."""
    from alembic import command  # here: a service that never opens a store does not pay for importing Alembic
    from alembic.config import Config

    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


class PostgresProjections:
    """A `ProjectionStore` in a PostgreSQL database, given as a SQLAlchemy URL (`postgresql+asyncpg://…`).

    Opened on first use, in the loop that uses it (the engine's connections belong to that loop).
    """

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self._pool_size = pool_size
        self._engine: AsyncEngine | None = None
        self._opening = asyncio.Lock()

    async def open(self) -> PostgresProjections:
        await self._ready()
        return self

    async def _ready(self) -> AsyncEngine:
        if self._engine is not None:
            return self._engine
        async with self._opening:
            if self._engine is None:
                engine = create_async_engine(self.url, pool_size=self._pool_size, pool_pre_ping=True)
                try:
                    async with engine.begin() as connection:
                        await connection.run_sync(migrate)
                except BaseException:
                    await engine.dispose()
                    raise
                self._engine = engine
        return self._engine

    async def _in_transaction(self, work: Callable[[_Connection], T], *, lock: bool = False) -> T:
        engine = await self._ready()
        async with engine.begin() as connection:

            def run(sync: Connection) -> T:
                if lock:
                    sync.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PROJECTOR_LOCK})
                return work(_Connection(sync))

            return await connection.run_sync(run)

    async def position(self) -> int:
        return await self._in_transaction(stored_position)

    async def apply(self, envelopes: Sequence[Envelope]) -> int:
        engine = await self._ready()
        async with engine.begin() as connection:
            # SQLAlchemy begins the driver's transaction with its first statement: this one
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PROJECTOR_LOCK})
            driver = (await connection.get_raw_connection()).driver_connection
            if driver is None or not driver.is_in_transaction():
                raise RuntimeError("the projector's batch must be written in the transaction that holds its lock")
            return await apply_through_scratch(driver, envelopes)

    async def reset(self) -> None:
        await self._in_transaction(clear, lock=True)

    async def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        return await self._in_transaction(dump_rows)

    async def read(self, question: Callable[[Rows], T]) -> T:
        """Answered in one repeatable-read, read-only transaction: all of the question's queries see one moment."""
        engine = await self._ready()
        async with engine.connect() as connection:
            reading = await connection.execution_options(isolation_level="REPEATABLE READ")
            return await reading.run_sync(lambda sync: question(_Connection(sync).rows))

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
