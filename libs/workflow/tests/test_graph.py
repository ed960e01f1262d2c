import pytest
from conveyor_workflow._graph import ancestors, find_cycle, job_levels, ready_jobs
from hypothesis import given
from hypothesis import strategies as st

DIAMOND = {"lint": [], "build": [], "test": ["build"], "docs": ["build"], "deploy": ["test", "docs", "lint"]}


@pytest.mark.parametrize(
    ("needs", "levels"),
    [
        ({}, []),
        ({"a": []}, [["a"]]),
        ({"b": [], "a": []}, [["b", "a"]]),
        ({"c": ["b"], "b": ["a"], "a": []}, [["a"], ["b"], ["c"]]),
        (DIAMOND, [["lint", "build"], ["test", "docs"], ["deploy"]]),
        # A job sits one layer below its deepest need, not its shallowest.
        ({"x": [], "y": ["x"], "z": ["x", "y"]}, [["x"], ["y"], ["z"]]),
        # A need of an unknown job is the loader's to report; here it is ignored.
        ({"a": ["ghost"], "b": ["a"]}, [["a"], ["b"]]),
    ],
)
def test_job_levels_layers_jobs_in_file_order(needs, levels):
    assert job_levels(needs) == levels


@pytest.mark.parametrize(
    ("needs", "cycle"),
    [
        ({"a": ["a"]}, ["a", "a"]),
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"start": [], "a": ["start", "c"], "b": ["a"], "c": ["b"]}, ["a", "c", "b", "a"]),
    ],
)
def test_cycles_are_found_and_named(needs, cycle):
    assert find_cycle(needs) == cycle
    with pytest.raises(ValueError, match=" -> ".join(cycle)):
        job_levels(needs)


def test_no_cycle_in_a_dag():
    assert find_cycle(DIAMOND) is None


def test_a_long_chain_does_not_hit_the_recursion_limit():
    needs = {f"j{i}": [f"j{i - 1}"] if i else [] for i in range(5000)}
    assert find_cycle(needs) is None
    assert len(job_levels(needs)) == 5000
    assert len(ancestors(needs, "j4999")) == 4999


@pytest.mark.parametrize(
    ("finished", "started", "ready"),
    [
        (set(), set(), ["lint", "build"]),
        (set(), {"build"}, ["lint"]),
        ({"build"}, {"lint"}, ["test", "docs"]),
        ({"build", "test"}, {"lint", "docs"}, []),
        ({"build", "test", "docs"}, {"lint"}, []),
        ({"build", "test", "docs", "lint"}, set(), ["deploy"]),
        ({"build", "test", "docs", "lint", "deploy"}, set(), []),
    ],
)
def test_ready_jobs_have_every_need_finished_and_are_not_started(finished, started, ready):
    assert ready_jobs(DIAMOND, finished=finished, started=started) == ready


def test_ready_jobs_accepts_any_collection():
    assert ready_jobs(DIAMOND, ["build"], ("lint",)) == ["test", "docs"]


@pytest.mark.parametrize(
    ("job", "expected"),
    [("lint", set()), ("test", {"build"}), ("deploy", {"test", "docs", "build", "lint"}), ("nope", set())],
)
def test_ancestors_are_transitive_needs(job, expected):
    assert ancestors(DIAMOND, job) == expected


@st.composite
def dags(draw):
    size = draw(st.integers(min_value=0, max_value=25))
    names = [f"job{i}" for i in range(size)]
    needs = {name: draw(st.lists(st.sampled_from(names[:i]), unique=True)) if i else [] for i, name in enumerate(names)}
    order = draw(st.permutations(names))
    return {name: needs[name] for name in order}


@given(dags())
def test_job_levels_respects_every_edge(needs):
    levels = job_levels(needs)
    position = {job: depth for depth, layer in enumerate(levels) for job in layer}
    assert sorted(position) == sorted(needs)
    for job, deps in needs.items():
        for dep in deps:
            assert position[dep] < position[job]
        # Each job is as early as its needs allow.
        assert position[job] == (1 + max((position[d] for d in deps), default=-1))
    for layer in levels:
        assert layer == [job for job in needs if job in layer]


@given(dags())
def test_running_ready_jobs_until_done_visits_every_job_after_its_needs(needs):
    finished: list[str] = []
    while ready := ready_jobs(needs, finished, started=()):
        for job in ready:
            assert ancestors(needs, job) <= set(finished)
        finished.extend(ready)
    assert sorted(finished) == sorted(needs)
