"""Events that change nothing: of a run never requested, repeated, or about an attempt already past. Each leaves
the runs as they were, decides nothing and says so in the log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conveyor_events import (
    Conclusion,
    Envelope,
    Event,
    JobCompleted,
    JobPlanned,
    JobStarted,
    RunPlanned,
    RunRequested,
)
from conveyor_runtime import SqliteEventLog
from conveyor_scheduler import Scheduler

RUN = "run-1"
_LOGGER = "conveyor_scheduler.handlers"


def _opening() -> list[Event]:
    return [
        RunRequested(run_id=RUN, repository="o/r", ref="refs/heads/main", sha="a" * 40),
        JobPlanned(run_id=RUN, job_id="ci.a", workflow="ci.yml", job_key="a", name="a", runs_on=["x"]),
        RunPlanned(run_id=RUN, workflow="ci.yml", workflow_name="CI", index=1, count=1, jobs=["ci.a"]),
    ]


async def _handled(log: SqliteEventLog, scheduler: Scheduler, event: Event) -> list[Event]:
    [stored] = await log.append([Envelope.wrap(event, stream=event.run_id)])  # type: ignore[attr-defined]
    decided = list(await scheduler.on_event(stored))
    if decided:
        await log.append(decided)
    return [envelope.event for envelope in decided]


async def test_an_event_of_a_run_never_requested_changes_nothing_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with SqliteEventLog(tmp_path / "log.db") as log:
        scheduler = Scheduler(log)
        with caplog.at_level(logging.INFO, logger=_LOGGER):
            decided = await _handled(log, scheduler, JobStarted(run_id="run-x", job_id="ci.a", runner_id="r1"))

    assert decided == []
    assert "run-x" not in scheduler.state.runs
    [record] = [record for record in caplog.records if record.name == _LOGGER]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("ignored JobStarted ")
    assert "of run run-x, job ci.a attempt 1: no run of that id was requested" in record.getMessage()


async def test_a_repeated_plan_and_a_report_on_a_past_attempt_change_nothing_and_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with SqliteEventLog(tmp_path / "log.db") as log:
        scheduler = Scheduler(log)
        for event in _opening():
            await _handled(log, scheduler, event)
        await _handled(log, scheduler, JobStarted(run_id=RUN, job_id="ci.a", runner_id="r1"))
        held = scheduler.state.runs[RUN]
        with caplog.at_level(logging.INFO, logger=_LOGGER):
            repeated = await _handled(log, scheduler, _opening()[1])
            stale = await _handled(
                log, scheduler, JobCompleted(run_id=RUN, job_id="ci.a", attempt=2, conclusion=Conclusion.FAILURE)
            )

    assert repeated == []
    assert stale == []
    assert scheduler.state.runs[RUN] is held
    messages = [record.getMessage() for record in caplog.records if record.name == _LOGGER]
    assert len(messages) == 2
    assert messages[0].startswith("ignored JobPlanned ")
    assert messages[1].startswith("ignored JobCompleted ")
    assert "job ci.a attempt 2: it changes nothing" in messages[1]


async def test_an_event_that_changes_a_run_is_not_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with SqliteEventLog(tmp_path / "log.db") as log:
        scheduler = Scheduler(log)
        with caplog.at_level(logging.INFO, logger=_LOGGER):
            for event in _opening():
                await _handled(log, scheduler, event)
            await _handled(log, scheduler, JobStarted(run_id=RUN, job_id="ci.a", runner_id="r1"))

    assert [record for record in caplog.records if record.name == _LOGGER] == []
