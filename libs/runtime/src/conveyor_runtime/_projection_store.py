"""The projection store port: where the read models live (SQLite here, PostgreSQL elsewhere) and how to ask them.

The projector's code is written once, as plain SQL with `?` placeholders that both engines accept, over the
small `Db` interface; each store runs it in a transaction of its own kind and keeps the projector's position
in that same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from conveyor_events import Envelope

T = TypeVar("T")


class Cursor(Protocol):
    def fetchone(self) -> Any: ...


class Db(Protocol):
    """A connection inside a transaction: what the projector's statements run on."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any: ...


class Row(Protocol):
    """A row found by a question, its columns by name (SQLite's `Row`, SQLAlchemy's `RowMapping`)."""

    def __getitem__(self, column: str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


Rows = Callable[..., list[Row]]
"""`rows(sql, *parameters)`: the rows a query finds, each by column name."""


class ProjectionStore(Protocol):
    """The read models and the projector's position in them."""

    async def position(self) -> int:
        """The position of the last event applied, 0 when none."""
        ...

    async def apply(self, envelopes: Sequence[Envelope]) -> int:
        """Apply a batch in one transaction with the new position; returns the last position applied (0: none).

        Events at or before the stored position are skipped, so a batch delivered again changes nothing.
        """
        ...

    async def reset(self) -> None:
        """Forget every row and the position, ready to be rebuilt from the start of the log."""
        ...

    async def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every read model, sorted: two projections are equal when their dumps are."""
        ...

    async def read(self, question: Callable[[Rows], T]) -> T:
        """Answer `question`, which asks its queries through the `rows` it is given, from one consistent view."""
        ...

    async def close(self) -> None: ...
