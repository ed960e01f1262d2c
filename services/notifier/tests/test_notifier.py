"""The notifier over a real SQLite log, reporting to a fake GitHub that records what it was sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conveyor_events import (
    Conclusion,
    Envelope,
    Event,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    NotificationFailed,
    RunCompleted,
    RunPlanned,
    RunRequested,
)
from conveyor_github import Sleep
from conveyor_notifier import CONSUMER, Notifier, create_notifier
from conveyor_runtime import SqliteEventLog

if TYPE_CHECKING:
    from tests.fakes.github_api import Call, FakeGitHub

RUN = "run-1"
SHA = "c0ffee" * 6 + "abcd"
WORKFLOW = ".github/workflows/ci.yml"
GITHUB = {"repository": {"full_name": "octo/hello"}}


async def instant(seconds: float) -> None:
    """A sleeper that does not wait: retries and rate limits are the client's tests' business."""
    await asyncio.sleep(0)


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[SqliteEventLog]:
    async with SqliteEventLog(tmp_path / "events.db") as opened:
        yield opened


def planned(payload: dict[str, Any], *, workdir: str | None = None) -> list[Event]:
    return [
        RunRequested(run_id=RUN, repository="/srv/hello", ref="refs/heads/main", sha=SHA, payload=payload,
                     workdir=workdir),
        RunPlanned(run_id=RUN, workflow=WORKFLOW, workflow_name="CI", index=0, count=1, jobs=["build", "test"]),
        JobPlanned(run_id=RUN, job_id="ci.build", workflow=WORKFLOW, job_key="build", name="Build"),
        JobPlanned(run_id=RUN, job_id="ci.test", workflow=WORKFLOW, job_key="test", name="Test"),
    ]


def job(job_id: str, conclusion: Conclusion) -> list[Event]:
    return [
        JobQueued(run_id=RUN, job_id=job_id),
        JobStarted(run_id=RUN, job_id=job_id, runner_id="local"),
        JobCompleted(run_id=RUN, job_id=job_id, conclusion=conclusion),
    ]


async def append(log: SqliteEventLog, events: Sequence[Event]) -> int:
    stored = await log.append([Envelope.wrap(event, stream=RUN) for event in events])
    return stored[-1].position


async def handled(log: SqliteEventLog, position: int) -> None:
    async with asyncio.timeout(5):
        while await log.checkpoint(CONSUMER) < position:
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[Notifier]:
    task = asyncio.create_task(notifier.run())
    try:
        yield notifier
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def notifier_for(log: SqliteEventLog, github: FakeGitHub, *, sleep: Sleep = instant) -> Notifier:
    return create_notifier(
        log, github_api_url=github.url, github_token="ghp_secret", public_url="http://conveyor.example/", sleep=sleep
    )


def taken(github: FakeGitHub, context: str) -> list[tuple[str, str]]:
    return [(call.body["state"], call.body["description"]) for call in github.statuses()
            if call.body["context"] == context]


def sent(github: FakeGitHub, context: str) -> list[Call]:
    return [call for call in github.recorded() if call.body["context"] == context]


async def test_each_job_is_pending_while_queued_and_running_then_shows_its_result(
    log: SqliteEventLog, fake_github: FakeGitHub
) -> None:
    await append(log, planned(GITHUB))
    async with running(notifier_for(log, fake_github)):
        for event in [*job("ci.build", Conclusion.SUCCESS), *job("ci.test", Conclusion.FAILURE)]:
            calls = len(fake_github.recorded())
            await append(log, [event])
            await fake_github.wait_for_calls(calls + 1)

    assert taken(fake_github, "Conveyor / CI / Build") == [
        ("pending", "Queued"), ("pending", "In progress"), ("success", "Succeeded")
    ]
    assert taken(fake_github, "Conveyor / CI / Test") == [
        ("pending", "Queued"), ("pending", "In progress"), ("failure", "Failed")
    ]
    for call in fake_github.recorded():
        assert call.path == f"/repos/octo/hello/statuses/{SHA}"
        assert call.body["target_url"] == f"http://conveyor.example/api/runs/{RUN}"
        assert call.headers["authorization"] == "Bearer ghp_secret"


async def test_a_later_state_is_never_overwritten_by_an_earlier_one(
    log: SqliteEventLog, fake_github: FakeGitHub
) -> None:
    fake_github.fail_next(1, 500, only=lambda body: body["description"] == "Queued")
    queued, *later = job("ci.build", Conclusion.SUCCESS)
    await append(log, [*planned(GITHUB), queued])
    async with running(notifier_for(log, fake_github, sleep=lambda seconds: asyncio.sleep(0.05))):
        await fake_github.wait_for_calls(1)
        await handled(log, await append(log, later))
    # Leaving it let every status in flight end: the failed "Queued" would be tried again after "Succeeded".

    calls = sent(fake_github, "Conveyor / CI / Build")
    assert (calls[0].body["description"], calls[0].answered) == ("Queued", 500)
    assert (calls[-1].body["description"], calls[-1].answered) == ("Succeeded", 201)
    assert ("pending", "Queued") not in taken(fake_github, "Conveyor / CI / Build")


async def test_a_status_github_does_not_take_becomes_a_notification_failed_event(
    log: SqliteEventLog, fake_github: FakeGitHub
) -> None:
    fake_github.fail_next(100, 500, message="Server Error")
    position = await append(log, [*planned(GITHUB), JobSkipped(run_id=RUN, job_id="ci.test", reason="if: false")])
    async with running(notifier_for(log, fake_github)):
        await handled(log, position)
        async with asyncio.timeout(5):
            while not (failed := await log.read_stream(RUN, types=["NotificationFailed"])):
                await asyncio.sleep(0.01)

    [envelope] = failed
    event = envelope.event
    assert isinstance(event, NotificationFailed)
    assert (event.target, event.context, event.attempts) == ("github-status", "Conveyor / CI / Test", 4)
    assert event.reason == f"success on octo/hello@{SHA[:12]}: HTTP 500: Server Error"
    assert envelope.causation_id is not None
    assert len(fake_github.recorded()) == 4


@pytest.mark.parametrize(
    ("payload", "workdir"),
    [({}, None), ({"repository": {"name": "hello"}}, None), (GITHUB, "/home/me/hello")],
    ids=["no-repository", "no-full-name", "working-tree"],
)
async def test_runs_not_of_a_github_commit_report_nothing(
    log: SqliteEventLog, fake_github: FakeGitHub, payload: dict[str, Any], workdir: str | None
) -> None:
    events = [*planned(payload, workdir=workdir), *job("ci.build", Conclusion.SUCCESS),
              RunCompleted(run_id=RUN, conclusion=Conclusion.SUCCESS)]
    position = await append(log, events)
    async with running(notifier_for(log, fake_github)):
        await handled(log, position)

    assert fake_github.recorded() == []


async def test_a_restarted_notifier_finds_the_names_of_a_run_in_progress_in_the_log(
    log: SqliteEventLog, fake_github: FakeGitHub
) -> None:
    position = await append(log, [*planned(GITHUB), JobQueued(run_id=RUN, job_id="ci.build")])
    async with running(notifier_for(log, fake_github)):
        await handled(log, position)
        await fake_github.wait_for(lambda github: len(github.statuses()) == 1)

    await append(log, [JobCompleted(run_id=RUN, job_id="ci.build", conclusion=Conclusion.SUCCESS)])
    async with running(notifier_for(log, fake_github)):
        await fake_github.wait_for(lambda github: len(github.statuses()) == 2)

    assert taken(fake_github, "Conveyor / CI / Build") == [("pending", "Queued"), ("success", "Succeeded")]


def test_without_a_token_the_notifier_follows_only_the_ends_of_runs(tmp_path: Path) -> None:
    notifier = create_notifier(SqliteEventLog(tmp_path / "events.db"), github_token=None)

    assert notifier.consumer().types == ["RunCompleted"]
