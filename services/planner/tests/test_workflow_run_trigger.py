"""The `workflow_run` trigger over a real log with fake repositories: where its requests land, and only once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conveyor_events import (
    Conclusion,
    Envelope,
    JobCompleted,
    JobPlanned,
    RunEvent,
    RunNumbered,
    RunPlanned,
    RunRequested,
)
from conveyor_planner import WorkflowRunTrigger
from conveyor_planner.adapters import Changes, RepositoryError
from conveyor_planner.domain import HISTORY_TYPES
from conveyor_runtime import SqliteEventLog

AFTER_CI = """
on:
  workflow_run: {workflows: [CI], types: [completed]}
jobs:
  report: {runs-on: x, steps: [{run: echo}]}
"""


class FakeSource:
    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.read: list[tuple[str, str]] = []

    def workflow_files(self, request: RunRequested) -> dict[str, str]:
        self.read.append((request.ref, request.sha))
        return self.files

    def changes(self, request: RunRequested) -> Changes:
        return Changes()


class FakeHeads:
    def __init__(self, heads: dict[str, str]) -> None:
        self.heads = heads

    def head(self, repository: str, branch: str) -> str:
        if branch not in self.heads:
            raise RepositoryError(f"{repository}: no branch '{branch}'")
        return self.heads[branch]


def run_events(payload: dict[str, Any]) -> list[RunEvent]:
    request = RunRequested(run_id="run-1", repository="/repo", ref="refs/heads/feature", sha="a" * 40, payload=payload)
    return [
        request,
        JobPlanned(run_id="run-1", job_id="ci.build", workflow=".github/workflows/ci.yml", job_key="build", name="b"),
        RunPlanned(
            run_id="run-1", workflow=".github/workflows/ci.yml", workflow_name="CI", index=1, count=1, jobs=["ci.build"]
        ),
        RunNumbered(run_id="run-1", workflow=".github/workflows/ci.yml", repository="/repo", number=1),
        JobCompleted(run_id="run-1", job_id="ci.build", conclusion=Conclusion.FAILURE),
    ]


async def handle_all(trigger: WorkflowRunTrigger, log: SqliteEventLog, events: list[RunEvent]) -> list[Envelope]:
    stored = [(await log.append([Envelope.wrap(event, stream="run-1")]))[0] for event in events]
    return [produced for envelope in stored for produced in await trigger.on_run_event(envelope)]


async def test_a_listened_for_completion_is_requested_at_the_default_branch_head(tmp_path: Path) -> None:
    source = FakeSource({".github/workflows/after.yml": AFTER_CI})
    async with SqliteEventLog(tmp_path / "log.db") as log:
        trigger = WorkflowRunTrigger(log, source, FakeHeads({"main": "b" * 40}))
        payload = {"repository": {"full_name": "octo/demo", "default_branch": "main"}}

        [produced] = await handle_all(trigger, log, run_events(payload))

    request = produced.event
    assert isinstance(request, RunRequested)
    assert (produced.stream, produced.correlation_id) == (request.run_id, request.run_id)
    assert (request.ref, request.sha, request.payload["action"]) == ("refs/heads/main", "b" * 40, "completed")
    assert request.payload["workflow_run"]["conclusion"] == "failure"
    assert source.read == [("refs/heads/main", "b" * 40)] * 2


async def test_an_event_read_again_or_after_a_restart_requests_nothing_new(tmp_path: Path) -> None:
    source = FakeSource({".github/workflows/after.yml": AFTER_CI})
    async with SqliteEventLog(tmp_path / "log.db") as log:
        trigger = WorkflowRunTrigger(log, source, FakeHeads({}))
        [produced] = await handle_all(trigger, log, run_events({}))
        [last] = await log.read(0, types=["JobCompleted"])

        again = await trigger.on_run_event(last)
        restarted = await WorkflowRunTrigger(log, source, FakeHeads({})).on_run_event(last)

    assert [e.event_id for e in again] == [e.event_id for e in restarted] == [produced.event_id]
    assert isinstance(produced.event, RunRequested)
    assert (produced.event.ref, produced.event.sha) == ("refs/heads/feature", "a" * 40)


async def test_nothing_is_requested_when_no_workflow_listens(tmp_path: Path) -> None:
    async with SqliteEventLog(tmp_path / "log.db") as log:
        trigger = WorkflowRunTrigger(log, FakeSource({"ci.yml": "on: push\njobs: {}\n"}), FakeHeads({}))

        assert await handle_all(trigger, log, run_events({})) == []


def test_the_consumer_reads_every_event_the_history_folds() -> None:
    trigger = WorkflowRunTrigger(None, FakeSource({}), FakeHeads({}))  # type: ignore[arg-type]  # no log read

    assert sorted(trigger.consumer().types) == sorted(HISTORY_TYPES)
