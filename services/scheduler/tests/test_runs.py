"""`Runs` behaves as a dict copied on every change would, and a change never alters the map it was made from,
whichever version is read or changed next."""

from __future__ import annotations

import copy

from conveyor_scheduler.domain import Runs, RunState
from hypothesis import given
from hypothesis import strategies as st

_KEYS = st.sampled_from([f"run-{number}" for number in range(12)])
_CHANGES = st.lists(st.tuples(st.booleans(), _KEYS, st.integers(1, 5)), max_size=200)


@given(_CHANGES)
def test_every_version_reads_as_the_dict_it_stands_for(changes: list[tuple[bool, str, int]]) -> None:
    runs, model = Runs(), dict[str, RunState]()
    versions: list[tuple[Runs, dict[str, RunState]]] = [(runs, dict(model))]
    for keep, key, attempt in changes:
        if keep:
            run = RunState(run_id=key, attempt=attempt)
            runs, model = runs.set(key, run), {**model, key: run}
        else:
            runs, model = runs.remove(key), {other: run for other, run in model.items() if other != key}
        versions.append((runs, dict(model)))
    for version, expected in versions:
        assert list(version.items()) == list(expected.items())
        assert list(version) == list(expected)
        assert list(version.values()) == list(expected.values())
        assert len(version) == len(expected)
        assert version == expected
        for key in {key for _, key, _ in changes}:
            assert (key in version) == (key in expected)
            assert version.get(key) == expected.get(key)


def _reads_as(version: Runs, expected: dict[str, RunState], keys: set[str]) -> None:
    assert list(version.items()) == list(expected.items())
    assert list(version) == list(expected)
    assert list(version.values()) == list(expected.values())
    assert len(version) == len(expected)
    assert version == expected
    for key in keys:
        assert (key in version) == (key in expected)
        assert version.get(key) == expected.get(key)


_BRANCHING = st.lists(
    st.tuples(st.sampled_from(["set", "remove", "read"]), st.integers(0, 10_000), _KEYS, st.integers(1, 5)),
    max_size=150,
)


@given(_BRANCHING)
def test_versions_changed_and_read_in_any_order_read_as_their_dicts(
    steps: list[tuple[str, int, str, int]],
) -> None:
    keys = {key for _, _, key, _ in steps}
    versions: list[tuple[Runs, dict[str, RunState]]] = [(Runs(), {})]
    for action, which, key, attempt in steps:
        runs, model = versions[which % len(versions)]
        if action == "read":
            _reads_as(runs, model, keys)
        elif action == "set":
            run = RunState(run_id=key, attempt=attempt)
            versions.append((runs.set(key, run), {**model, key: run}))
        else:
            versions.append((runs.remove(key), {other: run for other, run in model.items() if other != key}))
    for runs, model in reversed(versions):
        _reads_as(runs, model, keys)


def test_removed_runs_are_swept_out_and_every_version_still_reads_as_before() -> None:
    runs, model = Runs(), dict[str, RunState]()
    versions: list[tuple[Runs, dict[str, RunState]]] = []
    for number in range(300):
        run = RunState(run_id=f"run-{number}")
        runs, model = runs.set(run.run_id, run), {**model, run.run_id: run}
    for number in range(0, 300, 2):  # more removed than kept: the markers are swept out on the way
        runs, model = runs.remove(f"run-{number}"), {key: run for key, run in model.items() if key != f"run-{number}"}
        versions.append((runs, dict(model)))
    back = RunState(run_id="run-0", attempt=2)  # removed, then back: at the end
    runs, model = runs.set("run-0", back), {**model, "run-0": back}
    versions.append((runs, dict(model)))
    assert list(runs)[-1] == "run-0"
    for version, expected in [*versions[::-1], *versions]:
        assert list(version.items()) == list(expected.items())
        assert len(version) == len(expected)


def test_a_map_given_to_it_is_copied() -> None:
    given_runs = {"run-1": RunState(run_id="run-1")}
    runs = Runs(given_runs)
    given_runs.clear()
    assert list(runs) == ["run-1"]


def test_a_copy_is_the_map_itself_and_keeps_its_runs() -> None:
    runs = Runs({"run-1": RunState(run_id="run-1")})
    copied = copy.copy(runs)
    runs.set("run-2", RunState(run_id="run-2"))
    assert list(copied) == ["run-1"]
    assert len(copied) == 1
