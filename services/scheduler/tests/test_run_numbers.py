"""`github.run_number`: each workflow of a repository counts its runs from 1; a re-run keeps its number."""

from __future__ import annotations

from pathlib import Path

from conveyor_events import (
    Conclusion,
    Envelope,
    Event,
    JobCompleted,
    JobPlanned,
    JobQueued,
    RunEvent,
    RunNumbered,
    RunPlanned,
    RunRequested,
    RunRerunRequested,
)
from conveyor_runtime import Checkpoint, SqliteEventLog
from conveyor_scheduler import create_scheduler

from services.scheduler.tests.feeding import Feed


def opened(run_id: str, *workflows: str, repository: str = "/repo", condition: str | None = None) -> list[RunEvent]:
    """A run of the repository with one job (`build`) in each of the workflows."""
    events: list[RunEvent] = [RunRequested(run_id=run_id, repository=repository, ref="refs/heads/main", sha="a" * 40)]
    for index, workflow in enumerate(workflows, start=1):
        job_id = f"{workflow}.build"
        events.append(JobPlanned(run_id=run_id, job_id=job_id, workflow=workflow, job_key="build", name="build",
                                 runs_on=["x"], condition=condition))
        events.append(RunPlanned(run_id=run_id, workflow=workflow, workflow_name=workflow.upper(), index=index,
                                 count=len(workflows), jobs=[job_id]))
    return events


def numbers(decided: list[RunEvent]) -> list[tuple[str, str, int]]:
    return [(e.repository, e.workflow, e.number) for e in decided if isinstance(e, RunNumbered)]


def test_each_workflow_of_each_repository_counts_its_runs_from_one() -> None:
    feed = Feed()
    first = feed.feed(*opened("r1", "ci", "lint"))
    second = feed.feed(*opened("r2", "ci"))
    other = feed.feed(*opened("r3", "ci", repository="/elsewhere"))
    third = feed.feed(*opened("r4", "lint", "ci"))

    assert numbers(first) == [("/repo", "ci", 1), ("/repo", "lint", 1)]
    assert numbers(second) == [("/repo", "ci", 2)]
    assert numbers(other) == [("/elsewhere", "ci", 1)]
    assert numbers(third) == [("/repo", "lint", 2), ("/repo", "ci", 3)]
    queued = {(e.run_id, e.job_id): e.run_number for e in feed.decided if isinstance(e, JobQueued)}
    assert queued == {("r1", "ci.build"): 1, ("r1", "lint.build"): 1, ("r2", "ci.build"): 2,
                      ("r3", "ci.build"): 1, ("r4", "lint.build"): 2, ("r4", "ci.build"): 3}


def test_the_number_is_given_before_any_job_and_read_by_job_conditions() -> None:
    feed = Feed()
    feed.feed(*opened("r1", "ci", condition="github.run_number == 2"))
    decided = feed.feed(*opened("r2", "ci", condition="github.run_number == 2"))

    assert [type(e).__name__ for e in decided] == ["RunNumbered", "JobQueued"]
    assert [(type(e).__name__, e.run_id) for e in feed.decided[:2]] == [("RunNumbered", "r1"), ("JobSkipped", "r1")]


def test_a_re_run_keeps_the_number_and_a_redelivered_plan_takes_none() -> None:
    feed = Feed("r1")
    events = opened("r1", "ci")
    feed.feed(*events)
    assert feed.feed(events[-1]) == []  # the same RunPlanned again
    feed.feed(JobCompleted(run_id="r1", job_id="ci.build", conclusion=Conclusion.FAILURE))
    feed.feed(*opened("r2", "ci"))

    decided = feed.feed(RunRerunRequested(run_id="r1", mode="failed"))

    assert numbers(decided) == []
    [queued] = [e for e in decided if isinstance(e, JobQueued)]
    assert (queued.attempt, queued.run_number) == (2, 1)
    assert feed.state.run("r1").workflows["ci"].name == "CI"  # what github.workflow reads, kept too
    assert numbers(feed.feed(*opened("r3", "ci"))) == [("/repo", "ci", 3)]


async def test_a_restarted_scheduler_goes_on_counting(tmp_path: Path) -> None:
    async with SqliteEventLog(tmp_path / "events.db") as log:
        before = create_scheduler(log)
        for run_id in ("r1", "r2"):
            for event in opened(run_id, "ci"):
                [stored] = await log.append([Envelope.wrap(event, stream=run_id)])
                made = await before.on_event(stored)
                # as the consumer does: the decisions land after the position saved with them
                await log.append(list(made), checkpoint=Checkpoint("scheduler", stored.position))

        restarted = create_scheduler(log)
        await restarted.recover()
        decided: list[Event] = []
        for event in opened("r3", "ci"):
            [stored] = await log.append([Envelope.wrap(event, stream="r3")])
            decided.extend(envelope.event for envelope in await restarted.on_event(stored))

    assert [(e.workflow, e.number) for e in decided if isinstance(e, RunNumbered)] == [("ci", 3)]
    # both still open: taken up with their numbers, r2's decided after the checkpoint included
    assert [restarted.state.run(run_id).workflows["ci"].number for run_id in ("r1", "r2")] == [1, 2]


def titled(run_id: str, *, run_name: str | None = None, event_name: str = "push", **payload: object) -> list[RunEvent]:
    request = RunRequested(run_id=run_id, repository="/repo", ref="refs/heads/main", sha="a" * 40,
                           event_name=event_name, payload=dict(payload), inputs={"target": "prod"})
    job = JobPlanned(run_id=run_id, job_id="ci.build", workflow="ci", job_key="build", name="build", runs_on=["x"])
    planned = RunPlanned(run_id=run_id, workflow="ci", workflow_name="CI", index=1, count=1, jobs=["ci.build"],
                         run_name=run_name)
    return [request, job, planned]


def test_a_runs_title_is_its_run_name_else_what_its_event_says_else_the_workflows_name() -> None:
    feed = Feed()
    run_name = "Deploy ${{ inputs.target }} #${{ github.run_number }}"

    def title(events: list[RunEvent]) -> str:
        [numbered] = [e for e in feed.feed(*events) if isinstance(e, RunNumbered)]
        return numbered.title

    assert title(titled("r1", run_name=run_name)) == "Deploy prod #1"
    assert title(titled("r2", run_name="  ", head_commit={"message": "Fix the build\n\nLong story."})) == (
        "Fix the build"
    )
    assert title(titled("r3", event_name="pull_request", pull_request={"title": "Add a feature"})) == "Add a feature"
    assert title(titled("r4", run_name="${{ github.nope.deeper }}")) == "CI"
    assert title(titled("r5", event_name="workflow_dispatch")) == "CI"
