"""Commit statuses end to end: every service in one process, a run of a GitHub commit, a fake GitHub API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conveyor_cli.main import app
from conveyor_cli.system import EmbeddedSystem
from conveyor_events import Envelope, NotificationFailed, RunCompleted, RunRequested
from conveyor_ingest import request_run
from conveyor_ingest.adapters import resolve_ref
from conveyor_runtime import RuntimeSettings
from pydantic import SecretStr
from typer.testing import CliRunner

if TYPE_CHECKING:
    from tests.fakes.github_api import FakeGitHub

pytestmark = pytest.mark.e2e

TOKEN = "ghp_e2e_token"
PUBLIC = "http://conveyor.example:8080"
WEBHOOK = {"repository": {"full_name": "octo/hello", "name": "hello"}}
TWO_JOBS = """
name: CI
on: push
jobs:
  passing:
    name: Passes
    runs-on: x
    steps:
      - run: echo fine
  failing:
    runs-on: x
    steps:
      - run: exit 1
"""
ONE_JOB = """
name: CI
on: push
jobs:
  build:
    runs-on: x
    steps:
      - run: echo fine
"""


def settings_for(github: FakeGitHub, data: Path) -> RuntimeSettings:
    return RuntimeSettings(data_dir=data, github_api_url=github.url, github_token=SecretStr(TOKEN), public_url=PUBLIC)


async def run_to_the_end(system: EmbeddedSystem, request: RunRequested) -> RunCompleted:
    """Append the request, as ingest does for a webhook delivery, and wait for the run to complete."""
    start = await system.log.head()
    await system.log.append([Envelope.wrap(request, stream=request.run_id)])
    async with asyncio.timeout(30):
        async for envelope in system.log.subscribe(start, types=[RunCompleted.event_type()]):
            if isinstance(envelope.event, RunCompleted) and envelope.stream == request.run_id:
                return envelope.event
    raise AssertionError("the log ended")


def states(github: FakeGitHub, context: str) -> list[tuple[str, str]]:
    return [(call.body["state"], call.body["description"]) for call in github.statuses()
            if call.body["context"] == context]


def finished(github: FakeGitHub, contexts: list[str]) -> bool:
    return all(states(github, context)[-1:] and states(github, context)[-1][0] != "pending" for context in contexts)


async def test_each_job_of_a_run_of_a_github_commit_shows_pending_then_its_result(
    repository: Callable[..., Path], fake_github: FakeGitHub, tmp_path: Path
) -> None:
    root = repository({".github/workflows/ci.yml": TWO_JOBS})
    ref, sha = resolve_ref(root, "HEAD")
    passing, failing = "Conveyor / CI / Passes", "Conveyor / CI / failing"
    system = EmbeddedSystem(settings_for(fake_github, tmp_path / "data"))
    async with system.running():
        request = request_run(repository=str(root), ref=ref, sha=sha, payload=WEBHOOK)
        completed = await run_to_the_end(system, request)
        await fake_github.wait_for(lambda github: finished(github, [passing, failing]))
        failures = await system.log.read_stream(request.run_id, types=[NotificationFailed.event_type()])

    assert completed.conclusion == "failure"
    for context, final in [(passing, ("success", "Succeeded")), (failing, ("failure", "Failed"))]:
        shown = states(fake_github, context)
        assert shown[0] == ("pending", "Queued")
        assert shown[-1] == final
        assert set(shown[1:-1]) <= {("pending", "In progress")}
    calls = fake_github.recorded()
    assert {call.body["context"] for call in calls} == {passing, failing}
    for call in calls:
        assert (call.method, call.path) == ("POST", f"/repos/octo/hello/statuses/{sha}")
        assert call.body["target_url"] == f"{PUBLIC}/api/runs/{request.run_id}"
        assert call.headers["authorization"] == f"Bearer {TOKEN}"
        assert call.headers["accept"] == "application/vnd.github+json"
        assert call.headers["x-github-api-version"] == "2022-11-28"
    assert failures == []


async def test_a_github_that_always_fails_costs_the_run_nothing_and_the_failure_is_in_the_log(
    repository: Callable[..., Path], fake_github: FakeGitHub, tmp_path: Path
) -> None:
    fake_github.fail_next(1_000_000, 500, message="Server Error")
    root = repository({".github/workflows/ci.yml": ONE_JOB})
    ref, sha = resolve_ref(root, "HEAD")
    system = EmbeddedSystem(settings_for(fake_github, tmp_path / "data"))
    async with system.running():
        request = request_run(repository=str(root), ref=ref, sha=sha, payload=WEBHOOK)
        completed = await run_to_the_end(system, request)
        async with asyncio.timeout(15):  # the last status is tried 4 times, 3.5 s of backoff in all
            while not any(failed.reason.startswith("success") for failed in await failures_of(system, request.run_id)):
                await asyncio.sleep(0.05)
        failures = await failures_of(system, request.run_id)

    assert completed.conclusion == "success"
    final = [failed for failed in failures if failed.reason.startswith("success")]
    assert [(failed.target, failed.context, failed.attempts) for failed in final] == [
        ("github-status", "Conveyor / CI / build", 4)
    ]
    assert final[0].reason == f"success on octo/hello@{sha[:12]}: HTTP 500: Server Error"
    calls = fake_github.recorded()
    assert len(calls) >= 4
    assert {call.answered for call in calls} == {500}


async def failures_of(system: EmbeddedSystem, run_id: str) -> list[NotificationFailed]:
    stored = await system.log.read_stream(run_id, types=[NotificationFailed.event_type()])
    return [envelope.event for envelope in stored if isinstance(envelope.event, NotificationFailed)]


async def test_conveyor_run_of_a_working_tree_reports_nothing_to_github(
    repository: Callable[..., Path], fake_github: FakeGitHub, tmp_path: Path
) -> None:
    root = repository({".github/workflows/ci.yml": TWO_JOBS})
    event = tmp_path / "push.json"
    event.write_text(json.dumps(WEBHOOK))
    data = tmp_path / "data"
    env = {"CONVEYOR_GITHUB_TOKEN": TOKEN, "CONVEYOR_GITHUB_API_URL": fake_github.url}

    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["run", "-C", str(root), "-e", str(event), "--data-dir", str(data)], env=env
    )
    assert result.exit_code == 1, result.output
    # The same settings again, with only the notifier: it reads every event of the run, and reports none of them.
    system = EmbeddedSystem(settings_for(fake_github, data), services=["notifier"])
    async with system.running():
        [end] = await system.log.read(types=[RunCompleted.event_type()])
        async with asyncio.timeout(10):
            while await system.log.checkpoint("notifier") < end.position:
                await asyncio.sleep(0.02)

    assert fake_github.recorded() == []


