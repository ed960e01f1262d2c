"""GitHub webhooks into a running embedded system: signed deliveries become runs, once, and forks get no secrets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import stat
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from conveyor_cli.system import EmbeddedSystem
from conveyor_events import RepositoryRegistered, RunRequested
from conveyor_runtime import RuntimeSettings

from tests.conftest import git
from tests.e2e.conftest import admin_headers

if TYPE_CHECKING:
    from tests.e2e.conftest import Until

pytestmark = pytest.mark.e2e

SECRET = "whsec-7f3a9c1e-not-in-any-file"
TOKEN = "ghp_token-5d2b8e-not-in-any-file"
API_KEY = "hunter2-api-key"

PUSH_WORKFLOW = """
name: CI
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo "pushed ${{ github.ref_name }} at ${{ github.sha }} by ${{ github.actor }} to $GITHUB_REPOSITORY"
"""

PR_WORKFLOW = """
name: PR
on: pull_request
jobs:
  show:
    runs-on: ubuntu-latest
    steps:
      - run: echo "fork=${{ github.event.pull_request.head.repo.full_name }} key=[${{ secrets.API_KEY }}]"
"""


@contextlib.asynccontextmanager
async def serving(
    settings: RuntimeSettings, secrets: Mapping[str, str] | None = None
) -> AsyncIterator[tuple[EmbeddedSystem, httpx.AsyncClient]]:
    system = EmbeddedSystem(settings, secrets=dict(secrets or {}))
    async with system.running():
        transport = httpx.ASGITransport(app=system.api())
        headers = admin_headers(settings)
        async with httpx.AsyncClient(transport=transport, base_url="http://conveyor", headers=headers) as http:
            yield system, http


def deliver(http: httpx.AsyncClient, event: str, payload: dict[str, Any], delivery: str) -> Any:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature}
    return http.post("/webhooks/github", content=body, headers={**headers, "Content-Type": "application/json"})


def push(sha: str) -> dict[str, Any]:
    return {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": sha,
        "deleted": False,
        "head_commit": {"id": sha, "message": "initial"},
        "repository": {"full_name": "octo/demo", "default_branch": "main"},
        "sender": {"login": "octocat"},
    }


def pull_request(sha: str, head_repository: str) -> dict[str, Any]:
    sides = {
        "head": {"ref": "feature", "sha": sha, "repo": {"full_name": head_repository}},
        "base": {"ref": "main", "sha": sha, "repo": {"full_name": "octo/demo"}},
    }
    return {
        "action": "opened",
        "number": 5,
        "pull_request": {"number": 5, **sides},
        "repository": {"full_name": "octo/demo", "default_branch": "main"},
        "sender": {"login": "stranger"},
    }


async def register(http: httpx.AsyncClient, root: Path) -> None:
    body = {"name": "demo", "url": str(root), "github": "octo/demo", "webhook_secret": SECRET, "token": TOKEN}
    response = await http.post("/api/repositories", json=body)
    assert response.status_code == 201, response.text


async def requested(system: EmbeddedSystem) -> list[RunRequested]:
    return [e.event for e in await system.log.read(0, types=["RunRequested"])]  # type: ignore[misc]


async def log_lines(http: httpx.AsyncClient, run_id: str, job: str) -> list[str]:
    return [line["text"] for line in (await http.get(f"/api/runs/{run_id}/jobs/{job}/logs")).json()["lines"]]


async def test_a_signed_push_runs_the_workflows_of_the_local_clone(
    settings: RuntimeSettings, repository: Callable[..., Path], until: Until
) -> None:
    root = repository({".github/workflows/ci.yml": PUSH_WORKFLOW})
    sha = git(root, "rev-parse", "HEAD")
    async with serving(settings) as (_, http):
        await register(http, root)

        accepted = await deliver(http, "push", push(sha), "delivery-push-1")

        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["id"]
        run = await until(http, run_id, lambda run: run["status"] == "completed")
        assert (run["conclusion"], run["event"], run["ref"], run["sha"], run["actor"]) == (
            "success",
            "push",
            "refs/heads/main",
            sha,
            "octocat",
        )
        # github.repository is the repository's GitHub name, not where Conveyor reads it from
        assert await log_lines(http, run_id, "build") == [f"pushed main at {sha} by octocat to octo/demo"]


DEPLOY = """
on:
  workflow_dispatch:
    inputs:
      dry-run: {type: boolean, default: true}
      count: {type: number}
      target: {type: string, default: staging}
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - run: echo "two=${{ inputs.count == 2 }} target=${{ inputs.target }} event=${{ github.event.inputs.count }}"
      - if: inputs.dry-run
        run: echo "a dry run"
"""
OTHER_DISPATCHABLE = "on: workflow_dispatch\njobs:\n  other:\n    runs-on: x\n    steps:\n      - run: echo other\n"


async def test_a_workflow_dispatch_runs_the_one_workflow_with_typed_inputs(
    settings: RuntimeSettings, repository: Callable[..., Path], until: Until
) -> None:
    root = repository({".github/workflows/deploy.yml": DEPLOY, ".github/workflows/other.yml": OTHER_DISPATCHABLE})
    payload = {
        "ref": "refs/heads/main",
        "workflow": ".github/workflows/deploy.yml",
        "inputs": {"dry-run": "false", "count": "2"},
        "repository": {"full_name": "octo/demo", "default_branch": "main"},
        "sender": {"login": "octocat"},
    }
    async with serving(settings) as (_, http):
        await register(http, root)

        accepted = await deliver(http, "workflow_dispatch", payload, "delivery-dispatch-1")

        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["id"]
        run = await until(http, run_id, lambda run: run["status"] == "completed")
        assert [job["name"] for job in run["jobs"]] == ["deploy"]  # not every workflow_dispatch workflow
        # `inputs` typed and defaulted by the workflow; github.event.inputs as delivered
        assert await log_lines(http, run_id, "deploy") == ["two=true target=staging event=2"]


async def test_a_delivery_that_triggers_no_workflow_is_skipped_not_failed(
    settings: RuntimeSettings, repository: Callable[..., Path], until: Until
) -> None:
    root = repository({".github/workflows/pr.yml": PR_WORKFLOW})
    closed = {**pull_request(git(root, "rev-parse", "HEAD"), "octo/demo"), "action": "closed"}
    async with serving(settings) as (_, http):
        await register(http, root)

        accepted = await deliver(http, "pull_request", closed, "delivery-closed-1")

        assert accepted.status_code == 202, accepted.text
        run = await until(http, accepted.json()["id"], lambda run: run["status"] == "completed")
        assert (run["conclusion"], run["jobs"]) == ("skipped", [])


async def test_concurrent_redeliveries_and_one_after_a_restart_make_one_run(
    settings: RuntimeSettings, repository: Callable[..., Path], until: Until
) -> None:
    root = repository({".github/workflows/ci.yml": PUSH_WORKFLOW})
    payload = push(git(root, "rev-parse", "HEAD"))
    async with serving(settings) as (system, http):
        await register(http, root)

        answers = await asyncio.gather(*(deliver(http, "push", payload, "delivery-42") for _ in range(10)))

        assert {answer.status_code for answer in answers} == {202}
        [run_id] = {answer.json()["id"] for answer in answers}
        assert sorted(answer.json()["duplicate"] for answer in answers) == [False] + [True] * 9
        assert [r.run_id for r in await requested(system)] == [run_id]
        await until(http, run_id, lambda run: run["status"] == "completed")
        assert [run["id"] for run in (await http.get("/api/runs")).json()] == [run_id]

    async with serving(settings) as (system, http):
        again = await deliver(http, "push", payload, "delivery-42")

        assert (again.status_code, again.json()) == (202, {"id": run_id, "duplicate": True})
        assert [r.run_id for r in await requested(system)] == [run_id]
        assert [run["id"] for run in (await http.get("/api/runs")).json()] == [run_id]


async def test_a_pull_request_from_a_fork_runs_without_secrets(
    settings: RuntimeSettings, repository: Callable[..., Path], until: Until
) -> None:
    root = repository({".github/workflows/pr.yml": PR_WORKFLOW})
    sha = git(root, "rev-parse", "HEAD")
    async with serving(settings, secrets={"API_KEY": API_KEY}) as (system, http):
        await register(http, root)

        from_fork = await deliver(http, "pull_request", pull_request(sha, "stranger/demo"), "delivery-fork")
        from_branch = await deliver(http, "pull_request", pull_request(sha, "octo/demo"), "delivery-branch")

        fork_id, branch_id = from_fork.json()["id"], from_branch.json()["id"]
        assert {r.run_id: r.fork for r in await requested(system)} == {fork_id: True, branch_id: False}
        for run_id in (fork_id, branch_id):
            run = await until(http, run_id, lambda run: run["status"] == "completed")
            assert (run["conclusion"], run["ref"]) == ("success", "refs/pull/5/merge")
        assert await log_lines(http, fork_id, "show") == ["fork=stranger/demo key=[]"]
        assert await log_lines(http, branch_id, "show") == ["fork=octo/demo key=[***]"]  # present, and masked


async def test_secrets_are_stored_only_sealed_and_another_key_cannot_open_them(
    settings: RuntimeSettings, repository: Callable[..., Path]
) -> None:
    root = repository({".github/workflows/ci.yml": PUSH_WORKFLOW})
    async with serving(settings) as (system, http):
        await register(http, root)
        [registered] = [e.event for e in await system.log.read_stream("repositories")]
        listed = (await http.get("/api/repositories")).text

    assert isinstance(registered, RepositoryRegistered)
    assert registered.webhook_secret is not None
    assert registered.token is not None
    stored = b"".join(path.read_bytes() for path in settings.data_dir.iterdir() if path.is_file())
    assert b"wrapped_key" in stored  # the sealed form is there...
    for secret in (SECRET, TOKEN):  # ...and the secrets are not, in any file of the data directory
        assert secret.encode() not in stored
        assert base64.b64encode(secret.encode()) not in stored
    assert SECRET not in listed
    assert registered.webhook_secret.ciphertext not in listed
    assert stat.S_IMODE(settings.secret_key_path.stat().st_mode) == 0o600

    other_key = RuntimeSettings(data_dir=settings.data_dir, secret_key=base64.b64encode(bytes(32)).decode())
    async with serving(other_key) as (system, http):
        head = await system.log.head()
        refused = await deliver(http, "push", push(git(root, "rev-parse", "HEAD")), "delivery-other-key")
        assert refused.status_code == 500
        assert "webhook secret cannot be opened" in refused.json()["detail"]
        assert await system.log.head() == head
