"""`Runs`: the scheduler's runs by id, an immutable mapping whose changed copies share the unchanged runs.

Every event changes one run, and with thousands of runs held copying the whole map per event was the
scheduler's main cost. A `Runs` keeps a shared base dict that is never mutated plus a small overlay of what
changed since (values replaced in place, runs removed, runs added at the end); a change copies only the overlay,
and the overlay is folded into a new base once it grows past about the square root of the base's size. It
iterates in the order a dict updated the same way would, which the decisions depend on (the oldest run first).
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from math import isqrt
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from conveyor_scheduler.domain.state import RunState

_MISSING: Any = object()
_T = TypeVar("_T")


class Runs(Mapping[str, "RunState"]):
    """An immutable, insertion-ordered map of runs; `set` and `remove` return a new one and leave this one as is.

    Invariants: `_base` is never mutated after construction; `_over` holds new values for keys of `_base` at their
    place; `_gone` holds the keys of `_base` no longer at their place; `_added` the keys after them, in order.
    """

    __slots__ = ("_added", "_base", "_gone", "_over")

    def __init__(self, runs: Mapping[str, RunState] | None = None) -> None:
        self._base: dict[str, RunState] = dict(runs or {})
        self._over: dict[str, RunState] = {}
        self._added: dict[str, RunState] = {}
        self._gone: frozenset[str] = frozenset()

    @classmethod
    def _of(
        cls, base: dict[str, RunState], over: dict[str, RunState], added: dict[str, RunState], gone: frozenset[str]
    ) -> Runs:
        runs = object.__new__(cls)
        runs._base, runs._over, runs._added, runs._gone = base, over, added, gone
        if len(over) + len(added) + len(gone) > max(8, isqrt(len(base))):
            runs._fold()
        return runs

    def _fold(self) -> None:
        """Fold the overlay into a new base (C-level dict operations only; the old base stays as it was)."""
        base = dict(self._base)
        for key in self._gone:
            del base[key]
        base.update(self._over)
        base.update(self._added)
        self._base, self._over, self._added, self._gone = base, {}, {}, frozenset()

    def __getitem__(self, key: str) -> RunState:
        found: RunState = self.get(key, _MISSING)
        if found is _MISSING:
            raise KeyError(key)
        return found

    @overload
    def get(self, key: str, /) -> RunState | None: ...

    @overload
    def get(self, key: str, default: RunState | _T, /) -> RunState | _T: ...

    def get(self, key: str, default: Any = None, /) -> Any:
        """The run with id `key`, or `default` (None) when there is none."""
        if key in self._added:
            return self._added[key]
        if key in self._gone:
            return default
        found = self._over.get(key, _MISSING)
        if found is not _MISSING:
            return found
        return self._base.get(key, default)

    def __contains__(self, key: object) -> bool:
        if key in self._added:
            return True
        return key in self._base and key not in self._gone

    def __len__(self) -> int:
        return len(self._base) - len(self._gone) + len(self._added)

    def __iter__(self) -> Iterator[str]:
        gone = self._gone
        if gone:
            yield from (key for key in self._base if key not in gone)
        else:
            yield from self._base
        yield from self._added

    def values(self) -> ValuesView[RunState]:
        return _Values(self)

    def items(self) -> ItemsView[str, RunState]:
        return _Items(self)

    def _items(self) -> Iterator[tuple[str, RunState]]:
        gone, over = self._gone, self._over
        if not gone and not over:
            yield from self._base.items()
        else:
            for key, run in self._base.items():
                if key not in gone:
                    yield key, over.get(key, run)
        yield from self._added.items()

    def set(self, key: str, run: RunState) -> Runs:
        """A copy with `key` mapped to `run`: in its place when it is held, at the end when it is new."""
        if key in self._added:
            return Runs._of(self._base, self._over, {**self._added, key: run}, self._gone)
        if key in self._base and key not in self._gone:
            return Runs._of(self._base, {**self._over, key: run}, self._added, self._gone)
        return Runs._of(self._base, self._over, {**self._added, key: run}, self._gone)

    def remove(self, key: str) -> Runs:
        """A copy without `key` (this map itself when it does not hold `key`)."""
        if key in self._added:
            added = {other: run for other, run in self._added.items() if other != key}
            return Runs._of(self._base, self._over, added, self._gone)
        if key in self._base and key not in self._gone:
            over = {other: run for other, run in self._over.items() if other != key}
            return Runs._of(self._base, over, self._added, self._gone | {key})
        return self

    def __repr__(self) -> str:
        return f"Runs({dict(self._items())!r})"


class _Values(ValuesView["RunState"]):
    """The runs in order, read without a lookup per key."""

    _mapping: Runs

    def __iter__(self) -> Iterator[RunState]:
        for _, run in self._mapping._items():
            yield run


class _Items(ItemsView[str, "RunState"]):
    """The runs with their ids in order, read without a lookup per key."""

    _mapping: Runs

    def __iter__(self) -> Iterator[tuple[str, RunState]]:
        return self._mapping._items()
