"""A matrix over a reusable-workflow call computed from `needs`: the planner plans the call once, and the
scheduler plans its jobs for each leg exactly as the planner plans the legs of the same matrix written out."""

from __future__ import annotations

import json
from functools import reduce
from typing import Any

from conveyor_events import (
    Conclusion,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobSkipped,
    MatrixExpanded,
    RunCompleted,
    RunEvent,
    RunRejected,
    RunRequested,
)
from conveyor_planner.domain import plan_run
from conveyor_scheduler.domain import SchedulerState, decide, evolve

from services.scheduler.tests.feeding import Feed

RUN = "run-1"

CALLED = """
on:
  workflow_call:
    inputs:
      os: {type: string, required: true}
      count: {type: number, default: 1}
    outputs:
      seen: {value: "${{ jobs.test.outputs.seen }}"}
jobs:
  build:
    name: Build on ${{ inputs.os }}
    runs-on: ["${{ inputs.os }}"]
    steps: [{run: echo}]
  test:
    needs: build
    runs-on: x
    outputs: {seen: "${{ steps.s.outputs.seen }}"}
    steps: [{id: s, run: echo}]
"""

CALLER = """
on: push
jobs:
  setup:
    runs-on: x
    outputs: {matrix: "${{ steps.m.outputs.matrix }}", go: "${{ steps.m.outputs.go }}"}
    steps: [{id: m, run: echo}]
  call:
    name: Call
    needs: setup
    if: IF
    strategy:
      fail-fast: false
      matrix: MATRIX
    uses: ./.github/workflows/called.yml
    with:
      os: ${{ matrix.os }}
      count: ${{ matrix.count }}
  report:
    needs: call
    if: always()
    runs-on: x
    steps: [{run: echo}]
"""

WRITTEN_OUT = "{os: [a, b], count: [2], include: [{os: c, count: 1}]}"
AS_JSON = {"os": ["a", "b"], "count": [2], "include": [{"os": "c", "count": 1}]}
FROM_SETUP = "${{ fromJSON(needs.setup.outputs.matrix) }}"


def plan(matrix: str, condition: str = "success()") -> list[RunEvent]:
    request = RunRequested(run_id=RUN, repository="/repo", ref="refs/heads/main", sha="a" * 40)
    caller = CALLER.replace("MATRIX", matrix).replace("IF", condition)
    events = plan_run(request, {".github/workflows/ci.yml": caller, ".github/workflows/called.yml": CALLED})
    assert not [event for event in events if isinstance(event, RunRejected)], events
    return [request, *events]


class Run(Feed):
    """The run fed to the scheduler's core from its planned events on."""

    def __init__(self, events: list[RunEvent]) -> None:
        super().__init__(RUN)
        self.feed(*events)

    def plans(self) -> dict[str, JobPlanned]:
        return {job_id: job.plan for job_id, job in self.state.run(RUN).jobs.items()}


def of_type(events: list[RunEvent], kind: type[Any]) -> list[Any]:
    return [event for event in events if isinstance(event, kind)]


def test_the_call_is_planned_once_with_its_matrix_as_written() -> None:
    planned = {event.job_id: event for event in of_type(plan(FROM_SETUP), JobPlanned)}

    assert list(planned) == ["ci.setup", "ci.call/build", "ci.call/test", "ci.report"]
    frame = planned["ci.call/build"].call[0]
    assert (frame.job_id, frame.name, frame.matrix, frame.matrix_expression) == ("ci.call", "Call", None, FROM_SETUP)
    assert planned["ci.call/test"].needs == ["ci.call/build", "ci.setup"]
    assert planned["ci.report"].needs == ["ci.call/build", "ci.call/test"]


def test_the_legs_the_scheduler_plans_are_the_plans_of_the_matrix_written_out() -> None:
    static = {event.job_id: event for event in of_type(plan(WRITTEN_OUT), JobPlanned)}
    run = Run(plan(FROM_SETUP))

    decided = run.complete("ci.setup", matrix=json.dumps(AS_JSON))

    expansions = of_type(decided, MatrixExpanded)
    assert [(event.job_id, event.legs) for event in expansions] == [
        ("ci.call/build", ["ci.call.1/build", "ci.call.2/build", "ci.call.3/build"]),
        ("ci.call/test", ["ci.call.1/test", "ci.call.2/test", "ci.call.3/test"]),
    ]
    legs = {event.job_id: event for event in of_type(decided, JobPlanned)}
    assert list(legs) == [job_id for job_id in static if job_id.startswith("ci.call")]
    for job_id, leg in legs.items():
        assert leg == static[job_id], job_id
    assert [legs[f"ci.call.{n}/build"].call[0].name for n in (1, 2, 3)] == ["Call (a, 2)", "Call (b, 2)", "Call (c, 1)"]
    plans = run.plans()
    assert "ci.call/build" not in plans
    assert "ci.call/test" not in plans
    assert set(plans["ci.report"].needs) == set(static["ci.report"].needs)


OUTER = """
on:
  workflow_call:
    inputs:
      list: {type: string}
jobs:
  call:
    strategy:
      fail-fast: false
      matrix: MATRIX
    uses: ./.github/workflows/called.yml
    with:
      os: ${{ matrix.os }}
"""


def test_a_call_within_a_call_is_expanded_under_its_caller() -> None:
    top = 'on: push\njobs:\n  outer:\n    uses: ./.github/workflows/outer.yml\n    with:\n      list: \'["a", "b"]\'\n'
    request = RunRequested(run_id=RUN, repository="/repo", ref="refs/heads/main", sha="a" * 40)

    def planned(matrix: str) -> list[RunEvent]:
        files = {".github/workflows/ci.yml": top, ".github/workflows/outer.yml": OUTER.replace("MATRIX", matrix),
                 ".github/workflows/called.yml": CALLED}
        return [request, *plan_run(request, files)]

    static = {event.job_id: event for event in of_type(planned("{os: [a, b]}"), JobPlanned)}
    run = Run(planned("{os: '${{ fromJSON(inputs.list) }}'}"))

    legs = {event.job_id: event for event in of_type(run.decided, JobPlanned)}
    assert list(legs) == list(static) == [
        "ci.outer/call.1/build", "ci.outer/call.1/test", "ci.outer/call.2/build", "ci.outer/call.2/test",
    ]
    for job_id, leg in legs.items():
        assert leg == static[job_id], job_id
    assert legs["ci.outer/call.2/test"].name == "outer / call (b) / test"
    assert [event.job_id for event in of_type(run.decided, JobQueued)] == ["ci.outer/call.1/build",
                                                                          "ci.outer/call.2/build"]


def test_the_legs_run_with_their_inputs_and_the_dependant_sees_the_call_as_one_job() -> None:
    run = Run(plan(FROM_SETUP))

    decided = run.complete("ci.setup", matrix=json.dumps(AS_JSON))

    queued = {event.job_id: event for event in of_type(decided, JobQueued)}
    assert list(queued) == ["ci.call.1/build", "ci.call.2/build", "ci.call.3/build"]
    assert [(event.labels, event.inputs) for event in queued.values()] == [
        (["a"], {"os": "a", "count": 2}),
        (["b"], {"os": "b", "count": 2}),
        (["c"], {"os": "c", "count": 1}),
    ]
    for leg in (1, 2, 3):
        [test] = of_type(run.complete(f"ci.call.{leg}/build"), JobQueued)
        assert test.job_id == f"ci.call.{leg}/test"
    run.complete("ci.call.1/test", seen="1")
    run.complete("ci.call.2/test", Conclusion.FAILURE)
    [report] = of_type(run.complete("ci.call.3/test", seen="3"), JobQueued)

    assert report.job_id == "ci.report"
    assert report.needs["call"].result == Conclusion.FAILURE
    assert report.needs["call"].outputs == {"seen": "3"}


def test_a_matrix_that_cannot_be_expanded_fails_every_job_of_the_call() -> None:
    run = Run(plan(FROM_SETUP))

    decided = run.complete("ci.setup", matrix="{}")

    failed = of_type(decided, JobCompleted)
    assert [event.job_id for event in failed] == ["ci.call/build", "ci.call/test"]
    assert all(event.conclusion == Conclusion.FAILURE for event in failed)
    assert failed[0].error.startswith(
        "Error when evaluating 'strategy' for job 'call' of .github/workflows/ci.yml: "
        "Matrix must define at least one vector"
    )
    [report] = of_type(decided, JobQueued)
    assert report.needs["call"].result == Conclusion.FAILURE
    run.complete("ci.report")
    [completed] = of_type(run.decided, RunCompleted)
    assert completed.conclusion == Conclusion.FAILURE


def test_a_call_whose_if_is_false_is_skipped_unexpanded() -> None:
    run = Run(plan(FROM_SETUP, condition="needs.setup.outputs.go == 'yes'"))

    decided = run.complete("ci.setup", matrix=json.dumps(AS_JSON), go="no")

    assert not of_type(decided, MatrixExpanded)
    assert [event.job_id for event in of_type(decided, JobSkipped)] == ["ci.call/build", "ci.call/test"]
    [report] = of_type(decided, JobQueued)
    assert report.needs["call"].result == Conclusion.SKIPPED


def test_replaying_the_log_gives_the_same_state_and_decides_nothing_new() -> None:
    run = Run(plan(FROM_SETUP))
    run.complete("ci.setup", matrix=json.dumps(AS_JSON))
    run.complete("ci.call.2/build")

    replayed = reduce(evolve, run.log, SchedulerState())
    assert replayed == run.state
    again = [event for event in run.log if isinstance(event, JobPlanned | MatrixExpanded)]
    redelivered = reduce(evolve, again, replayed)
    assert redelivered == replayed
    assert all(decide(redelivered, event) == [] for event in again)
