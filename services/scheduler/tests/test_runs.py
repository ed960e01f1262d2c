"""`Runs` behaves as a dict copied on every change would, and a change never alters the map it was made from."""

from __future__ import annotations

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


def test_a_map_given_to_it_is_copied() -> None:
    given_runs = {"run-1": RunState(run_id="run-1")}
    runs = Runs(given_runs)
    given_runs.clear()
    assert list(runs) == ["run-1"]
