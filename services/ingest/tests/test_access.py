"""Access to the API: roles and grants (pure), then every route against every kind of caller over a real log."""

from __future__ import annotations

import asyncio
import hashlib
import re
import stat
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conveyor_events import (
    ACCESS_STREAM,
    AccessRole,
    ApiTokenIssued,
    ApiTokenRevoked,
    Envelope,
    JobPlanned,
    JobQueued,
    RunnerCredentialIssued,
    RunRequested,
)
from conveyor_ingest import LocalKeyWrapper, Queries, create_app, first_admin_token, issue_token
from conveyor_ingest.access import (
    ROLES,
    AccessState,
    evolve,
    includes,
    new_secret,
    role_on,
    secret_hash,
    visible_page,
)
from conveyor_runtime import SqliteEventLog, SqliteProjections, project
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Route

# -- the pure parts ----------------------------------------------------------------------------------------------


def test_each_role_includes_those_below_it_and_none_above() -> None:
    assert ROLES == ("read", "write", "maintain", "admin")
    for held in ROLES:
        assert [includes(held, needed) for needed in ROLES] == [
            ROLES.index(needed) <= ROLES.index(held) for needed in ROLES
        ]


def test_the_role_on_a_repository_is_the_highest_of_its_grant_and_the_grant_on_every_repository() -> None:
    grants: dict[str, AccessRole] = {"*": "read", "app": "maintain", "lib": "read"}

    assert role_on(grants, ["app"]) == "maintain"
    assert role_on(grants, ["lib"]) == "read"
    assert role_on(grants, ["elsewhere"]) == "read"
    assert role_on(grants, []) == "read"
    assert role_on({"app": "write"}, ["lib"]) is None
    assert role_on({"app": "write"}, []) is None
    assert role_on({"app": "write", "lib": "admin"}, ["app", "lib"]) == "admin"


def test_a_secret_is_prefixed_random_and_url_safe_and_only_its_sha256_is_kept() -> None:
    first, second = new_secret(), new_secret("cvr_")

    assert re.fullmatch(r"cvy_[A-Za-z0-9_-]{40}", first)
    assert re.fullmatch(r"cvr_[A-Za-z0-9_-]{40}", second)
    assert first != new_secret()
    assert secret_hash(first) == hashlib.sha256(first.encode()).hexdigest()


def test_the_access_stream_folds_into_tokens_that_open_until_revoked_and_runner_credentials() -> None:
    state = AccessState()
    evolve(state, ApiTokenIssued(token_id="t1", name="ci", token_hash=secret_hash("s1"), grants={"app": "write"}))
    evolve(state, RunnerCredentialIssued(runner_id="r1", credential_hash=secret_hash("c1")))

    token = state.token("s1")
    assert token is not None
    assert (token.id, token.name, dict(token.grants)) == ("t1", "ci", {"app": "write"})
    assert state.token("s2") is None
    assert (state.runner("c1"), state.runner("s1"), state.token("c1")) == ("r1", None, None)

    evolve(state, ApiTokenRevoked(token_id="t1"))
    evolve(state, ApiTokenRevoked(token_id="never-issued"))

    assert state.token("s1") is None
    assert state.tokens["t1"].revoked
    assert "never-issued" not in state.tokens


async def test_a_page_of_what_a_caller_may_see_skips_and_counts_only_visible_rows() -> None:
    rows = [{"n": n} for n in range(23)]

    async def fetch(limit: int, offset: int) -> list[dict[str, Any]]:
        return rows[offset : offset + limit]

    def even(row: dict[str, Any]) -> bool:
        return bool(row["n"] % 2 == 0)

    assert await visible_page(fetch, even, limit=3, offset=2, chunk=4) == [{"n": 4}, {"n": 6}, {"n": 8}]
    assert await visible_page(fetch, even, limit=50, offset=10, chunk=4) == [{"n": 20}, {"n": 22}]
    assert await visible_page(fetch, even, limit=5, offset=20, chunk=4) == []


# -- the API over a real log -------------------------------------------------------------------------------------

KINDS = (
    "no token",
    "bad token",
    "revoked token",
    "read",
    "write",
    "maintain",
    "admin",
    "other repository only",
    "admin on every repository",
    "runner box",
    "runner rival",
)
"""Who calls: a token with that role on `demo`, admin on `other` only, admin on `*`, or a runner's credential."""


@dataclass
class Edge:
    app: FastAPI
    http: httpx.AsyncClient
    log: SqliteEventLog
    store: SqliteProjections
    tmp: Path
    admin: str
    secrets: dict[str, str] = field(default_factory=dict)
    run_id: str = "run-demo"
    other_run_id: str = "run-other"
    runners: dict[str, str] = field(default_factory=dict)

    def as_(self, secret: str | None) -> dict[str, str]:
        return {} if secret is None else {"Authorization": f"Bearer {secret}"}

    async def issue(self, name: str, grants: dict[str, str]) -> tuple[str, str]:
        body = {"name": name, "grants": grants}
        response = await self.http.post("/api/tokens", json=body, headers=self.as_(self.admin))
        assert response.status_code == 201, response.text
        return str(response.json()["token"]), str(response.json()["id"])

    async def settled(self) -> None:
        await Queries(self.store).caught_up(await self.log.head())


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=T", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def clone(at: Path) -> Path:
    at.mkdir()
    git(at, "init", "-q", "-b", "main")
    git(at, "commit", "-q", "--allow-empty", "-m", "initial")
    return at


async def queue_run(log: SqliteEventLog, run_id: str, url: str, labels: tuple[str, ...] = ("gpu",)) -> None:
    """A run of the repository at `url` with one job queued, as the planner and the scheduler would leave it."""
    events = [
        RunRequested(run_id=run_id, repository=url, ref="refs/heads/main", sha="0" * 40),
        JobPlanned(
            run_id=run_id, job_id="build", workflow="ci.yml", job_key="build", name="build", runs_on=list(labels)
        ),
        JobQueued(run_id=run_id, job_id="build", labels=list(labels)),
    ]
    await log.append([Envelope.wrap(event, stream=run_id) for event in events])


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    log = SqliteEventLog(tmp_path / "events.db")
    store = SqliteProjections(tmp_path / "projections.db")
    await log.open()
    projector = asyncio.create_task(project(log, store))
    app = create_app(log, Queries(store), LocalKeyWrapper(bytes(range(32))))
    issued = await issue_token(log, "admin", {"*": "admin"})
    assert issued is not None
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://conveyor") as http:
            edge = Edge(app, http, log, store, tmp_path, admin=issued[0])
            for name in ("demo", "other"):
                registered = await http.post(
                    "/api/repositories",
                    json={"name": name, "url": str(clone(tmp_path / name))},
                    headers=edge.as_(edge.admin),
                )
                assert registered.status_code == 201, registered.text
            await queue_run(log, edge.run_id, str(tmp_path / "demo"))
            await queue_run(log, edge.other_run_id, str(tmp_path / "other"))
            for role in ROLES:
                edge.secrets[role], _ = await edge.issue(role, {"demo": role})
            edge.secrets["other repository only"], _ = await edge.issue("elsewhere", {"other": "admin"})
            edge.secrets["revoked token"], revoked_id = await edge.issue("gone", {"*": "admin"})
            assert (await http.delete(f"/api/tokens/{revoked_id}", headers=edge.as_(edge.admin))).status_code == 204
            for name in ("box", "rival"):
                body = {"name": name, "labels": ["linux"]}
                response = await http.post("/api/runners", json=body, headers=edge.as_(edge.admin))
                assert response.status_code == 201, response.text
                edge.runners[name] = response.json()["id"]
                edge.secrets[f"runner {name}"] = response.json()["credential"]
            await edge.settled()
            yield edge
    finally:
        projector.cancel()
        await asyncio.gather(projector, return_exceptions=True)
        await log.close()


@dataclass(frozen=True)
class Needs:
    """A token with `role` on `repository` passes; one without gets 403 naming both."""

    role: AccessRole
    repository: str = "demo"


class Listed:
    """Any valid token passes (200); what the list shows depends on the token."""


class Runner:
    """Only the credential of the runner in the path passes; API tokens, whatever their role, get 403."""


class Signed:
    """No token is asked for: a GitHub delivery proves itself with its signature."""


class Public:
    """Served to anyone: the API's own description."""


Rule = Needs | Listed | Runner | Signed | Public

RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/openapi.json"): Public(),
    ("GET", "/docs"): Public(),
    ("GET", "/docs/oauth2-redirect"): Public(),
    ("GET", "/redoc"): Public(),
    ("POST", "/webhooks/github"): Signed(),
    ("GET", "/api/runs"): Listed(),
    ("GET", "/api/queue"): Listed(),
    ("GET", "/api/repositories"): Listed(),
    ("GET", "/api/runners"): Listed(),
    ("GET", "/api/runs/{run_id}"): Needs("read"),
    ("GET", "/api/runs/{run_id}/jobs/{job}/logs"): Needs("read"),
    ("POST", "/api/runs"): Needs("write"),
    ("POST", "/api/runs/{run_id}/cancel"): Needs("write"),
    ("POST", "/api/runs/{run_id}/rerun"): Needs("write"),
    ("POST", "/api/runs/{run_id}/jobs/{job}/approve"): Needs("write"),
    ("POST", "/api/runs/{run_id}/jobs/{job}/reject"): Needs("write"),
    ("POST", "/api/repositories"): Needs("admin", "*"),
    ("POST", "/api/runners"): Needs("admin", "*"),
    ("POST", "/api/tokens"): Needs("admin", "*"),
    ("GET", "/api/tokens"): Needs("admin", "*"),
    ("DELETE", "/api/tokens/{token_id}"): Needs("admin", "*"),
    ("POST", "/api/runners/{runner_id}/lease"): Runner(),
    ("POST", "/api/runners/{runner_id}/leases/{lease_id}/heartbeat"): Runner(),
    ("GET", "/api/runners/{runner_id}/leases/{lease_id}"): Runner(),
    ("POST", "/api/runners/{runner_id}/leases/{lease_id}/events"): Runner(),
}
"""Every route of the app and who may call it. A route missing here fails `test_every_route_...`."""


def routes(candidates: list[BaseRoute]) -> Iterator[tuple[str, str]]:
    """(method, path) of every route, looking into included routers (which some FastAPI versions keep whole)."""
    for route in candidates:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from routes(included.routes)
        elif isinstance(route, APIRoute | Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield method, route.path


def request_for(edge: Edge, method: str, path: str) -> tuple[str, dict[str, Any] | None]:
    """A concrete URL and body for a route, such that a caller who is let through gets an answer of the route's own
    (2xx, 404, 409, 422 …), not an access refusal."""
    url = path.format(
        run_id=edge.run_id, job="build", runner_id=edge.runners["box"], lease_id="no-such-lease", token_id="no-such"
    )
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/api/runs"): {"repository": "demo"},
        ("POST", "/api/runs/{run_id}/rerun"): {"mode": "all"},
        ("POST", "/api/runs/{run_id}/jobs/{job}/approve"): {"approver": "alice"},
        ("POST", "/api/runs/{run_id}/jobs/{job}/reject"): {"approver": "alice"},
        ("POST", "/api/repositories"): {"name": "third", "url": str(edge.tmp / "demo")},
        ("POST", "/api/runners"): {"name": "extra", "labels": []},
        ("POST", "/api/tokens"): {"name": "extra", "grants": {"demo": "read"}},
        ("POST", "/api/runners/{runner_id}/leases/{lease_id}/events"): {"events": []},
        ("POST", "/webhooks/github"): {},
    }
    return url, bodies.get((method, path))


def expected(rule: Rule, kind: str) -> int | None:
    """401 or 403 when the caller is refused; None when it is let through (any other status)."""
    if isinstance(rule, Public | Signed):
        return None
    if isinstance(rule, Runner):
        refused_token = kind in ("no token", "bad token", "revoked token")
        return None if kind == "runner box" else 401 if refused_token else 403
    if kind in ("no token", "bad token", "revoked token", "runner box", "runner rival"):
        return 401  # a runner's credential is no API token
    if isinstance(rule, Listed) or kind == "admin on every repository":
        return None
    assert isinstance(rule, Needs)
    if kind == "other repository only" or rule.repository == "*":
        return 403
    return None if includes(kind, rule.role) else 403  # type: ignore[arg-type]


async def test_every_route_answers_every_kind_of_caller_as_its_rule_says(edge: Edge) -> None:
    found = list(routes(edge.app.routes))
    documented = {(method.upper(), path) for path, item in edge.app.openapi()["paths"].items() for method in item}
    assert documented <= set(found), "routes() missed a route the OpenAPI document lists"
    missing = sorted(set(found) - set(RULES))
    assert not missing, f"routes without an entry in RULES (who may call them?): {missing}"

    secrets = {**edge.secrets, "no token": None, "bad token": "cvy_" + "x" * 40}
    secrets["admin on every repository"] = edge.admin
    refusals: list[str] = []
    outcomes: Counter[int | None] = Counter()
    for method, path in found:
        rule = RULES[(method, path)]
        url, body = request_for(edge, method, path)
        for kind in KINDS:
            response = await edge.http.request(method, url, json=body, headers=edge.as_(secrets[kind]))
            want = expected(rule, kind)
            outcomes[want] += 1
            status = response.status_code
            if (want is None and status in (401, 403)) or (want is not None and status != want):
                answer = f"{status} {response.text[:200]}"
                refusals.append(f"{method} {path} as {kind}: {answer}; expected {want or 'other'}")
            elif want == 401:
                assert response.headers["www-authenticate"] == "Bearer"
                assert response.json()["detail"]
            elif want == 403 and isinstance(rule, Needs):
                detail = response.json()["detail"]
                assert f"'{rule.role}'" in detail
                assert f"'{rule.repository}'" in detail
    assert not refusals, "\n".join(refusals)
    assert min(outcomes[None], outcomes[401], outcomes[403]) > 40, outcomes


async def test_a_route_that_declares_no_access_rule_is_closed_even_to_an_admin(edge: Edge) -> None:
    @edge.app.get("/api/forgotten")
    def forgotten() -> dict[str, str]:
        return {"open": "yes"}

    response = await edge.http.get("/api/forgotten", headers=edge.as_(edge.admin))

    assert response.status_code == 403
    assert "declares no access rule" in response.json()["detail"]


async def test_a_token_issued_through_the_api_works_and_its_secret_is_never_shown_again(edge: Edge) -> None:
    secret, token_id = await edge.issue("ci", {"demo": "read"})

    run = await edge.http.get(f"/api/runs/{edge.run_id}", headers=edge.as_(secret))
    listed = await edge.http.get("/api/tokens", headers=edge.as_(edge.admin))

    assert run.status_code == 200
    assert secret not in listed.text
    assert secret_hash(secret) not in listed.text
    [shown] = [token for token in listed.json() if token["id"] == token_id]
    assert shown["name"] == "ci"
    assert shown["grants"] == {"demo": "read"}
    assert shown["revoked"] is False
    assert set(shown) == {"id", "name", "grants", "issued_at", "revoked"}


async def test_a_revoked_token_is_refused_at_its_next_request(edge: Edge) -> None:
    secret, token_id = await edge.issue("ci", {"*": "write"})
    assert (await edge.http.get("/api/runs", headers=edge.as_(secret))).status_code == 200

    revoked = await edge.http.delete(f"/api/tokens/{token_id}", headers=edge.as_(edge.admin))
    refused = await edge.http.get("/api/runs", headers=edge.as_(secret))
    unknown = await edge.http.delete("/api/tokens/no-such-token", headers=edge.as_(edge.admin))

    assert revoked.status_code == 204
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert unknown.status_code == 404
    tokens = (await edge.http.get("/api/tokens", headers=edge.as_(edge.admin))).json()
    assert [token["revoked"] for token in tokens if token["id"] == token_id] == [True]


async def test_tokens_issued_and_revoked_by_another_process_over_the_same_log_count_at_once(edge: Edge) -> None:
    secret, token_id = await edge.issue("ci", {"demo": "read"})
    async with SqliteEventLog(edge.tmp / "events.db") as elsewhere:
        issued = await issue_token(elsewhere, "remote", {"demo": "write"})
        await elsewhere.append([Envelope.wrap(ApiTokenRevoked(token_id=token_id), stream=ACCESS_STREAM)])
    assert issued is not None

    assert (await edge.http.get(f"/api/runs/{edge.run_id}", headers=edge.as_(secret))).status_code == 401
    assert (await edge.http.get(f"/api/runs/{edge.run_id}", headers=edge.as_(issued[0]))).status_code == 200


async def test_the_log_holds_hashes_and_no_secret_of_a_token_or_a_runner(edge: Edge) -> None:
    await edge.settled()
    stored = b"".join(path.read_bytes() for path in edge.tmp.glob("events.db*"))
    shown = [edge.admin, *edge.secrets.values()]

    assert len(shown) == 9  # the first admin, six issued through the API, two runners
    for secret in shown:
        assert secret.encode() not in stored
        assert secret_hash(secret).encode() in stored


async def test_lists_show_only_what_the_token_may_read(edge: Edge) -> None:
    elsewhere, reader = edge.as_(edge.secrets["other repository only"]), edge.as_(edge.secrets["read"])
    await queue_run(edge.log, "run-linux", str(edge.tmp / "demo"), labels=("linux",))
    await edge.settled()
    box = edge.as_(edge.secrets["runner box"])
    assert (await edge.http.post(f"/api/runners/{edge.runners['box']}/lease", headers=box)).status_code == 200

    runs = (await edge.http.get("/api/runs", headers=elsewhere)).json()
    queue = (await edge.http.get("/api/queue", headers=elsewhere)).json()
    repositories = (await edge.http.get("/api/repositories", headers=elsewhere)).json()
    runners = {runner["name"]: runner for runner in (await edge.http.get("/api/runners", headers=elsewhere)).json()}
    demo_runs = (await edge.http.get("/api/runs", headers=reader)).json()
    seen_by_reader = {runner["name"]: runner for runner in (await edge.http.get("/api/runners", headers=reader)).json()}

    assert [run["id"] for run in runs] == [edge.other_run_id]
    assert [row["run"] for row in queue] == [edge.other_run_id]
    assert [repository["name"] for repository in repositories] == ["other"]
    assert (runners["box"]["job"], runners["box"]["leases"]) == (None, [])
    assert {run["id"] for run in demo_runs} == {edge.run_id, "run-linux"}
    assert seen_by_reader["box"]["job"]["run"] == "run-linux"
    page = (await edge.http.get("/api/runs", params={"limit": 1, "offset": 1}, headers=elsewhere)).json()
    assert page == []


async def test_only_a_runners_own_credential_leases_and_heartbeats_for_it(edge: Edge) -> None:
    box, rival = edge.runners["box"], edge.runners["rival"]
    await queue_run(edge.log, "run-linux", str(edge.tmp / "demo"), labels=("linux",))
    await edge.settled()

    stolen = await edge.http.post(f"/api/runners/{box}/lease", headers=edge.as_(edge.secrets["runner rival"]))
    by_admin = await edge.http.post(f"/api/runners/{box}/lease", headers=edge.as_(edge.admin))
    own = await edge.http.post(f"/api/runners/{box}/lease", headers=edge.as_(edge.secrets["runner box"]))
    assert own.status_code == 200, own.text
    heartbeat = f"/api/runners/{box}/leases/{own.json()['lease_id']}/heartbeat"
    renewed = await edge.http.post(heartbeat, headers=edge.as_(edge.secrets["runner box"]))
    hijacked = await edge.http.post(heartbeat, headers=edge.as_(edge.secrets["runner rival"]))
    unknown = await edge.http.post("/api/runners/nobody/lease", headers=edge.as_(edge.secrets["runner rival"]))

    assert (stolen.status_code, by_admin.status_code) == (403, 403)
    assert box in stolen.json()["detail"]
    assert renewed.status_code == 200
    assert hijacked.status_code == 403
    assert unknown.status_code == 404
    assert rival != box


async def test_the_first_admin_token_is_written_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "admin-token"
    async with SqliteEventLog(tmp_path / "events.db") as log:
        first = await first_admin_token(log, path)
        secret = path.read_text()
        again = await first_admin_token(log, path)
        issued = [envelope.event for envelope in await log.read_stream(ACCESS_STREAM)]

    assert (first, again) == (True, False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == secret
    assert re.fullmatch(r"cvy_[A-Za-z0-9_-]{40}", secret)
    [token] = issued
    assert isinstance(token, ApiTokenIssued)
    assert (token.grants, token.token_hash) == ({"*": "admin"}, secret_hash(secret))
