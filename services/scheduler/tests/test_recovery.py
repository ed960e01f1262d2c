"""A restarted scheduler takes up the runs it left open: the clock decides for them with no event of theirs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from conveyor_events import (
    Envelope,
    JobAssigned,
    JobLost,
    JobPlanned,
    JobQueued,
    RunCompleted,
    RunEvent,
    RunPlanned,
    RunRequested,
)
from conveyor_runtime import Checkpoint, SqliteEventLog
from conveyor_scheduler import create_scheduler

WORKFLOW = ".github/workflows/ci.yml"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def run(run_id: str, *, assigned: bool) -> list[RunEvent]:
    events: list[RunEvent] = [
        RunRequested(run_id=run_id, repository="/repo", ref="refs/heads/main", sha="a" * 40),
        JobPlanned(run_id=run_id, job_id="ci.build", workflow=WORKFLOW, job_key="build", name="build", runs_on=["x"]),
        RunPlanned(run_id=run_id, workflow=WORKFLOW, workflow_name="CI", index=1, count=1, jobs=["ci.build"]),
        JobQueued(run_id=run_id, job_id="ci.build", labels=["x"]),
    ]
    if assigned:
        events.append(JobAssigned(run_id=run_id, job_id="ci.build", runner_id="gone", lease_id=f"lease-{run_id}"))
    return events


async def write(log: SqliteEventLog, events: list[RunEvent]) -> int:
    """Append each event as if the scheduler had seen it: its checkpoint moves with the log."""
    position = 0
    for number, event in enumerate(events):
        envelope = Envelope.wrap(event, stream=event.run_id, occurred_at=T0 + timedelta(seconds=number))
        [stored] = await log.append([envelope])
        position = stored.position
    await log.append([], checkpoint=Checkpoint("scheduler", position))
    return position


async def test_a_lease_held_by_a_runner_that_died_expires_after_a_restart(tmp_path: Path) -> None:
    async with SqliteEventLog(tmp_path / "events.db") as log:
        done = [*run("run-done", assigned=False), RunCompleted(run_id="run-done", conclusion="success")]
        await write(log, [*done, *run("run-held", assigned=True)])
        later = T0 + timedelta(minutes=10)

        forgetful = create_scheduler(log, lease_period=timedelta(minutes=2))
        assert forgetful.tick(later) == []  # what a scheduler restarted without taking up its runs sees

        restarted = create_scheduler(log, lease_period=timedelta(minutes=2))
        assert await restarted.recover() == 1
        decided = [envelope.event for envelope in restarted.tick(later)]

    [lost] = [event for event in decided if isinstance(event, JobLost)]
    assert (lost.run_id, lost.job_id, lost.lease_id) == ("run-held", "ci.build", "lease-run-held")
    assert "run-done" not in restarted.state.runs  # a run that ended is not taken up


async def test_a_scheduler_that_saved_nothing_has_nothing_to_take_up(tmp_path: Path) -> None:
    async with SqliteEventLog(tmp_path / "events.db") as log:
        for event in run("run-new", assigned=True):
            await log.append([Envelope.wrap(event, stream="run-new")])
        scheduler = create_scheduler(log)

        assert await scheduler.recover() == 0
        assert "run-new" not in scheduler.state.runs  # its events are still to come through the consumer
