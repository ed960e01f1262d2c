"""Repositories registered by clone URL in ingest: dispatches read their workflow files from the commit fetched
into a cache, the schedules read their default branch, and each URL's token comes from its registration."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from conveyor_events import Envelope, RepositoryRegistered
from conveyor_ingest import (
    REPOSITORIES_STREAM,
    LocalKeyWrapper,
    Queries,
    RepositoryTokens,
    create_app,
    issue_token,
    register_repository,
    seal_for,
)
from conveyor_ingest.dispatch import DispatchRefused, dispatched_run
from conveyor_ingest.schedules import _read_head
from conveyor_runtime import GitRemotes, SqliteEventLog, SqliteProjections

KEYS = LocalKeyWrapper(bytes(range(32)))

NIGHTLY = """
on:
  workflow_dispatch:
    inputs:
      level: {type: choice, options: [low, high], default: low}
  schedule:
    - cron: "0 3 * * *"
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ inputs.level }}
"""


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=T", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    root = tmp_path / "origin"
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "nightly.yml").write_text(NIGHTLY)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


async def test_a_workflow_dispatch_reads_the_workflow_at_the_commit_fetched_from_the_url(
    origin: Path, tmp_path: Path
) -> None:
    remotes = GitRemotes(tmp_path / "cache")
    repository = {"url": origin.as_uri(), "default_branch": "main"}
    request = await dispatched_run(
        repository, event="workflow_dispatch", workflow="nightly.yml", inputs={"level": "high"}, remotes=remotes
    )
    assert (request.repository, request.ref, request.sha) == (
        origin.as_uri(),
        "refs/heads/main",
        git(origin, "rev-parse", "HEAD"),
    )
    assert request.inputs == {"level": "high"}
    assert list((tmp_path / "cache").glob("*.git"))


async def test_a_dispatch_of_a_url_without_a_cache_is_refused_naming_the_url(origin: Path) -> None:
    repository = {"url": origin.as_uri(), "default_branch": "main"}
    with pytest.raises(DispatchRefused, match="needs a cache directory"):
        await dispatched_run(repository, event="workflow_dispatch", workflow="nightly.yml")


def test_the_schedules_of_a_url_are_read_from_its_default_branch(origin: Path, tmp_path: Path) -> None:
    registration = register_repository("app", origin.as_uri(), "main")
    head = _read_head(registration, None, GitRemotes(tmp_path / "cache"))
    assert (head.ref, head.sha) == ("refs/heads/main", git(origin, "rev-parse", "HEAD"))
    assert head.schedules == ((".github/workflows/nightly.yml", "0 3 * * *"),)


async def test_a_url_gets_the_token_of_its_latest_registration(tmp_path: Path) -> None:
    def registered(name: str, url: str, token: str | None) -> RepositoryRegistered:
        return register_repository(name, url, "main", token=seal_for(name, "token", token, KEYS))

    async with SqliteEventLog(tmp_path / "events.db") as log:
        events = [
            registered("a", "https://git.example/a.git", "first"),
            registered("b", "https://git.example/b.git", "other"),
            registered("a", "https://git.example/a.git", "second"),
            registered("c", "https://git.example/c.git", None),
        ]
        await log.append([Envelope.wrap(event, stream=REPOSITORIES_STREAM) for event in events])
        tokens = RepositoryTokens(log, KEYS)
        try:
            assert await tokens.for_url("https://git.example/a.git") == "second"
            assert await tokens.for_url("https://git.example/b.git") == "other"
            assert await tokens.for_url("https://git.example/c.git") is None
            assert await tokens.for_url("https://git.example/unknown.git") is None
        finally:
            await tokens.aclose()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The API over an empty log (no projector: a refused registration appends nothing), with an admin token."""
    async with SqliteEventLog(tmp_path / "events.db") as log:
        app = create_app(log, Queries(SqliteProjections(tmp_path / "projections.db")), KEYS)
        issued = await issue_token(log, "admin", {"*": "admin"})
        assert issued is not None
        headers = {"Authorization": f"Bearer {issued[0]}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://conveyor", headers=headers) as http:
            yield http


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("https://x-access-token:ghs_abc@git.example/o/r.git", "carries no password or token"),
        ("file:///nowhere/at/all.git", "'file:///nowhere/at/all.git' cannot be read: file:///nowhere/at/all.git: "),
    ],
)
async def test_a_clone_url_with_a_secret_in_it_or_that_cannot_be_read_is_refused(
    api: httpx.AsyncClient, url: str, said: str
) -> None:
    response = await api.post("/api/repositories", json={"name": "app", "url": url})
    assert response.status_code == 422
    assert said in response.json()["detail"]
    assert "ghs_abc" not in response.text
