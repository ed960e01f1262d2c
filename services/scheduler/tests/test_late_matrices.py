"""Late matrices: a matrix computed from `needs`, expanded into legs when the jobs it reads have finished."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import reduce
from pathlib import Path
from typing import Any

import pytest
from conveyor_events import (
    CallFrame,
    Conclusion,
    Envelope,
    Event,
    JobCancelRequested,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    MatrixExpanded,
    RunCompleted,
    RunEvent,
    RunPlanned,
    RunRequested,
)
from conveyor_runtime import SqliteEventLog
from conveyor_scheduler import Scheduler
from conveyor_scheduler.domain import EPOCH, RunState, SchedulerState, decide, evolve

from services.scheduler.tests.feeding import Feed

RUN = "run-1"
WORKFLOW = ".github/workflows/ci.yml"
FROM_SETUP = "${{ fromJSON(needs.setup.outputs.matrix) }}"


def request() -> RunRequested:
    return RunRequested(run_id=RUN, repository="/repo", ref="refs/heads/main", sha="a" * 40)


def job(key: str, needs: tuple[str, ...] = (), frames: tuple[CallFrame, ...] = (), **fields: Any) -> JobPlanned:
    prefix = f"{frames[-1].job_id}/" if frames else "ci."
    key_path = "/".join([*(frame.job_key for frame in frames), key])
    fields.setdefault("runs_on", ["x"])
    fields.setdefault("name", " / ".join([*(frame.name for frame in frames), key]))
    return JobPlanned(run_id=RUN, job_id=f"{prefix}{key}", workflow=WORKFLOW, job_key=key_path, needs=list(needs),
                      call=list(frames), **fields)


def late(
    matrix: Any = FROM_SETUP, strategy: dict[str, Any] | None = None, needs: tuple[str, ...] = ("ci.setup",),
    **fields: Any,
) -> JobPlanned:
    """`build`, whose matrix is computed from expressions, planned once as the planner plans it."""
    spec = {"strategy": {"matrix": matrix, **(strategy or {})}, "steps": [{"run": "echo ${{ matrix.os }}"}],
            **fields.pop("spec", {})}
    return job("build", needs, matrix_expression=matrix, spec=spec, **fields)


def planned(*jobs: JobPlanned) -> list[Event]:
    return [*jobs, RunPlanned(run_id=RUN, workflow=WORKFLOW, workflow_name="CI", index=1, count=1,
                              jobs=[j.job_id for j in jobs])]


class Run(Feed):
    """Feeds events to evolve/decide the way the scheduler's handler does, keeping every event of the log."""

    def start(self, *job_ids: str) -> None:
        self.feed(*(JobStarted(run_id=RUN, job_id=job_id, runner_id="r") for job_id in job_ids))


def started(*jobs: JobPlanned) -> Run:
    run = Run()
    run.feed(request(), *planned(job("setup"), *jobs))
    return run


def setup_outputs(run: Run, matrix: Any, **more: str) -> list[RunEvent]:
    text = matrix if isinstance(matrix, str) else json.dumps(matrix)
    return run.completed("ci.setup", {"matrix": text, **more})


def legs(events: list[RunEvent]) -> dict[str, JobPlanned]:
    return {event.job_id: event for event in events if isinstance(event, JobPlanned)}


def queued(events: list[RunEvent]) -> list[str]:
    return [event.job_id for event in events if isinstance(event, JobQueued)]


def test_the_late_job_waits_for_its_needs_then_is_replaced_by_its_legs() -> None:
    run = started(late(name="build", runs_on=["runner-${{ matrix.os }}"]), job("after", ("ci.build",)))
    assert "ci.build" in run.state.run(RUN).jobs

    decided = setup_outputs(run, {"os": ["a", "b"], "include": [{"os": "c", "extra": "x"}]})

    [expanded] = [event for event in decided if isinstance(event, MatrixExpanded)]
    assert expanded.job_id == "ci.build"
    assert expanded.legs == ["ci.build.1", "ci.build.2", "ci.build.3"]
    assert expanded.matrix == {"os": ["a", "b"], "include": [{"os": "c", "extra": "x"}]}
    planned_legs = legs(decided)
    assert {job_id: leg.matrix for job_id, leg in planned_legs.items()} == {
        "ci.build.1": {"os": "a"}, "ci.build.2": {"os": "b"}, "ci.build.3": {"os": "c", "extra": "x"},
    }
    assert [leg.name for leg in planned_legs.values()] == ["build (a)", "build (b)", "build (c, x)"]
    assert [leg.runs_on for leg in planned_legs.values()] == [["runner-a"], ["runner-b"], ["runner-c"]]
    assert all(leg.matrix_expression is None and leg.needs == ["ci.setup"] for leg in planned_legs.values())
    assert all(leg.spec["steps"] == [{"run": "echo ${{ matrix.os }}"}] for leg in planned_legs.values())
    assert queued(decided) == ["ci.build.1", "ci.build.2", "ci.build.3"]
    state = run.state.run(RUN)
    assert "ci.build" not in state.jobs
    assert state.jobs["ci.after"].plan.needs == ["ci.build.1", "ci.build.2", "ci.build.3"]


def test_a_name_that_reads_matrix_is_evaluated_per_leg() -> None:
    run = started(late(name="test on ${{ matrix.os }}"))
    decided = setup_outputs(run, {"os": ["a", "b"]})
    assert [leg.name for leg in legs(decided).values()] == ["test on a", "test on b"]


@pytest.mark.parametrize(
    ("matrix", "outputs", "expected"),
    [
        pytest.param(FROM_SETUP, {"matrix": {"os": ["a", "b"], "v": [1, 2], "exclude": [{"os": "a", "v": 2}]}},
                     [{"os": "a", "v": 1}, {"os": "b", "v": 1}, {"os": "b", "v": 2}], id="exclude"),
        pytest.param(FROM_SETUP, {"matrix": {"include": [{"os": "a"}, {"os": "b", "big": True}]}},
                     [{"os": "a"}, {"os": "b", "big": True}], id="include only"),
        pytest.param({"os": "${{ fromJSON(needs.setup.outputs.list) }}", "v": ["1"]}, {"list": ["a", "b"]},
                     [{"os": "a", "v": "1"}, {"os": "b", "v": "1"}], id="one vector"),
        pytest.param({"os": ["a", "b"], "include": "${{ fromJSON(needs.setup.outputs.list) }}"},
                     {"list": [{"os": "a", "cc": "gcc"}, {"os": "d"}]},
                     [{"os": "a", "cc": "gcc"}, {"os": "b"}, {"os": "d"}], id="include"),
        pytest.param({"os": ["a", "b"], "exclude": ["${{ fromJSON(needs.setup.outputs.list) }}"]},
                     {"list": {"os": "b"}}, [{"os": "a"}], id="one exclude entry"),
        pytest.param({"os": ["${{ needs.setup.outputs.list }}", "z"]}, {"list": "y"}, [{"os": "y"}, {"os": "z"}],
                     id="one value"),
    ],
)
def test_late_parts_expand_with_include_and_exclude_as_static_matrices_do(
    matrix: Any, outputs: dict[str, Any], expected: list[dict[str, Any]]
) -> None:
    run = started(late(matrix))
    texts = {name: value if isinstance(value, str) else json.dumps(value) for name, value in outputs.items()}
    decided = run.completed("ci.setup", texts)
    assert [leg.matrix for leg in legs(decided).values()] == expected


def test_strategy_reads_github_inputs_vars_and_needs_results() -> None:
    matrix = {"ref": ["${{ github.ref }}"], "setup": ["${{ needs.setup.result }}"], "level": ["${{ inputs.level }}"],
              "arch": "${{ fromJSON(vars.ARCHES) }}"}
    run = Run()
    run.feed(request().model_copy(update={"inputs": {"level": 2}, "variables": {"ARCHES": '["arm"]'}}),
             *planned(job("setup"), late(matrix)))
    decided = run.complete("ci.setup")
    assert [leg.matrix for leg in legs(decided).values()] == [
        {"ref": "refs/heads/main", "setup": "success", "level": 2, "arch": "arm"}
    ]


def test_strategy_cannot_read_matrix_or_steps() -> None:
    run = started(late({"os": ["${{ matrix.os }}"]}))
    [failed, _] = run.complete("ci.setup")
    assert isinstance(failed, JobCompleted)
    assert failed.error is not None
    assert "Unrecognized named-value: 'matrix'" in failed.error


def test_dependants_see_the_legs_as_one_job_with_their_outputs_and_combined_result() -> None:
    run = started(late(), job("after", ("ci.build",), condition="always()"))
    setup_outputs(run, {"os": ["a", "b"]})
    assert run.complete("ci.build.1", out_a="1") == []
    decided = run.complete("ci.build.2", Conclusion.FAILURE, out_b="2")
    [after] = [event for event in decided if isinstance(event, JobQueued)]
    assert after.job_id == "ci.after"
    assert after.needs["build"].result == Conclusion.FAILURE
    assert after.needs["build"].outputs == {"out_a": "1", "out_b": "2"}


def test_a_late_matrix_may_read_the_outputs_of_the_legs_of_another() -> None:
    second = job("test", ("ci.build",), matrix_expression={"n": "${{ fromJSON(needs.build.outputs.ns) }}"},
                 spec={"strategy": {"matrix": {"n": "${{ fromJSON(needs.build.outputs.ns) }}"}}})
    run = started(late(), second)
    setup_outputs(run, {"os": ["a", "b"]})
    run.complete("ci.build.1")
    decided = run.complete("ci.build.2", ns="[1, 2, 3]")
    assert [leg.name for leg in legs(decided).values()] == ["test (1)", "test (2)", "test (3)"]
    assert queued(decided) == ["ci.test.1", "ci.test.2", "ci.test.3"]
    assert legs(decided)["ci.test.1"].needs == ["ci.build.1", "ci.build.2"]


def test_fail_fast_stops_the_other_late_legs() -> None:
    run = started(late(strategy={"max-parallel": 2}))
    setup_outputs(run, {"os": ["a", "b", "c"]})
    run.start("ci.build.1", "ci.build.2")
    decided = run.complete("ci.build.1", Conclusion.FAILURE)
    assert [(type(e).__name__, getattr(e, "job_id", "")) for e in decided] == [
        ("JobCancelRequested", "ci.build.2"),
        ("JobCompleted", "ci.build.3"),
    ]
    assert isinstance(decided[0], JobCancelRequested)
    assert "build (a)" in decided[0].reason


def test_fail_fast_off_lets_the_other_late_legs_run() -> None:
    run = started(late(strategy={"fail-fast": False}))
    setup_outputs(run, {"os": ["a", "b"]})
    assert run.complete("ci.build.1", Conclusion.FAILURE) == []
    [completed] = run.complete("ci.build.2")
    assert completed == RunCompleted(run_id=RUN, conclusion=Conclusion.FAILURE)


def test_max_parallel_holds_back_late_legs() -> None:
    run = started(late(strategy={"max-parallel": 2}))
    assert queued(setup_outputs(run, {"os": ["a", "b", "c", "d"]})) == ["ci.build.1", "ci.build.2"]
    assert queued(run.complete("ci.build.1")) == ["ci.build.3"]
    assert queued(run.complete("ci.build.3")) == ["ci.build.4"]


ERRORS = [
    pytest.param("not json", "Error parsing fromJson", id="invalid JSON"),
    pytest.param('"linux"', "The matrix must be a mapping, got the string 'linux'", id="a string"),
    pytest.param("[1, 2]", "The matrix must be a mapping, got list", id="an array"),
    pytest.param({}, "Matrix must define at least one vector", id="empty"),
    pytest.param({"os": []}, "Matrix vector 'os' does not contain any values", id="an empty vector"),
    pytest.param({"a": list(range(20)), "b": list(range(13))}, "a matrix may produce at most 256", id="too many"),
    pytest.param({"os": ["a"], "exclude": [{"cpu": "x"}]}, "Matrix exclude key 'cpu' does not match", id="exclude"),
]


@pytest.mark.parametrize(("matrix", "message"), ERRORS)
def test_a_matrix_that_cannot_be_expanded_fails_the_job_and_skips_its_dependants(matrix: Any, message: str) -> None:
    run = started(late(), job("after", ("ci.build",)))
    decided = setup_outputs(run, matrix)
    failed, skipped, completed = decided
    assert isinstance(failed, JobCompleted)
    assert (failed.job_id, failed.conclusion) == ("ci.build", Conclusion.FAILURE)
    assert failed.error is not None
    assert failed.error.startswith(f"Error when evaluating 'strategy' for job 'build' of {WORKFLOW}: ")
    assert message in failed.error
    assert isinstance(skipped, JobSkipped)
    assert skipped.job_id == "ci.after"
    assert completed == RunCompleted(run_id=RUN, conclusion=Conclusion.FAILURE)


def test_a_failed_expansion_is_not_retried() -> None:
    run = started(late(spec={"retry": {"max-attempts": 3, "on": "any"}}))
    decided = setup_outputs(run, "{}")
    assert [type(event).__name__ for event in decided] == ["JobCompleted", "RunCompleted"]


def test_a_late_job_whose_if_is_false_is_skipped_unexpanded() -> None:
    run = started(late(condition="needs.setup.outputs.go == 'yes'"), job("after", ("ci.build",), condition="always()"))
    decided = setup_outputs(run, {"os": ["a"]}, go="no")
    assert [(type(e).__name__, getattr(e, "job_id", "")) for e in decided] == [
        ("JobSkipped", "ci.build"),
        ("JobQueued", "ci.after"),
    ]


def test_a_late_job_in_a_called_workflow_gets_the_ids_and_names_of_called_legs() -> None:
    frame = CallFrame(job_id="ci.call", job_key="call", workflow=".github/workflows/called.yml", name="call",
                      inputs={"list": {"type": "string"}}, with_={"list": '["a", "b"]'})
    matrix = {"os": "${{ fromJSON(inputs.list) }}"}
    run = Run()
    decided = run.feed(request(), *planned(late(matrix, needs=(), frames=(frame,)),
                                           job("after", ("ci.call/build",), (frame,))))
    planned_legs = legs(decided)
    assert list(planned_legs) == ["ci.call/build.1", "ci.call/build.2"]
    assert [leg.name for leg in planned_legs.values()] == ["call / build (a)", "call / build (b)"]
    assert all(leg.call == [frame] for leg in planned_legs.values())
    assert run.state.run(RUN).jobs["ci.call/after"].plan.needs == ["ci.call/build.1", "ci.call/build.2"]


def test_a_job_whose_call_needs_the_late_job_needs_its_legs() -> None:
    frame = CallFrame(job_id="ci.call", job_key="call", workflow=".github/workflows/called.yml", name="call",
                      needs=["ci.build"])
    run = started(late(), job("inner", ("ci.build",), (frame,)))
    setup_outputs(run, {"os": ["a", "b"]})
    inner = run.state.run(RUN).jobs["ci.call/inner"].plan
    assert inner.needs == ["ci.build.1", "ci.build.2"]
    assert inner.call[0].needs == ["ci.build.1", "ci.build.2"]
    run.complete("ci.build.1")
    assert queued(run.complete("ci.build.2")) == ["ci.call/inner"]


def test_replaying_the_log_gives_the_same_state_and_decides_nothing_new() -> None:
    run = started(late(strategy={"max-parallel": 1}), job("after", ("ci.build",)))
    setup_outputs(run, {"os": ["a", "b"], "include": [{"os": "c", "extra": "x"}]})
    run.complete("ci.build.1", out="1")
    replayed = reduce(evolve, run.log, SchedulerState())
    assert replayed == run.state
    assert decide(replayed, run.log[-1]) == []
    again = [event for event in run.log if isinstance(event, JobPlanned | MatrixExpanded)]
    redelivered = reduce(evolve, again, replayed)
    assert redelivered == replayed
    assert all(decide(redelivered, event) == [] for event in again)


async def test_a_restarted_scheduler_rebuilds_the_legs_from_the_log(tmp_path: Path) -> None:
    async with SqliteEventLog(tmp_path / "log.db") as log:

        async def handled(scheduler: Scheduler, event: Event) -> list[Event]:
            [stored] = await log.append([Envelope.wrap(event, stream=RUN)])
            decided = list(await scheduler.on_event(stored))
            if decided:
                await log.append(decided)
            return [envelope.event for envelope in decided]

        live = Scheduler(log)
        for event in [request(), *planned(job("setup"), late(strategy={"max-parallel": 1}))]:
            await handled(live, event)
        matrix = json.dumps({"os": ["a", "b"]})
        decided = await handled(live, JobCompleted(run_id=RUN, job_id="ci.setup", conclusion="success",
                                                   outputs={"matrix": matrix}))
        assert [type(event).__name__ for event in decided] == ["MatrixExpanded", "JobPlanned", "JobPlanned",
                                                               "JobQueued"]

        [last] = await log.append([Envelope.wrap(JobCompleted(run_id=RUN, job_id="ci.build.1", conclusion="success"),
                                                 stream=RUN)])
        restarted = Scheduler(log)
        again = [envelope.event for envelope in await restarted.on_event(last)]
        assert again == [envelope.event for envelope in await live.on_event(last)]
        assert [(type(event).__name__, getattr(event, "job_id", "")) for event in again] == [
            ("JobQueued", "ci.build.2")
        ]
        assert untimed(restarted.state.run(RUN)) == untimed(live.state.run(RUN))


def untimed(run: RunState) -> RunState:
    """The run without the instants its jobs entered their status: a decision's envelope is stamped when it is
    appended, a little after the instant the live scheduler folded it in."""
    return replace(run, jobs={job_id: replace(job, since=EPOCH) for job_id, job in run.jobs.items()})
