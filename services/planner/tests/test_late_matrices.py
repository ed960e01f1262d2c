"""Planning a job whose matrix is computed from expressions: once, unexpanded, for the scheduler to expand."""

from __future__ import annotations

from typing import Any

import pytest
from conveyor_events import JobPlanned, RunEvent, RunPlanned, RunRejected, RunRequested
from conveyor_planner.domain import plan_run

CI = """
on: push
jobs:
  setup:
    runs-on: x
    outputs:
      matrix: ${{ steps.m.outputs.matrix }}
    steps: [{id: m, run: echo}]
  build:
    name: Build ${{ matrix.os }}
    needs: setup
    if: needs.setup.result == 'success'
    runs-on: ["${{ matrix.os }}", self-hosted]
    strategy:
      fail-fast: false
      max-parallel: 2
      matrix: MATRIX
    steps: [{run: echo}]
  report:
    needs: build
    runs-on: x
    steps: [{run: echo}]
"""

CALLED = """
on:
  workflow_call:
    inputs:
      list: {type: string}
jobs:
  inner:
    runs-on: x
    strategy:
      matrix:
        os: ${{ fromJSON(inputs.list) }}
    steps: [{run: echo}]
"""


def request() -> RunRequested:
    return RunRequested(run_id="run-1", repository="/repo", ref="refs/heads/main", sha="a" * 40)


def plan(files: dict[str, str]) -> list[RunEvent]:
    return plan_run(request(), {f".github/workflows/{name}": text for name, text in files.items()})


def jobs_of(events: list[RunEvent]) -> dict[str, JobPlanned]:
    assert not [e for e in events if isinstance(e, RunRejected)], events
    return {e.job_id: e for e in events if isinstance(e, JobPlanned)}


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param("${{ fromJSON(needs.setup.outputs.matrix) }}", "${{ fromJSON(needs.setup.outputs.matrix) }}",
                     id="the whole matrix"),
        pytest.param("{os: '${{ fromJSON(needs.setup.outputs.matrix) }}', v: [1]}",
                     {"os": "${{ fromJSON(needs.setup.outputs.matrix) }}", "v": [1]}, id="one vector"),
        pytest.param("{os: [a], include: '${{ fromJSON(needs.setup.outputs.matrix) }}'}",
                     {"os": ["a"], "include": "${{ fromJSON(needs.setup.outputs.matrix) }}"}, id="include"),
        pytest.param("{os: [a, b], exclude: ['${{ fromJSON(needs.setup.outputs.matrix) }}']}",
                     {"os": ["a", "b"], "exclude": ["${{ fromJSON(needs.setup.outputs.matrix) }}"]}, id="exclude"),
        pytest.param("{os: [a, '${{ github.ref }}']}", {"os": ["a", "${{ github.ref }}"]}, id="one value"),
    ],
)
def test_a_late_matrix_is_planned_once_unexpanded_with_its_needs(written: str, expected: Any) -> None:
    events = plan({"ci.yml": CI.replace("MATRIX", written)})

    jobs = jobs_of(events)
    assert list(jobs) == ["ci.setup", "ci.build", "ci.report"]
    [planned] = [e for e in events if isinstance(e, RunPlanned)]
    assert planned.jobs == list(jobs)
    build = jobs["ci.build"]
    assert build.matrix_expression == expected
    assert build.matrix is None
    assert (build.job_key, build.name, build.needs) == ("build", "Build ${{ matrix.os }}", ["ci.setup"])
    assert build.runs_on == ["${{ matrix.os }}", "self-hosted"]
    assert build.condition == "needs.setup.result == 'success'"
    assert build.spec["strategy"] == {"fail-fast": False, "max-parallel": 2, "matrix": expected}
    assert jobs["ci.report"].needs == ["ci.build"]
    assert jobs["ci.setup"].matrix_expression is None


def test_a_static_matrix_is_still_expanded_by_the_planner() -> None:
    jobs = jobs_of(plan({"ci.yml": CI.replace("MATRIX", "{os: [a, b]}")}))

    assert list(jobs) == ["ci.setup", "ci.build.1", "ci.build.2", "ci.report"]
    assert [job.matrix_expression for job in jobs.values()] == [None] * 4
    assert jobs["ci.build.2"].runs_on == ["b", "self-hosted"]


def test_a_late_matrix_in_a_called_workflow_is_planned_under_its_call() -> None:
    caller = "on: push\njobs:\n  call:\n    uses: ./.github/workflows/called.yml\n    with:\n      list: '[\"a\"]'\n"
    jobs = jobs_of(plan({"ci.yml": caller, "called.yml": CALLED}))

    inner = jobs["ci.call/inner"]
    assert list(jobs) == ["ci.call/inner"]
    assert inner.matrix_expression == {"os": "${{ fromJSON(inputs.list) }}"}
    assert (inner.name, inner.job_key, [frame.job_id for frame in inner.call]) == ("call / inner", "call/inner",
                                                                                   ["ci.call"])


def test_a_late_matrix_on_a_call_plans_the_called_jobs_once_under_an_unexpanded_call() -> None:
    caller = """
on: push
jobs:
  call:
    strategy:
      matrix: ${{ fromJSON(vars.LIST) }}
    uses: ./.github/workflows/called.yml
    with:
      list: ${{ toJSON(matrix.list) }}
  after:
    needs: call
    runs-on: x
    steps: [{run: echo}]
"""
    jobs = jobs_of(plan({"ci.yml": caller, "called.yml": CALLED}))

    assert list(jobs) == ["ci.call/inner", "ci.after"]
    [frame] = jobs["ci.call/inner"].call
    assert (frame.job_id, frame.name, frame.matrix, frame.matrix_expression) == (
        "ci.call", "call", None, "${{ fromJSON(vars.LIST) }}"
    )
    assert jobs["ci.call/inner"].matrix_expression == {"os": "${{ fromJSON(inputs.list) }}"}
    assert jobs["ci.after"].needs == ["ci.call/inner"]
