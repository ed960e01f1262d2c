"""`Runs`: the scheduler's runs by id, an immutable mapping whose changed copies share one dict.

Every event changes one run. Copying the map per event, or even a part of it, cost more than the change: a copy
touches the reference count of every run it holds, and with thousands of runs held those are far apart in
memory. So every version of a `Runs` made from another shares one dict (Baker's persistent arrays): the version
that holds the dict reads it directly, and every other version keeps only how it differs from a newer one (a
`_Change`). A change made to the holder writes the dict in place, hands it to the new version and keeps a
`_Change` back: it touches the run changed and nothing else. Reading an older version first moves the dict
back to it, undoing the changes in between; the scheduler changes only its newest state, so that is rare.

A run removed leaves a marker in its place, so that undoing the removal puts it back where it was; the markers
are swept out into a dict of the new version's own once they outnumber the runs. A version iterates in the order
a dict updated the same way would (the decisions depend on it: the oldest run first). Versions share mutable
state, so they are for one thread: the scheduler's state is used by its event loop alone. An older version kept
alive keeps the changes made after it with it, until it is let go; the scheduler keeps none.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from conveyor_scheduler.domain.state import RunState

_MISSING: Any = object()
"""Not in the dict at all."""
_GONE: Any = object()
"""In the dict, at its place, as a run removed."""
_SWEEP_AT = 64
"""The fewest markers of removed runs swept out at once."""
_T = TypeVar("_T")


class _Change:
    """A version that is `newer` with `key` mapped to `value` (`_MISSING`: not in the dict; `_GONE`: removed)."""

    __slots__ = ("key", "newer", "value")

    def __init__(self, key: str, value: Any, newer: Runs) -> None:
        self.key, self.value, self.newer = key, value, newer


class Runs(Mapping[str, "RunState"]):
    """An immutable, insertion-ordered map of runs; `set` and `remove` return a new one and leave this one as is.

    Invariants: exactly one version of those made from each other holds the dict (`_node` is a dict), and
    following `_Change.newer` from any other version leads to it; a version's `_len` counts its runs, not the
    markers of removed ones.
    """

    __slots__ = ("_len", "_node")

    def __init__(self, runs: Mapping[str, RunState] | None = None) -> None:
        self._node: dict[str, Any] | _Change = dict(runs or {})
        self._len = len(self._node)

    @classmethod
    def _holding(cls, data: dict[str, Any], length: int) -> Runs:
        runs = object.__new__(cls)
        runs._node, runs._len = data, length
        return runs

    def _data(self) -> dict[str, Any]:
        node = self._node
        return node if isinstance(node, dict) else self._reroot()

    def _reroot(self) -> dict[str, Any]:
        """Move the dict to this version: undo, newest first, the changes between it and the holder."""
        path: list[Runs] = []
        version = self
        while isinstance(node := version._node, _Change):
            path.append(version)
            version = node.newer
        data = version._node
        assert isinstance(data, dict)
        for older in reversed(path):
            change = older._node
            assert isinstance(change, _Change)
            key, value, newer = change.key, change.value, change.newer
            current = data.get(key, _MISSING)
            if value is _MISSING:
                del data[key]  # the newer version added it at the end
            else:
                data[key] = value  # in place
            newer._node = _Change(key, current, older)
            older._node = data
        return data

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
        node = self._node
        found = (node if isinstance(node, dict) else self._reroot()).get(key, _GONE)
        return default if found is _GONE else found

    def __contains__(self, key: object) -> bool:
        node = self._node
        return (node if isinstance(node, dict) else self._reroot()).get(key, _GONE) is not _GONE  # type: ignore[call-overload]

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        # listed first: reading another version while iterating this one may move the dict
        return iter([key for key, run in self._data().items() if run is not _GONE])

    def values(self) -> ValuesView[RunState]:
        return _Values(self)

    def items(self) -> ItemsView[str, RunState]:
        return _Items(self)

    def _items(self) -> list[tuple[str, RunState]]:
        return [(key, run) for key, run in self._data().items() if run is not _GONE]

    def set(self, key: str, run: RunState) -> Runs:
        """A copy with `key` mapped to `run`: in its place when it is held, at the end when it is new."""
        data = self._data()
        current = data.get(key, _MISSING)
        if current is _GONE:  # removed and back: at the end, where its marker cannot go; in a dict of its own
            fresh = {other: held for other, held in data.items() if held is not _GONE}
            fresh[key] = run
            return Runs._holding(fresh, self._len + 1)
        changed = Runs._holding(data, self._len + (current is _MISSING))
        data[key] = run
        self._node = _Change(key, current, changed)
        return changed

    def remove(self, key: str) -> Runs:
        """A copy without `key` (this map itself when it does not hold `key`)."""
        data = self._data()
        current = data.get(key, _GONE)
        if current is _GONE:
            return self
        if len(data) - self._len >= max(_SWEEP_AT, self._len):  # more markers than runs: a dict of its own
            fresh = {other: held for other, held in data.items() if held is not _GONE and other != key}
            return Runs._holding(fresh, self._len - 1)
        changed = Runs._holding(data, self._len - 1)
        data[key] = _GONE
        self._node = _Change(key, current, changed)
        return changed

    def __copy__(self) -> Runs:
        """This map itself, as it never changes (a shallow copy would share the dict and move with it)."""
        return self

    def __repr__(self) -> str:
        return f"Runs({dict(self._items())!r})"


class _Values(ValuesView["RunState"]):
    """The runs in order, read without a lookup per key."""

    _mapping: Runs

    def __iter__(self) -> Iterator[RunState]:
        return iter([run for _, run in self._mapping._items()])


class _Items(ItemsView[str, "RunState"]):
    """The runs with their ids in order, read without a lookup per key."""

    _mapping: Runs

    def __iter__(self) -> Iterator[tuple[str, RunState]]:
        return iter(self._mapping._items())
