"""The scheduler's pure state machine: needs order, conditions, skipping, and the run's conclusion."""

from __future__ import annotations

from functools import reduce

import pytest
from conveyor_events import (
    Conclusion,
    Event,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    RunCancelRequested,
    RunCompleted,
    RunEvent,
    RunPlanned,
    RunRejected,
    RunRequested,
)
from conveyor_scheduler.domain import JobState, SchedulerState, evolve

from services.scheduler.tests.feeding import Feed

RUN = "run-1"


def request() -> RunRequested:
    return RunRequested(run_id=RUN, repository="/repo", ref="refs/heads/main", sha="a" * 40)


def job(key: str, needs: tuple[str, ...] = (), condition: str | None = None) -> JobPlanned:
    return JobPlanned(run_id=RUN, job_id=f"ci.{key}", workflow="ci.yml", job_key=key, name=key,
                      needs=[f"ci.{need}" for need in needs], condition=condition, runs_on=["x"])


def planned(*jobs: JobPlanned, index: int = 1, count: int = 1) -> list[Event]:
    return [*jobs, RunPlanned(run_id=RUN, workflow="ci.yml", workflow_name="CI", index=index, count=count,
                              jobs=[j.job_id for j in jobs])]


class Run(Feed):
    """Feeds events to evolve/decide the way the scheduler's handler does; jobs are named by their keys."""

    def complete(self, job_id: str, conclusion: Conclusion = Conclusion.SUCCESS, **outputs: str) -> list[RunEvent]:
        return super().complete(f"ci.{job_id}", conclusion, **outputs)


def kinds(events: list[RunEvent]) -> list[tuple[str, str]]:
    return [(type(e).__name__, getattr(e, "job_id", getattr(e, "conclusion", ""))) for e in events]


def test_jobs_are_queued_in_needs_order_and_the_run_ends_when_all_have() -> None:
    run = Run()
    first = run.feed(request(), *planned(job("a"), job("b", ("a",)), job("c", ("a",)), job("d", ("b", "c"))))
    assert kinds(first) == [("RunNumbered", ""), ("JobQueued", "ci.a")]

    assert kinds(run.complete("a", version="1")) == [("JobQueued", "ci.b"), ("JobQueued", "ci.c")]
    assert run.complete("b") == []
    [queued] = run.complete("c")
    assert isinstance(queued, JobQueued)
    assert queued.job_id == "ci.d"
    assert set(queued.needs) == {"b", "c"}

    [completed] = run.complete("d")
    assert completed == RunCompleted(run_id=RUN, conclusion=Conclusion.SUCCESS)


def test_needs_context_carries_results_and_outputs() -> None:
    run = Run()
    run.feed(request(), *planned(job("a"), job("b", ("a",))))
    [queued] = run.complete("a", version="1.2.3")
    assert isinstance(queued, JobQueued)
    assert queued.needs["a"].result == Conclusion.SUCCESS
    assert queued.needs["a"].outputs == {"version": "1.2.3"}


def test_a_failure_skips_dependants_but_not_always_or_failure_jobs() -> None:
    run = Run()
    run.feed(
        request(),
        *planned(
            job("build"),
            job("deploy", ("build",)),
            job("cleanup", ("build",), "always()"),
            job("alert", ("build",), "failure()"),
            job("after-deploy", ("deploy",)),
            job("after-deploy-always", ("deploy",), "${{ always() }}"),
        ),
    )
    decided = run.complete("build", Conclusion.FAILURE)
    assert kinds(decided) == [
        ("JobSkipped", "ci.deploy"),
        ("JobQueued", "ci.cleanup"),
        ("JobQueued", "ci.alert"),
        ("JobSkipped", "ci.after-deploy"),
        ("JobQueued", "ci.after-deploy-always"),
    ]
    run.complete("cleanup")
    run.complete("alert")
    [completed] = run.complete("after-deploy-always")
    assert completed == RunCompleted(run_id=RUN, conclusion=Conclusion.FAILURE)


def test_a_skipped_need_makes_success_and_failure_false() -> None:
    run = Run()
    run.feed(
        request(),
        *planned(
            job("gate", condition="github.ref == 'refs/heads/other'"),
            job("on-success", ("gate",), "success()"),
            job("on-failure", ("gate",), "failure()"),
            job("on-always", ("gate",), "always()"),
        ),
    )
    assert kinds(run.decided) == [
        ("RunNumbered", ""),
        ("JobSkipped", "ci.gate"),
        ("JobSkipped", "ci.on-success"),
        ("JobSkipped", "ci.on-failure"),
        ("JobQueued", "ci.on-always"),
    ]
    [completed] = run.complete("on-always")
    assert completed == RunCompleted(run_id=RUN, conclusion=Conclusion.SUCCESS)


def test_a_condition_on_needs_outputs() -> None:
    run = Run()
    run.feed(request(), *planned(job("a"), job("b", ("a",), "needs.a.outputs.go == 'yes'")))
    decided = run.complete("a", go="no")
    assert kinds(decided) == [("JobSkipped", "ci.b"), ("RunCompleted", Conclusion.SUCCESS)]


def test_a_bad_condition_fails_the_job_with_the_reason() -> None:
    run = Run()
    run.feed(request(), *planned(job("a", condition="nonsense(")))
    completed = [e for e in run.decided if isinstance(e, JobCompleted)]
    assert len(completed) == 1
    assert completed[0].conclusion == Conclusion.FAILURE
    assert completed[0].error is not None
    assert "if:" in completed[0].error
    assert run.decided[-1] == RunCompleted(run_id=RUN, conclusion=Conclusion.FAILURE)


def test_the_run_waits_for_every_workflow() -> None:
    run = Run()
    run.feed(request(), *planned(job("a"), index=1, count=2))
    assert kinds(run.complete("a")) == []
    decided = run.feed(RunRejected(run_id=RUN, workflow="broken.yml", index=2, count=2, reason="invalid"))
    assert decided == [RunCompleted(run_id=RUN, conclusion=Conclusion.FAILURE)]


def test_a_request_rejected_as_a_whole_fails_the_run() -> None:
    run = Run()
    decided = run.feed(request(), RunRejected(run_id=RUN, reason="the repository cannot be read"))
    assert decided == [RunCompleted(run_id=RUN, conclusion=Conclusion.FAILURE)]


def test_a_request_nothing_triggers_is_skipped_not_failed() -> None:
    run = Run()
    nothing = RunRejected(run_id=RUN, reason="no workflow is triggered by 'push'", nothing_triggered=True)
    decided = run.feed(request(), nothing)
    assert decided == [RunCompleted(run_id=RUN, conclusion=Conclusion.SKIPPED)]


def test_cancelling_skips_jobs_not_yet_queued() -> None:
    run = Run()
    run.feed(request(), *planned(job("a"), job("b", ("a",))))
    run.feed(JobStarted(run_id=RUN, job_id="ci.a", runner_id="r1"))
    # a running job is asked to stop; it concludes when its runner says so
    assert kinds(run.feed(RunCancelRequested(run_id=RUN))) == [("JobCancelRequested", "ci.a")]
    decided = run.complete("a", Conclusion.CANCELLED)
    assert kinds(decided) == [("JobSkipped", "ci.b"), ("RunCompleted", Conclusion.CANCELLED)]


@pytest.mark.parametrize("duplicate", ["JobCompleted", "RunPlanned"])
def test_a_redelivered_event_decides_nothing_new(duplicate: str) -> None:
    run = Run()
    events = planned(job("a"), job("b", ("a",)))
    run.feed(request(), *events)
    completion = JobCompleted(run_id=RUN, job_id="ci.a", conclusion=Conclusion.SUCCESS)
    run.feed(completion)
    again = completion if duplicate == "JobCompleted" else events[-1]
    assert run.feed(again) == []


def test_replaying_the_same_events_gives_the_same_state() -> None:
    run = Run()
    history: list[Event] = [request(), *planned(job("a"), job("b", ("a",)), job("c", ("a",), "failure()"))]
    opening = run.feed(*history)
    completion = JobCompleted(run_id=RUN, job_id="ci.a", conclusion=Conclusion.SUCCESS)
    run.feed(completion)
    everything = [*history, *opening, completion, *run.decided[len(opening):]]

    replayed = reduce(evolve, everything, SchedulerState())

    assert replayed == run.state
    skipped = [e for e in run.decided if isinstance(e, JobSkipped)]
    assert [e.job_id for e in skipped] == ["ci.c"]


def test_a_planned_job_is_the_job_its_dataclass_makes() -> None:
    plan = JobPlanned(run_id="run-1", job_id="ci.a", workflow="ci.yml", job_key="a", name="a", needs=[], runs_on=["x"])
    made, planned = JobState(plan), JobState.planned(plan)
    assert planned == made
    assert list(vars(planned)) == list(vars(made))
    assert planned.outputs == {}
    assert planned.outputs is not JobState.planned(plan).outputs  # each job its own


def test_an_event_of_a_subclass_is_folded_as_its_class() -> None:
    class Planned(JobPlanned):
        pass

    state = evolve(SchedulerState(), RunRequested(run_id="r", repository="o/r", ref="refs/heads/main", sha="a" * 40))
    state = evolve(state, Planned(run_id="r", job_id="ci.a", workflow="ci.yml", job_key="a", name="a"))
    assert list(state.runs["r"].jobs) == ["ci.a"]
