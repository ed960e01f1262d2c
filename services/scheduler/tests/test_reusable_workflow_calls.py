"""Scheduling the jobs of called reusable workflows: the call's inputs and `if:`, and the call as one `needs` entry."""

from __future__ import annotations

from functools import reduce
from typing import Any

import pytest
from conveyor_events import (
    CallFrame,
    Conclusion,
    Event,
    JobCancelRequested,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    NeedResult,
    RunCompleted,
    RunEvent,
    RunPlanned,
    RunRequested,
)
from conveyor_scheduler.domain import SchedulerState, decide, evolve

from services.scheduler.tests.feeding import Feed

RUN = "run-1"
WORKFLOW = ".github/workflows/ci.yml"


def request() -> RunRequested:
    return RunRequested(run_id=RUN, repository="/repo", ref="refs/heads/main", sha="a" * 40)


def call(job_id: str = "ci.call", key: str = "call", **fields: Any) -> CallFrame:
    return CallFrame(job_id=job_id, job_key=key, workflow=".github/workflows/called.yml", name=key, **fields)


def job(
    job_id: str, frames: tuple[CallFrame, ...] = (), needs: tuple[str, ...] = (), **fields: Any
) -> JobPlanned:
    """A planned job (`ci.<key>[.<leg>]`, `<caller id>/<key>[.<leg>]` when called); its key is the path of the
    callers' keys and its own."""
    own = (job_id.rsplit("/", 1)[-1] if frames else job_id.removeprefix("ci.")).split(".")[0]
    key = "/".join([*(frame.job_key for frame in frames), own])
    fields.setdefault("runs_on", ["x"])
    return JobPlanned(run_id=RUN, job_id=job_id, workflow=WORKFLOW, job_key=key, name=key, needs=list(needs),
                      call=list(frames), **fields)


def planned(*jobs: JobPlanned) -> list[Event]:
    return [*jobs, RunPlanned(run_id=RUN, workflow=WORKFLOW, workflow_name="CI", index=1, count=1,
                              jobs=[j.job_id for j in jobs])]


class Run(Feed):
    """Feeds events to evolve/decide the way the scheduler's handler does, keeping every event seen."""


def queued(events: list[RunEvent]) -> dict[str, JobQueued]:
    return {event.job_id: event for event in events if isinstance(event, JobQueued)}


BUILD = call(
    needs=["ci.setup"],
    with_={"target": "release", "level": "${{ fromJSON(needs.setup.outputs.level) }}"},
    inputs={
        "target": {"type": "string", "required": True},
        "level": {"type": "number", "default": 1},
        "debug": {"type": "boolean"},
    },
    outputs={"artifact": "${{ jobs.package.outputs.name }}-${{ inputs.target }}", "missing": "${{ jobs.nope.x }}"},
)


def build_run() -> list[Event]:
    return [
        request(),
        *planned(
            job("ci.setup"),
            job("ci.call/compile", (BUILD,), needs=("ci.setup",)),
            job("ci.call/package", (BUILD,), needs=("ci.call/compile", "ci.setup"), runs_on=["${{ inputs.target }}"],
                spec={"runs_on": "${{ inputs.target }}"}),
            job("ci.report", needs=("ci.call/compile", "ci.call/package")),
        ),
    ]


def test_a_call_gets_typed_inputs_and_its_dependant_reads_the_calls_outputs() -> None:
    run = Run()
    assert list(queued(run.feed(*build_run()))) == ["ci.setup"]

    compile_ = queued(run.complete("ci.setup", level="5"))["ci.call/compile"]
    assert compile_.inputs == {"target": "release", "level": 5, "debug": False}
    assert compile_.needs == {}
    # what the caller's `secrets:` may read: its own needs and inputs (the run's, outside any call)
    assert compile_.callers == [
        {"needs": {"setup": {"result": "success", "outputs": {"level": "5"}}}, "inputs": {}}
    ]

    package = queued(run.complete("ci.call/compile", bin="app"))["ci.call/package"]
    assert package.needs == {"compile": NeedResult(result=Conclusion.SUCCESS, outputs={"bin": "app"})}
    assert package.labels == ["release"]
    assert queued(run.complete("ci.setup")) == {}

    report = queued(run.complete("ci.call/package", name="app.tar"))["ci.report"]
    assert report.inputs is None
    assert report.needs == {
        "call": NeedResult(result=Conclusion.SUCCESS, outputs={"artifact": "app.tar-release", "missing": ""})
    }
    assert run.complete("ci.report")[-1] == RunCompleted(run_id=RUN, conclusion=Conclusion.SUCCESS)


def test_replaying_a_run_with_calls_rebuilds_the_same_state_and_decides_nothing_new() -> None:
    run = Run()
    run.feed(*build_run())
    run.complete("ci.setup", level="5")
    run.complete("ci.call/compile", bin="app")

    replayed = reduce(evolve, run.log, SchedulerState())

    assert replayed == run.state
    assert decide(replayed, run.log[-1]) == []


@pytest.mark.parametrize(
    ("expression", "output", "wrong"),
    [
        ("${{ fromJSON(needs.setup.outputs.level) }}", "high", "Error parsing fromJson"),
        # a job's output is a string, which a number input refuses: GitHub's answer is fromJSON
        ("${{ needs.setup.outputs.level }}", "5", "passes '5' to input 'level' of .github/workflows/called.yml, "
                                                  "which is a number"),
    ],
)
def test_an_input_of_the_wrong_type_fails_the_called_jobs_and_the_run(expression: str, output: str, wrong: str) -> None:
    run = Run()
    events = build_run()
    run.feed(*[
        e.model_copy(update={"call": [e.call[0].model_copy(update={"with_": {"target": "x", "level": expression}})]})
        if isinstance(e, JobPlanned) and e.call else e
        for e in events
    ])

    decided = run.complete("ci.setup", level=output)

    failed = [e for e in decided if isinstance(e, JobCompleted)]
    assert [e.job_id for e in failed] == ["ci.call/compile", "ci.call/package"]
    assert failed[0].conclusion == Conclusion.FAILURE
    assert wrong in (failed[0].error or "")
    assert [e.job_id for e in decided if isinstance(e, JobSkipped)] == ["ci.report"]
    assert decided[-1] == RunCompleted(run_id=RUN, conclusion=Conclusion.FAILURE)


TWO = call(outputs={"out": "${{ jobs.a.outputs.v }}"})


def two_jobs(a: dict[str, Any], b: dict[str, Any], report_if: str | None = "always()") -> list[Event]:
    return [
        request(),
        *planned(
            job("ci.call/a", (TWO,), **a),
            job("ci.call/b", (TWO,), **b),
            job("ci.report", needs=("ci.call/a", "ci.call/b"), condition=report_if),
        ),
    ]


FALSE = {"condition": "false"}
CONTINUES = {"spec": {"continue_on_error": True}}


@pytest.mark.parametrize(
    ("a", "a_ends", "b", "b_ends", "result"),
    [
        ({}, Conclusion.SUCCESS, {}, Conclusion.SUCCESS, Conclusion.SUCCESS),
        ({}, Conclusion.SUCCESS, {}, Conclusion.FAILURE, Conclusion.FAILURE),
        ({}, Conclusion.CANCELLED, {}, Conclusion.SUCCESS, Conclusion.CANCELLED),
        ({}, Conclusion.FAILURE, {}, Conclusion.CANCELLED, Conclusion.FAILURE),
        (CONTINUES, Conclusion.FAILURE, {}, Conclusion.SUCCESS, Conclusion.SUCCESS),
        ({}, Conclusion.SUCCESS, FALSE, None, Conclusion.SUCCESS),
        (FALSE, None, FALSE, None, Conclusion.SKIPPED),
    ],
    ids=["all-succeed", "one-fails", "one-cancelled", "failure-beats-cancelled", "continue-on-error",
         "one-skipped", "all-skipped"],
)
def test_the_callers_result_follows_its_called_jobs(
    a: dict[str, Any], a_ends: Conclusion | None, b: dict[str, Any], b_ends: Conclusion | None, result: Conclusion
) -> None:
    run = Run()
    decided = run.feed(*two_jobs(a, b))
    for job_id, ends in (("ci.call/a", a_ends), ("ci.call/b", b_ends)):
        if ends is not None:
            decided += run.complete(job_id, ends, v="1")

    report = queued(decided)["ci.report"]
    assert report.needs["call"].result == result
    assert report.needs["call"].outputs == ({"out": "1"} if a_ends is not None else {"out": ""})


def test_a_dependant_of_a_failed_call_is_skipped_and_the_run_fails() -> None:
    run = Run()
    run.feed(*two_jobs({}, {}, report_if=None))
    run.complete("ci.call/a")

    decided = run.complete("ci.call/b", Conclusion.FAILURE)

    assert [(type(e).__name__, getattr(e, "job_id", "")) for e in decided] == [
        ("JobSkipped", "ci.report"), ("RunCompleted", "")
    ]
    assert decided[-1] == RunCompleted(run_id=RUN, conclusion=Conclusion.FAILURE)


def gated(condition: str | None, setup_ends: Conclusion) -> list[RunEvent]:
    frame = call(needs=["ci.setup"], condition=condition)
    run = Run()
    run.feed(request(), *planned(
        job("ci.setup"),
        job("ci.call/a", (frame,), needs=("ci.setup",)),
        job("ci.call/b", (frame,), needs=("ci.call/a", "ci.setup")),
        job("ci.report", needs=("ci.call/a", "ci.call/b"), condition="always()"),
    ))
    return run.complete("ci.setup", setup_ends)


@pytest.mark.parametrize(
    ("condition", "setup_ends", "runs", "reason"),
    [
        (None, Conclusion.SUCCESS, True, None),
        ("github.ref == 'refs/heads/main'", Conclusion.SUCCESS, True, None),
        ("github.ref == 'refs/heads/dev'", Conclusion.SUCCESS, False,
         "if: github.ref == 'refs/heads/dev' of the calling job 'call'"),
        (None, Conclusion.FAILURE, False, "if: success() of the calling job 'call'"),
        ("always()", Conclusion.FAILURE, True, None),
        ("failure()", Conclusion.FAILURE, True, None),
    ],
    ids=["default", "true", "false", "needs-failed", "always", "failure"],
)
def test_the_callers_if_gates_the_whole_call(
    condition: str | None, setup_ends: Conclusion, runs: bool, reason: str | None
) -> None:
    decided = gated(condition, setup_ends)

    if runs:
        assert list(queued(decided)) == ["ci.call/a"]
        return
    skipped = [e for e in decided if isinstance(e, JobSkipped)]
    assert [(e.job_id, e.reason) for e in skipped] == [("ci.call/a", reason), ("ci.call/b", reason)]
    assert queued(decided)["ci.report"].needs["call"].result == Conclusion.SKIPPED


def test_a_matrix_over_a_call_makes_independent_calls_with_their_own_matrix() -> None:
    frames = [
        call(f"ci.call.{leg}", with_={"os": "${{ matrix.os }}"}, inputs={"os": {"type": "string"}},
             outputs={"out": "${{ inputs.os }}-${{ jobs.build.outputs.v }}"}, matrix={"os": os},
             strategy={"fail-fast": False})
        for leg, os in ((1, "linux"), (2, "mac"))
    ]
    spec = {"strategy": {"matrix": {"n": [1, 2]}}}
    builds = [job(f"{f.job_id}/build.{n}", (f,), matrix={"n": n}, spec=spec) for f in frames for n in (1, 2)]
    run = Run()

    report = job("ci.report", needs=tuple(b.job_id for b in builds), condition="always()")
    first = run.feed(request(), *planned(*builds, report))

    assert {job_id: event.inputs for job_id, event in queued(first).items()} == {
        "ci.call.1/build.1": {"os": "linux"}, "ci.call.1/build.2": {"os": "linux"},
        "ci.call.2/build.1": {"os": "mac"}, "ci.call.2/build.2": {"os": "mac"},
    }
    fail_fast = run.complete("ci.call.1/build.1", Conclusion.FAILURE)
    assert [(e.job_id, e.conclusion) for e in fail_fast if isinstance(e, JobCompleted)] == [
        ("ci.call.1/build.2", Conclusion.CANCELLED)
    ]
    assert not [e for e in fail_fast if isinstance(e, JobCancelRequested)]
    run.complete("ci.call.2/build.1", v="a")
    last = queued(run.complete("ci.call.2/build.2", v="b"))
    assert last["ci.report"].needs["call"] == NeedResult(result=Conclusion.FAILURE, outputs={"out": "mac-b"})


AT = "${{ strategy.job-index }}/${{ strategy.job-total }}"


def matrix_of_calls(strategy: dict[str, Any], legs: int = 3) -> tuple[Run, list[RunEvent]]:
    """A call with a matrix of `legs` legs, each leg one job `ci.call.<n>/build`, its caller's `strategy`."""
    frames = [
        call(f"ci.call.{leg}", with_={"n": "${{ matrix.n }}", "at": AT},
             inputs={"n": {"type": "number"}, "at": {"type": "string"}},
             outputs={"out": "${{ jobs.build.outputs.v }}"}, matrix={"n": leg}, strategy=strategy)
        for leg in range(1, legs + 1)
    ]
    builds = [job(f"{frame.job_id}/build", (frame,)) for frame in frames]
    report = job("ci.report", needs=tuple(b.job_id for b in builds), condition="always()")
    run = Run()
    return run, run.feed(request(), *planned(*builds, report))


def test_a_matrix_of_one_call_gives_outputs_only_when_the_leg_succeeded() -> None:
    run, _ = matrix_of_calls({}, legs=1)
    report = queued(run.complete("ci.call.1/build", Conclusion.FAILURE, v="partial"))["ci.report"]
    assert report.needs["call"] == NeedResult(result=Conclusion.FAILURE, outputs={})


def test_a_failing_leg_of_a_matrix_of_calls_cancels_the_other_legs_by_default() -> None:
    run, first = matrix_of_calls({})
    assert list(queued(first)) == ["ci.call.1/build", "ci.call.2/build", "ci.call.3/build"]
    assert [event.inputs for event in queued(first).values()] == [
        {"n": 1, "at": "0/3"}, {"n": 2, "at": "1/3"}, {"n": 3, "at": "2/3"}
    ]
    run.feed(JobStarted(run_id=RUN, job_id="ci.call.3/build", runner_id="r"))
    decided = run.complete("ci.call.1/build", Conclusion.FAILURE)
    assert [(e.job_id, e.conclusion) for e in decided if isinstance(e, JobCompleted)] == [
        ("ci.call.2/build", Conclusion.CANCELLED)
    ]
    assert [e.job_id for e in decided if isinstance(e, JobCancelRequested)] == ["ci.call.3/build"]


def test_a_matrix_of_calls_reads_its_strategy_from_expressions() -> None:
    run, first = matrix_of_calls({"fail-fast": "${{ github.event_name != 'push' }}",
                                  "max-parallel": "${{ fromJSON('2') }}"})
    assert list(queued(first)) == ["ci.call.1/build", "ci.call.2/build"]
    decided = run.complete("ci.call.1/build", Conclusion.FAILURE)
    assert list(queued(decided)) == ["ci.call.3/build"]  # not cancelled: fail-fast is false
    assert not [e for e in decided if isinstance(e, JobCompleted | JobCancelRequested)]


def test_max_parallel_of_a_matrix_of_calls_limits_the_legs_in_progress() -> None:
    run, first = matrix_of_calls({"max-parallel": 1, "fail-fast": False})
    assert list(queued(first)) == ["ci.call.1/build"]
    assert list(queued(run.complete("ci.call.1/build", Conclusion.FAILURE))) == ["ci.call.2/build"]
    assert list(queued(run.complete("ci.call.2/build", v="two"))) == ["ci.call.3/build"]
    report = queued(run.complete("ci.call.3/build", v=""))["ci.report"]
    # the last leg that succeeded and set a value gives the output
    assert report.needs["call"] == NeedResult(result=Conclusion.FAILURE, outputs={"out": "two"})


def test_nested_calls_pass_inputs_down_and_outputs_up() -> None:
    outer = call(with_={"m": 7}, inputs={"m": {"type": "number"}}, outputs={"top": "${{ jobs.inner.outputs.deep }}"})
    inner = call("ci.call/inner", "inner", with_={"n": "${{ inputs.m }}", "flag": "${{ inputs.m > 5 }}"},
                 inputs={"n": {"type": "string"}, "flag": {"type": "boolean"}},
                 outputs={"deep": "${{ jobs.leaf.outputs.v }}-${{ inputs.n }}-${{ inputs.flag }}"})
    run = Run()

    first = run.feed(request(), *planned(
        job("ci.call/inner/leaf", (outer, inner)),
        job("ci.after", needs=("ci.call/inner/leaf",)),
    ))

    assert queued(first)["ci.call/inner/leaf"].inputs == {"n": "7", "flag": True}
    after = queued(run.complete("ci.call/inner/leaf", v="x"))["ci.after"]
    assert after.needs == {"call": NeedResult(result=Conclusion.SUCCESS, outputs={"top": "x-7-true"})}
