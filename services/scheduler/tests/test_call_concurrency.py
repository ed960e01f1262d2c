"""`concurrency:` on a job that calls a reusable workflow: the call's jobs hold the group together, as one entry."""

from __future__ import annotations

from typing import Any

from conveyor_events import (
    CallFrame,
    Conclusion,
    ConcurrencyCancelled,
    ConcurrencyWaited,
    Event,
    JobCancelRequested,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    RunCompleted,
    RunEvent,
    RunPlanned,
    RunRequested,
    RunRerunRequested,
)

from services.scheduler.tests.feeding import Feed

WORKFLOW = ".github/workflows/ci.yml"


def deploying(
    run_id: str,
    concurrency: Any,
    *,
    legs: tuple[str, ...] = ("",),
    workflow_concurrency: Any = None,
    called_concurrency: Any = None,
) -> list[Event]:
    """A run whose job `deploy` calls a workflow of two jobs (`migrate`, then `release`) with `concurrency`, once
    per leg (a leg names its matrix value `env`, and passes it as the input `env`); the called workflow has
    `called_concurrency`, the triggered one `workflow_concurrency`."""
    jobs: list[JobPlanned] = []
    for leg in legs:
        caller = f"ci.deploy.{leg}" if leg else "ci.deploy"
        frame = CallFrame(job_id=caller, job_key="deploy", workflow=".github/workflows/deploy.yml", name="deploy",
                          concurrency=concurrency, matrix={"env": leg} if leg else None,
                          workflow_concurrency=called_concurrency, inputs={"env": {"type": "string"}},
                          with_={"env": "${{ matrix.env }}"} if leg else {})
        for key, needs in (("migrate", ()), ("release", (f"{caller}/migrate",))):
            jobs.append(JobPlanned(run_id=run_id, job_id=f"{caller}/{key}", workflow=WORKFLOW,
                                   job_key=f"deploy/{key}", name=key, needs=list(needs), runs_on=["x"],
                                   call=[frame]))
    return [
        RunRequested(run_id=run_id, repository="/repo", ref="refs/heads/main", sha="a" * 40),
        *jobs,
        RunPlanned(run_id=run_id, workflow=WORKFLOW, workflow_name="CI", index=1, count=1,
                   jobs=[job.job_id for job in jobs], concurrency=workflow_concurrency),
    ]


def queued(events: list[RunEvent]) -> list[tuple[str, str]]:
    return [(event.run_id, event.job_id) for event in events if isinstance(event, JobQueued)]


def start(feed: Feed, run_id: str, job_id: str) -> list[RunEvent]:
    return feed.feed(JobStarted(run_id=run_id, job_id=job_id, runner_id="r"))


def complete(feed: Feed, run_id: str, job_id: str, conclusion: Conclusion = Conclusion.SUCCESS) -> list[RunEvent]:
    return feed.feed(JobCompleted(run_id=run_id, job_id=job_id, conclusion=conclusion))


def test_the_next_call_waits_until_every_job_of_the_holding_call_completed() -> None:
    feed = Feed()
    assert queued(feed.feed(*deploying("r1", "production"))) == [("r1", "ci.deploy/migrate")]
    assert queued(feed.feed(*deploying("r2", "Production"))) == []  # the same group, whatever its case

    assert queued(complete(feed, "r1", "ci.deploy/migrate")) == [("r1", "ci.deploy/release")]
    decided = complete(feed, "r1", "ci.deploy/release")

    assert queued(decided) == [("r2", "ci.deploy/migrate")]
    assert RunCompleted(run_id="r1", conclusion=Conclusion.SUCCESS) in decided


def test_cancel_in_progress_cancels_the_holding_calls_jobs() -> None:
    group = {"group": "deploy-${{ github.ref }}", "cancel-in-progress": True}
    feed = Feed()
    feed.feed(*deploying("r1", group))
    start(feed, "r1", "ci.deploy/migrate")

    decided = feed.feed(*deploying("r2", group))

    cancels = [e for e in decided if isinstance(e, JobCancelRequested)]
    assert [(e.run_id, e.job_id) for e in cancels] == [("r1", "ci.deploy/migrate")]
    assert "cancel-in-progress in concurrency group 'deploy-refs/heads/main'" in cancels[0].reason
    # the job not started yet is cancelled at once; the running one when its runner stops it
    assert [(e.job_id, e.conclusion) for e in decided if isinstance(e, JobCompleted)] == [
        ("ci.deploy/release", Conclusion.CANCELLED)
    ]
    assert queued(decided) == []
    decided = complete(feed, "r1", "ci.deploy/migrate", Conclusion.CANCELLED)
    assert queued(decided) == [("r2", "ci.deploy/migrate")]
    assert RunCompleted(run_id="r1", conclusion=Conclusion.CANCELLED) in decided


def test_a_newer_pending_call_replaces_the_older() -> None:
    feed = Feed()
    feed.feed(*deploying("r1", "production"))
    feed.feed(*deploying("r2", "production"))

    decided = feed.feed(*deploying("r3", "production"))

    [superseded] = [e for e in decided if isinstance(e, ConcurrencyCancelled)]
    assert (superseded.run_id, superseded.job_id, superseded.call, superseded.reason) == (
        "r2", "ci.deploy", "caller", "superseded"
    )
    assert sorted((e.run_id, e.job_id) for e in decided if isinstance(e, JobCompleted | JobSkipped)) == [
        ("r2", "ci.deploy/migrate"),
        ("r2", "ci.deploy/release"),
    ]
    assert RunCompleted(run_id="r2", conclusion=Conclusion.CANCELLED) in decided
    complete(feed, "r1", "ci.deploy/migrate")
    assert queued(complete(feed, "r1", "ci.deploy/release")) == [("r3", "ci.deploy/migrate")]


def test_each_leg_of_a_matrix_of_calls_enters_the_group_its_caller_names() -> None:
    feed = Feed()
    first = feed.feed(*deploying("r1", "deploy-${{ matrix.env }}", legs=("staging", "production")))
    second = feed.feed(*deploying("r2", "deploy-${{ matrix.env }}", legs=("staging",)))

    assert queued(first) == [("r1", "ci.deploy.staging/migrate"), ("r1", "ci.deploy.production/migrate")]
    assert queued(second) == []
    complete(feed, "r1", "ci.deploy.production/migrate")
    assert queued(complete(feed, "r1", "ci.deploy.production/release")) == []  # another group's call ended
    complete(feed, "r1", "ci.deploy.staging/migrate")
    assert queued(complete(feed, "r1", "ci.deploy.staging/release")) == [("r2", "ci.deploy.staging/migrate")]


def test_a_call_whose_group_is_empty_fails_as_on_github() -> None:
    feed = Feed()
    decided = feed.feed(*deploying("r1", "${{ inputs.missing }}"))

    failed = [e for e in decided if isinstance(e, JobCompleted)]  # the call cannot start: none of its jobs runs
    assert [(e.job_id, e.conclusion) for e in failed] == [
        ("ci.deploy/migrate", Conclusion.FAILURE), ("ci.deploy/release", Conclusion.FAILURE)
    ]
    assert all("concurrency group evaluated to an empty string" in (e.error or "") for e in failed)
    assert RunCompleted(run_id="r1", conclusion=Conclusion.FAILURE) in decided


def test_a_rerun_of_a_call_that_gave_way() -> None:
    feed = Feed()
    feed.feed(*deploying("r1", {"group": "other"}))
    feed.feed(*deploying("r2", {"group": "g", "cancel-in-progress": True}))
    feed.feed(*deploying("r3", {"group": "g", "cancel-in-progress": True}))  # r2's call gives way before it ran
    assert feed.state.run("r2").conclusion == Conclusion.CANCELLED
    complete(feed, "r3", "ci.deploy/migrate")
    complete(feed, "r3", "ci.deploy/release")

    decided = feed.feed(RunRerunRequested(run_id="r2", mode="failed"))

    assert queued(decided) == [("r2", "ci.deploy/migrate")]  # the call enters its group again, and holds it


def test_a_call_asking_for_the_group_its_workflow_holds_is_cancelled() -> None:
    feed = Feed()
    decided = feed.feed(*deploying("r1", "deploy", workflow_concurrency="deploy"))

    [deadlock] = [e for e in decided if isinstance(e, ConcurrencyCancelled)]
    assert (deadlock.job_id, deadlock.call, deadlock.reason) == ("ci.deploy", "caller", "deadlock")
    assert RunCompleted(run_id="r1", conclusion=Conclusion.CANCELLED) in decided


def test_the_called_workflows_own_concurrency_is_held_by_the_call_reading_its_inputs() -> None:
    feed = Feed()
    group = "deploy-${{ inputs.env }}"
    first = feed.feed(*deploying("r1", None, legs=("staging", "production"), called_concurrency=group))
    second = feed.feed(*deploying("r2", None, legs=("staging",), called_concurrency=group))

    assert queued(first) == [("r1", "ci.deploy.staging/migrate"), ("r1", "ci.deploy.production/migrate")]
    assert queued(second) == []
    complete(feed, "r1", "ci.deploy.staging/migrate")
    assert queued(complete(feed, "r1", "ci.deploy.staging/release")) == [("r2", "ci.deploy.staging/migrate")]


def test_a_called_workflow_naming_its_callers_group_is_a_deadlock() -> None:
    # `github.workflow` is the caller's in a called workflow too: the same group at both levels
    group = {"group": "${{ github.workflow }}-${{ github.ref }}", "cancel-in-progress": True}
    feed = Feed()
    decided = feed.feed(*deploying("r1", None, workflow_concurrency=group, called_concurrency=group))

    [deadlock] = [e for e in decided if isinstance(e, ConcurrencyCancelled)]
    assert (deadlock.job_id, deadlock.call, deadlock.reason) == ("ci.deploy", "workflow", "deadlock")
    assert RunCompleted(run_id="r1", conclusion=Conclusion.CANCELLED) in decided


def test_the_callers_concurrency_is_entered_before_the_called_workflows() -> None:
    feed = Feed()
    feed.feed(*deploying("r1", "outer", called_concurrency="inner"))
    decided = feed.feed(*deploying("r2", "outer", called_concurrency="inner"))

    assert [(type(e).__name__, e.call) for e in decided if isinstance(e, ConcurrencyWaited)] == [
        ("ConcurrencyWaited", "caller")
    ]
    complete(feed, "r1", "ci.deploy/migrate")
    assert queued(complete(feed, "r1", "ci.deploy/release")) == [("r2", "ci.deploy/migrate")]
