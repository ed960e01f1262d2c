"""Who may call the REST API: API tokens granting roles per repository, runner credentials, and the FastAPI
dependencies that check them.

A token's secret is shown once, when it is issued; the log holds only its SHA-256, so a copy of the log opens
nothing. The API learns tokens by folding the `access` stream, and reads what is new there whenever the log's
head has moved, so a token issued or revoked by another process over the same log counts at its next request.

Every route must declare one of `Access`'s rules among its dependencies; `Access.gate`, a dependency of the
whole app, closes any route that declares none, so an endpoint added without a rule is refused, not open.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, get_args

from conveyor_events import (
    ACCESS_STREAM,
    AccessRole,
    ApiTokenIssued,
    ApiTokenRevoked,
    Envelope,
    Event,
    RunnerCredentialIssued,
)
from conveyor_runtime import ConcurrencyError, EventLog
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from conveyor_ingest.queries import Queries

ROLES: tuple[AccessRole, ...] = get_args(AccessRole)
"""The roles from least to most: each includes those before it."""
EVERY_REPOSITORY = "*"
TOKEN_PREFIX = "cvy_"
RUNNER_PREFIX = "cvr_"
_ACCESS_TYPES = [cls.event_type() for cls in (ApiTokenIssued, ApiTokenRevoked, RunnerCredentialIssued)]


# -- the pure parts ----------------------------------------------------------------------------------------------


def includes(held: AccessRole, needed: AccessRole) -> bool:
    """Whether the role `held` allows what `needed` allows."""
    return ROLES.index(held) >= ROLES.index(needed)


def role_on(grants: Mapping[str, AccessRole], repositories: Iterable[str]) -> AccessRole | None:
    """The highest role `grants` gives on any of `repositories` (a grant on `*` counts on every one), or None."""
    held = [grants[name] for name in {EVERY_REPOSITORY, *repositories} if name in grants]
    return max(held, key=ROLES.index, default=None)


def new_secret(prefix: str = TOKEN_PREFIX) -> str:
    """A fresh secret: the prefix and 40 URL-safe characters (240 random bits)."""
    return prefix + secrets.token_urlsafe(30)


def secret_hash(secret: str) -> str:
    """What the log keeps of a secret: its SHA-256, in hex. Secrets are random, so no salt or stretching."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token(name: str, grants: Mapping[str, AccessRole]) -> tuple[str, ApiTokenIssued]:
    """A new token's secret, and the event that issues it (which holds the hash, never the secret)."""
    secret = new_secret()
    issued = ApiTokenIssued(token_id=str(uuid.uuid4()), name=name, token_hash=secret_hash(secret), grants=dict(grants))
    return secret, issued


@dataclass(frozen=True)
class Token:
    """An issued token as the API knows it: never its secret, which nobody kept."""

    id: str
    name: str
    grants: Mapping[str, AccessRole]
    issued_at: datetime | None = None
    revoked: bool = False

    def allows(self, needed: AccessRole, repositories: Iterable[str]) -> bool:
        held = role_on(self.grants, repositories)
        return held is not None and includes(held, needed)

    def shown(self) -> dict[str, Any]:
        """The token as `GET /api/tokens` lists it."""
        return {
            "id": self.id,
            "name": self.name,
            "grants": dict(self.grants),
            "issued_at": self.issued_at.isoformat() if self.issued_at else None,
            "revoked": self.revoked,
        }


@dataclass
class AccessState:
    """The `access` stream folded: tokens by id, and which secret hash opens which token or runner."""

    tokens: dict[str, Token] = field(default_factory=dict)
    token_hashes: dict[str, str] = field(default_factory=dict)
    runner_hashes: dict[str, str] = field(default_factory=dict)
    runners: set[str] = field(default_factory=set)

    def token(self, secret: str) -> Token | None:
        """The live (issued, not revoked) token `secret` opens, or None."""
        token_id = self.token_hashes.get(secret_hash(secret))
        token = self.tokens.get(token_id) if token_id else None
        return None if token is None or token.revoked else token

    def runner(self, secret: str) -> str | None:
        """The id of the runner whose credential `secret` is, or None."""
        return self.runner_hashes.get(secret_hash(secret))


def evolve(state: AccessState, event: Event, at: datetime | None = None) -> AccessState:
    """`state` with `event` applied (in place: the state only ever grows, one event at a time)."""
    if isinstance(event, ApiTokenIssued):
        state.tokens[event.token_id] = Token(event.token_id, event.name, dict(event.grants), at)
        state.token_hashes[event.token_hash] = event.token_id
    elif isinstance(event, ApiTokenRevoked) and event.token_id in state.tokens:
        known = state.tokens[event.token_id]
        state.tokens[event.token_id] = Token(known.id, known.name, known.grants, known.issued_at, revoked=True)
    elif isinstance(event, RunnerCredentialIssued):
        state.runner_hashes[event.credential_hash] = event.runner_id
        state.runners.add(event.runner_id)
    return state


async def visible_page(
    fetch: Callable[[int, int], Awaitable[list[dict[str, Any]]]],
    keep: Callable[[dict[str, Any]], bool],
    *,
    limit: int,
    offset: int,
    chunk: int = 500,
) -> list[dict[str, Any]]:
    """Rows `offset` to `offset + limit` of those `keep` accepts, fetching `chunk` rows at a time with `fetch(limit,
    offset)`: a page of what a caller may see is as long as the page asked for, however much is hidden."""
    found: list[dict[str, Any]] = []
    skipped = at = 0
    while len(found) < limit:
        rows = await fetch(chunk, at)
        for row in rows:
            if not keep(row):
                continue
            if skipped < offset:
                skipped += 1
            elif len(found) < limit:
                found.append(row)
        if len(rows) < chunk:
            break
        at += chunk
    return found


# -- the log -----------------------------------------------------------------------------------------------------


async def issue_token(
    log: EventLog, name: str, grants: Mapping[str, AccessRole], *, first: bool = False
) -> tuple[str, ApiTokenIssued] | None:
    """Issue a token: its secret (to show once) and the appended event. With `first`, only if the `access`
    stream is still empty (None otherwise), so that of processes racing to issue the first token one does."""
    secret, issued = new_token(name, grants)
    try:
        await log.append([Envelope.wrap(issued, stream=ACCESS_STREAM)], expected_version=0 if first else None)
    except ConcurrencyError:
        return None
    return secret, issued


async def first_admin_token(log: EventLog, path: Path) -> bool:
    """Issue an admin token on `*` and write its secret to `path` (mode 0600), if the log holds no access event
    yet; whether it did. A token issued or revoked before, or by another process meanwhile, stands."""
    issued = await issue_token(log, "admin", {EVERY_REPOSITORY: "admin"}, first=True)
    if issued is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        os.fchmod(file.fileno(), 0o600)  # a file left from an older log may have had a looser mode
        file.write(issued[0])
    return True


class AccessBook:
    """The `access` stream folded, kept up to date: new events are read whenever the log's head moved."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self._state = AccessState()
        self._position = 0
        self._lock = asyncio.Lock()

    async def fresh(self) -> AccessState:
        """The state with every access event appended before this call."""
        head = await self._log.head()
        if head <= self._position:
            return self._state
        async with self._lock:
            while head > self._position:
                batch = await self._log.read(self._position, 1000, types=_ACCESS_TYPES)
                for envelope in batch:
                    evolve(self._state, envelope.event, envelope.occurred_at)
                if len(batch) == 1000:
                    self._position = batch[-1].position
                else:
                    self._position = max(head, batch[-1].position if batch else 0)
        return self._state


# -- the FastAPI dependencies ------------------------------------------------------------------------------------

Rule = Callable[[Request], Coroutine[Any, Any, Any]]


class Access:
    """The rules routes declare with `Depends(...)`, over the log's tokens and the read models' runs."""

    def __init__(self, log: EventLog, queries: Queries) -> None:
        self.book = AccessBook(log)
        self.log = log
        self._queries = queries
        self._run_repositories: OrderedDict[str, str] = OrderedDict()
        self._rules: set[Callable[..., Any]] = {any_token}
        self._signed: set[Callable[..., Any]] = set()

    def _rule(self, check: Rule) -> Rule:
        self._rules.add(check)
        return check

    async def caller(self, request: Request) -> Token:
        """The token the request presents; 401 when there is none, or it is unknown or revoked."""
        token = (await self.book.fresh()).token(_bearer(request))
        if token is None:
            raise _unauthorized("the token is unknown or was revoked")
        return token

    def on_every_repository(self, role: AccessRole) -> Rule:
        """`role` on `*`: for what is not one repository's (registering repositories and runners, tokens)."""

        async def check(request: Request) -> Token:
            return _demand(await self.caller(request), role, [])

        return self._rule(check)

    def on_run(self, role: AccessRole) -> Rule:
        """`role` on the repository of the run in the path; an unknown run is left to the endpoint (404)."""

        async def check(request: Request) -> Token:
            token = await self.caller(request)
            url = await self.run_repository(request.path_params["run_id"])
            if url is not None:
                _demand(token, role, await self.names_of(url))
            return token

        return self._rule(check)

    def on_repository(self, role: AccessRole) -> Rule:
        """`role` on the repository a dispatch names: in the path (`name`, `repository`, or `owner`/`repo`), else
        the body's `repository`; when neither names one, `role` on `*` (a request cannot slip past unnamed)."""

        async def check(request: Request) -> Token:
            token = await self.caller(request)
            name = _named_repository(request.path_params) or await _body_repository(request)
            return _demand(token, role, [name] if name else [])

        return self._rule(check)

    def signed(self, router: APIRouter) -> APIRouter:
        """`router`, whose every route takes no token: each request carries its own proof (a GitHub delivery's
        signature), which its endpoint checks."""
        self._signed.update(route.endpoint for route in router.routes if isinstance(route, APIRoute))
        return router

    def runner(self) -> Rule:
        """The credential of the runner in the path, returned when it registered; no API token will do."""

        async def check(request: Request) -> str:
            state = await self.book.fresh()
            secret, runner_id = _bearer(request), str(request.path_params["runner_id"])
            holder = state.runner(secret)
            if holder == runner_id:
                return runner_id
            if holder is None and state.token(secret) is None:
                raise _unauthorized("the credential is unknown, or the token was revoked")
            if runner_id not in state.runners:
                raise HTTPException(404, f"no runner '{runner_id}': register it first with POST /api/runners")
            raise HTTPException(403, f"only the credential runner '{runner_id}' got when it registered acts for it")

        return self._rule(check)

    async def gate(self, request: Request) -> None:
        """A dependency of the whole app: a route that declares none of the rules is closed to everyone."""
        route = request.scope.get("route")
        if not isinstance(route, APIRoute) or route.endpoint in self._signed:
            return
        if not any(dependency.call in self._rules for dependency in route.dependant.dependencies):
            raise HTTPException(403, f"{route.path} declares no access rule, so it is closed to every token")

    # -- what lists show ---------------------------------------------------------------------------------------

    async def run_repository(self, run_id: str) -> str | None:
        """The repository (its URL, as runs record it) of a run; remembered, since a run never changes it."""
        url = self._run_repositories.get(run_id)
        if url is None:
            run = await self._queries.run(run_id)
            if run is None:
                return None
            url = self._run_repositories[run_id] = str(run["repository"])
            while len(self._run_repositories) > 10_000:
                self._run_repositories.popitem(last=False)
        return url

    async def names_of(self, url: str) -> list[str]:
        """The names the repository at `url` is registered under (a grant on any of them is a grant on its runs)."""
        return [repository["name"] for repository in await self._queries.repositories() if repository["url"] == url]

    async def readable_runs(self, token: Token) -> Callable[[str], Awaitable[bool]]:
        """Whether `token` may read a run, by id (a run's repository is asked once, then remembered)."""
        everything = token.allows("read", [])
        urls = await self.readable_urls(token)

        async def readable(run_id: str) -> bool:
            if everything:
                return True
            url = await self.run_repository(run_id)
            return url is not None and urls(url)

        return readable

    async def readable_urls(self, token: Token) -> Callable[[str], bool]:
        """Whether `token` may read the runs of the repository at a URL."""
        if token.allows("read", []):
            return lambda url: True
        urls = {repo["url"] for repo in await self._queries.repositories() if token.allows("read", [repo["name"]])}
        return lambda url: url in urls


async def any_token(request: Request) -> Token:
    """Any valid token, of the app's `Access` (in `app.state.access`): for lists, which then show only what the
    token may read."""
    access: Access = request.app.state.access
    return await access.caller(request)


Reader = Annotated[Token, Depends(any_token)]
"""The parameter of a list's endpoint: the token, whatever its grants."""


def _bearer(request: Request) -> str:
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise _unauthorized("send a token as 'Authorization: Bearer <token>'")
    return secret.strip()


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _demand(token: Token, role: AccessRole, repositories: list[str]) -> Token:
    """`token`, if it holds `role` on one of `repositories` (or on `*`); 403 naming the role and repository if not."""
    if token.allows(role, repositories):
        return token
    named = " or ".join(f"'{name}'" for name in sorted(repositories)) or f"'{EVERY_REPOSITORY}'"
    raise HTTPException(403, f"this needs the role '{role}' on the repository {named}, which the token lacks")


def _named_repository(path: Mapping[str, Any]) -> str | None:
    if "owner" in path and "repo" in path:
        return f"{path['owner']}/{path['repo']}"
    name = path.get("repository", path.get("name"))
    return str(name) if name else None


async def _body_repository(request: Request) -> str | None:
    """The body's `repository`, read leniently: a body that is not what the endpoint wants fails its validation."""
    try:
        body = await request.json()
    except ValueError:
        return None
    name = body.get("repository") if isinstance(body, dict) else None
    return name if isinstance(name, str) and name else None



# -- the token endpoints -----------------------------------------------------------------------------------------

GrantTarget = Annotated[str, StringConstraints(pattern=r"^(\*|[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?)$")]


class TokenRequest(BaseModel):
    """A token to issue: a name to tell it by, and a role per repository name (`*`: every repository)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    grants: dict[GrantTarget, AccessRole] = Field(min_length=1, max_length=1000)


def tokens_router(access: Access) -> APIRouter:
    """`/api/tokens`: issue (the secret is in this answer and no other), list and revoke tokens; admin on `*`."""
    router = APIRouter(prefix="/api/tokens", tags=["tokens"])
    admin = [Depends(access.on_every_repository("admin"))]

    @router.post("", status_code=201, dependencies=admin)
    async def create_token(body: TokenRequest) -> dict[str, Any]:
        issued = await issue_token(access.log, body.name, body.grants)
        assert issued is not None
        secret, event = issued
        token = (await access.book.fresh()).tokens[event.token_id]
        return {**token.shown(), "token": secret}

    @router.get("", dependencies=admin)
    async def list_tokens() -> list[dict[str, Any]]:
        return [token.shown() for token in (await access.book.fresh()).tokens.values()]

    @router.delete("/{token_id}", status_code=204, dependencies=admin)
    async def revoke_token(token_id: str) -> Response:
        if token_id not in (await access.book.fresh()).tokens:
            raise HTTPException(404, f"no token '{token_id}'")
        await access.log.append([Envelope.wrap(ApiTokenRevoked(token_id=token_id), stream=ACCESS_STREAM)])
        return Response(status_code=204)

    return router
