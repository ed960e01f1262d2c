"""`POST /webhooks/github` over a real log and read models: what is accepted, refused, and appended."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from conveyor_events import RunRequested
from conveyor_ingest import LocalKeyWrapper, Queries, create_app, issue_token, run_id_for
from conveyor_runtime import SqliteEventLog, SqliteProjections, project

KEY = bytes(range(32))
SECRET = "It's a Secret to Everybody"
MB = 1024 * 1024


@dataclass
class Edge:
    http: httpx.AsyncClient
    log: SqliteEventLog
    store: SqliteProjections
    clone: Path
    sha: str

    async def register(self, name: str, **fields: Any) -> httpx.Response:
        response = await self.http.post("/api/repositories", json={"name": name, "url": str(self.clone), **fields})
        assert response.status_code == 201, response.text
        return response

    async def runs_requested(self) -> list[RunRequested]:
        return [e.event for e in await self.log.read(0, types=["RunRequested"])]  # type: ignore[misc]


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=T", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    clone = tmp_path / "clone"
    clone.mkdir()
    git(clone, "init", "-q", "-b", "main")
    git(clone, "commit", "-q", "--allow-empty", "-m", "initial")
    log = SqliteEventLog(tmp_path / "events.db")
    store = SqliteProjections(tmp_path / "projections.db")
    await log.open()
    projector = asyncio.create_task(project(log, store))
    app = create_app(log, Queries(store), LocalKeyWrapper(KEY))
    admin = await issue_token(log, "admin", {"*": "admin"})
    assert admin is not None
    headers = {"Authorization": f"Bearer {admin[0]}"}
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://conveyor", headers=headers
        ) as http:
            yield Edge(http, log, store, clone, git(clone, "rev-parse", "HEAD"))
    finally:
        projector.cancel()
        await asyncio.gather(projector, return_exceptions=True)
        await log.close()


def push(sha: str, *, full_name: str = "octo/app", **more: Any) -> dict[str, Any]:
    return {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": sha,
        "repository": {"full_name": full_name, "default_branch": "main"},
        "sender": {"login": "mona"},
        **more,
    }


def deliver(
    http: httpx.AsyncClient,
    payload: dict[str, Any] | bytes,
    *,
    event: str = "push",
    delivery: str = "d-1",
    secret: str | None = SECRET,
    headers: dict[str, str] | None = None,
) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": "application/json"}
    if secret is not None:
        sent["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return http.post("/webhooks/github", content=body, headers={**sent, **(headers or {})})


async def test_a_signed_push_requests_its_run_with_the_payload_as_sent(edge: Edge) -> None:
    await edge.register("app", github="octo/app", webhook_secret=SECRET)
    payload = push(edge.sha, head_commit={"message": "fix"}, extra={"kept": True})

    response = await deliver(edge.http, payload, delivery="72d3162e")

    assert response.status_code == 202, response.text
    assert response.json() == {"id": run_id_for("app", "72d3162e"), "duplicate": False}
    [requested] = await edge.runs_requested()
    assert (requested.run_id, requested.repository, requested.ref, requested.sha) == (
        run_id_for("app", "72d3162e"),
        str(edge.clone),
        "refs/heads/main",
        edge.sha,
    )
    assert (requested.event_name, requested.actor, requested.delivery_id, requested.fork) == (
        "push",
        "mona",
        "72d3162e",
        False,
    )
    assert requested.payload == payload


async def test_a_redelivery_returns_the_stored_run(edge: Edge) -> None:
    await edge.register("octo/app", webhook_secret=SECRET)  # the name is the GitHub name
    first = await deliver(edge.http, push(edge.sha))
    again = await deliver(edge.http, push(edge.sha))
    assert first.json()["id"] == again.json()["id"]
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert len(await edge.runs_requested()) == 1


async def test_events_without_a_commit_run_at_the_ref_resolved_in_the_clone(edge: Edge) -> None:
    await edge.register("app", github="octo/app", webhook_secret=SECRET)
    payload = {"action": "opened", "issue": {"number": 3}, **push("")}
    response = await deliver(edge.http, payload, event="issues")
    assert response.status_code == 202, response.text
    [requested] = await edge.runs_requested()
    assert (requested.ref, requested.sha, requested.event_name) == ("refs/heads/main", edge.sha, "issues")


async def test_a_commit_missing_from_the_clone_is_accepted_for_the_planner_to_report(edge: Edge) -> None:
    await edge.register("app", github="octo/app", webhook_secret=SECRET)
    assert (await deliver(edge.http, push("f" * 40))).status_code == 202
    release = {"action": "published", "release": {"tag_name": "v9"}, **push("")}
    assert (await deliver(edge.http, release, event="release", delivery="d-2")).status_code == 202
    assert [(r.ref, r.sha) for r in await edge.runs_requested()] == [
        ("refs/heads/main", "f" * 40),
        ("refs/tags/v9", "refs/tags/v9"),
    ]


async def test_ping_answers_with_its_zen_and_appends_nothing(edge: Edge) -> None:
    await edge.register("app", github="octo/app", webhook_secret=SECRET)
    head = await edge.log.head()
    ping = {"zen": "Design for failure.", "hook_id": 1, "repository": {"full_name": "octo/app"}}
    response = await deliver(edge.http, ping, event="ping")
    assert (response.status_code, response.json()) == (200, {"ok": True, "zen": "Design for failure."})
    assert await edge.log.head() == head


async def test_a_push_that_deletes_a_branch_is_ignored(edge: Edge) -> None:
    await edge.register("app", github="octo/app", webhook_secret=SECRET)
    head = await edge.log.head()
    response = await deliver(edge.http, push("0" * 40, deleted=True))
    assert response.status_code == 200
    assert "refs/heads/main" in response.json()["ignored"]
    assert await edge.log.head() == head


@pytest.mark.parametrize(
    ("case", "secret", "headers", "full_name"),
    [
        ("no signature", None, {}, "octo/app"),
        ("only the SHA-1 signature", None, {"X-Hub-Signature": "sha1=0123456789abcdef"}, "octo/app"),
        ("a wrong signature", "not the secret", {}, "octo/app"),
        ("an unknown repository", SECRET, {}, "octo/unknown"),
        ("a repository without a secret", SECRET, {}, "octo/open"),
        ("a repository with an empty secret, signed with it", "", {}, "octo/empty"),
    ],
)
async def test_unverified_deliveries_are_401_and_append_nothing(
    edge: Edge, case: str, secret: str | None, headers: dict[str, str], full_name: str
) -> None:
    await edge.register("app", github="octo/app", webhook_secret=SECRET)
    await edge.register("open", github="octo/open")
    await edge.register("empty", github="octo/empty", webhook_secret="")
    head = await edge.log.head()

    response = await deliver(edge.http, push(edge.sha, full_name=full_name), secret=secret, headers=headers)

    assert response.status_code == 401, case
    assert "X-Hub-Signature-256" in response.json()["detail"]
    assert await edge.log.head() == head


async def test_a_body_over_25_mb_is_413_by_its_length_or_while_read(edge: Edge) -> None:
    await edge.register("app", github="octo/app", webhook_secret=SECRET)
    head = await edge.log.head()
    declared = await deliver(edge.http, b"{}", headers={"Content-Length": str(25 * MB + 1)})
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # sent without a length
        for _ in range(26):
            yield b" " * MB

    streamed = await edge.http.post("/webhooks/github", content=chunks(), headers={"X-GitHub-Event": "push"})
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    assert await edge.log.head() == head


@pytest.mark.parametrize(
    ("body", "event", "says"),
    [
        (b'{"ref": "refs/heads/main",', "push", "not valid JSON"),
        (b"[1, 2]", "push", "must be a JSON object"),
        (None, "star", "unsupported event 'star'"),
        (None, "", "no X-GitHub-Event header"),
    ],
)
async def test_bad_deliveries_are_400_saying_what_is_wrong(
    edge: Edge, body: bytes | None, event: str, says: str
) -> None:
    await edge.register("app", github="octo/app", webhook_secret=SECRET)
    head = await edge.log.head()
    response = await deliver(edge.http, body or push(edge.sha), event=event)
    assert response.status_code == 400
    assert says in response.json()["detail"]
    assert await edge.log.head() == head


async def test_a_payload_missing_a_field_its_event_needs_is_400_naming_it(edge: Edge) -> None:
    await edge.register("app", github="octo/app", webhook_secret=SECRET)
    payload = {"action": "opened", "repository": {"full_name": "octo/app"}, "pull_request": {"number": 1}}
    response = await deliver(edge.http, payload, event="pull_request")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("pull_request payload: pull_request.head")


async def test_a_form_encoded_delivery_is_read_from_its_payload_field(edge: Edge) -> None:
    await edge.register("app", github="octo/app", webhook_secret=SECRET)
    body = urlencode({"payload": json.dumps(push(edge.sha))}).encode()
    response = await deliver(edge.http, body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 202, response.text


async def test_the_api_shows_whether_a_repository_has_secrets_never_them(edge: Edge) -> None:
    registered = await edge.register("octo/app", webhook_secret=SECRET, token="ghp_tokenvalue")
    listed = await edge.http.get("/api/repositories")
    expected = {
        "name": "octo/app",
        "url": str(edge.clone),
        "default_branch": "main",
        "github": "octo/app",
        "has_webhook_secret": True,
        "has_token": True,
    }
    assert registered.json() == expected
    assert listed.json() == [expected]
    row = (await Queries(edge.store).github_repositories("OCTO/APP"))[0]
    assert SECRET not in json.dumps(row)
    assert "ghp_tokenvalue" not in json.dumps(row)
    assert json.loads(row["token"])["key_id"] == LocalKeyWrapper(KEY).key_id


async def test_a_server_with_another_key_cannot_check_deliveries_and_says_so(edge: Edge) -> None:
    await edge.register("app", github="octo/app", webhook_secret=SECRET)
    head = await edge.log.head()
    app = create_app(edge.log, Queries(edge.store), LocalKeyWrapper(bytes(32)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://conveyor") as http:
        response = await deliver(http, push(edge.sha))
    assert response.status_code == 500
    assert "webhook secret cannot be opened" in response.json()["detail"]
    assert SECRET not in response.text
    assert await edge.log.head() == head
