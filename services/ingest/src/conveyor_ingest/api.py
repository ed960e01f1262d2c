"""The REST API: query runs, jobs, steps and logs; dispatch runs; register repositories; GitHub webhooks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from conveyor_events import (
    ApprovalGranted,
    ApprovalRejected,
    Envelope,
    RepositoryRegistered,
    RunCancelRequested,
    RunRerunRequested,
)
from conveyor_runtime import EventLog, GitRemotes, RemoteGitError, is_remote, ls_remote, redacted
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from conveyor_ingest.access import Access, Reader, tokens_router, visible_page
from conveyor_ingest.credentials import CredentialsError, RepositoryTokens
from conveyor_ingest.dispatch import DispatchRefused, dispatched_run
from conveyor_ingest.domain import REPOSITORIES_STREAM, register_repository
from conveyor_ingest.queries import Queries
from conveyor_ingest.runners import runners_router
from conveyor_ingest.sealing import KeyWrapper, seal_for
from conveyor_ingest.webhooks import webhooks_router

MAX_POSITION = 2**63 - 1
"""The largest offset or line number a query takes: SQLite's largest integer."""


class DispatchRequest(BaseModel):
    """Run the workflows of a registered repository at a ref, as if `event` had happened there.

    `workflow_dispatch` and `repository_dispatch` are checked as GitHub's dispatch APIs check them (see
    `conveyor_ingest.dispatch`): the former needs `workflow` and gets its `inputs` validated against the
    workflow's declared types, the latter needs `event_type` and may carry a `client_payload`.
    """

    model_config = ConfigDict(extra="forbid")

    repository: str = Field(description="the name the repository was registered under")
    ref: str | None = Field(default=None, description="branch, tag, full ref or sha; the default branch if unset")
    event: str = "push"
    inputs: dict[str, Any] = Field(default_factory=dict, description="workflow_dispatch: the workflow's inputs")
    workflow: str | None = Field(
        default=None,
        description="only this workflow file, by path (.github/workflows/ci.yml) or file name (ci.yml); "
        "required for workflow_dispatch",
    )
    event_type: str | None = Field(default=None, description="repository_dispatch: the event type, 1-100 characters")
    client_payload: dict[str, Any] | None = Field(
        default=None, description="repository_dispatch: github.event.client_payload, at most 10 top-level properties"
    )


class RepositoryRequest(BaseModel):
    """A repository to register; its secrets are sealed before they are stored and never shown again."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?$")
    url: str = Field(
        min_length=1,
        description="a local path to a git repository, or its clone URL (https://, ssh://, git@host:path, file://); "
        "over HTTPS it is fetched with the repository's token or GitHub App",
    )
    default_branch: str = "main"
    github: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
        description="owner/name on GitHub, which webhook deliveries name; the name when it has a slash",
    )
    webhook_secret: str | None = Field(default=None, description="the secret GitHub signs webhook deliveries with")
    token: str | None = Field(default=None, description="a token for GitHub's API")
    app_id: str | None = Field(default=None, description="a GitHub App installed on the repository: its id")
    installation_id: int | None = Field(default=None, ge=1, description="the GitHub App's installation id")
    app_private_key: str | None = Field(default=None, description="the GitHub App's private key, PEM")


class RerunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["failed", "all"] = "failed"
    requested_by: str = ""


class Review(BaseModel):
    """A reviewer's decision on a job waiting for its environment's approval."""

    model_config = ConfigDict(extra="forbid")

    approver: str = Field(min_length=1)
    comment: str = ""


class Accepted(BaseModel):
    id: str
    url: str


def create_app(
    log: EventLog,
    queries: Queries,
    keys: KeyWrapper,
    *,
    remotes: GitRemotes | None = None,
    github_api_url: str = "https://api.github.com",
) -> FastAPI:
    """The API over `log` (where dispatches are appended), `queries` (the read models) and `keys` (which seal
    and open repository secrets); `remotes` reads repositories registered by clone URL, and a GitHub App
    registered with one gets its installation token from `github_api_url` to check that it can read it."""
    remotes = remotes or GitRemotes()
    access = Access(log, queries)
    app = FastAPI(title="Conveyor", version="0.1.0", dependencies=[Depends(access.gate)])
    app.state.access = access
    app.include_router(_runs_router(log, queries, access, remotes))
    app.include_router(_repositories_router(log, queries, keys, access, github_api_url))
    app.include_router(access.signed(webhooks_router(log, queries, keys, remotes)))
    app.include_router(runners_router(log, queries, access))
    app.include_router(tokens_router(access))

    @app.get("/api/queue", tags=["runs"])
    async def queue(token: Reader) -> list[dict[str, Any]]:
        """Jobs waiting for a runner, an approval, a wait timer or a concurrency group, with their wait time."""
        readable = await access.readable_runs(token)
        return [row for row in await queries.queue(datetime.now(UTC)) if await readable(row["run"])]

    return app


def _runs_router(log: EventLog, queries: Queries, access: Access, remotes: GitRemotes) -> APIRouter:
    router = APIRouter(prefix="/api/runs", tags=["runs"])
    read, write = [Depends(access.on_run("read"))], [Depends(access.on_run("write"))]

    @router.get("")
    async def list_runs(
        token: Reader,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
    ) -> list[dict[str, Any]]:
        """The runs the token may read, newest first."""
        if token.allows("read", []):
            return await queries.runs(limit=limit, offset=offset)
        readable = await access.readable_urls(token)

        async def fetch(count: int, at: int) -> list[dict[str, Any]]:
            return await queries.runs(limit=count, offset=at)

        return await visible_page(fetch, lambda run: readable(run["repository"]), limit=limit, offset=offset)

    @router.get("/{run_id}", dependencies=read)
    async def get_run(run_id: str) -> dict[str, Any]:
        run = await queries.run(run_id)
        if run is None:
            raise HTTPException(404, f"no run '{run_id}'")
        return run

    @router.get("/{run_id}/jobs/{job}/logs", dependencies=read)
    async def get_logs(
        run_id: str,
        job: str,
        after: Annotated[int, Query(ge=0, le=MAX_POSITION, description="only lines after this line number")] = 0,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
        attempt: Annotated[
            int | None, Query(ge=1, le=MAX_POSITION, description="this attempt's lines [default: the latest's]")
        ] = None,
    ) -> dict[str, Any]:
        found = await queries.job_logs(run_id, job, after=after, limit=limit, attempt=attempt)
        if found is None:
            raise HTTPException(404, f"no run '{run_id}'")
        if found.job_id is None:
            raise HTTPException(404, f"no job '{job}' in run '{run_id}'")
        return {"run": run_id, "job": found.job_id, "attempt": found.attempt, "lines": found.lines}

    @router.post("/{run_id}/cancel", status_code=202, dependencies=write)
    async def cancel_run(run_id: str) -> Accepted:
        run = await queries.run(run_id)
        if run is None:
            raise HTTPException(404, f"no run '{run_id}'")
        if run["status"] == "completed":
            raise HTTPException(409, f"run '{run_id}' already completed ({run['conclusion']})")
        request = RunCancelRequested(run_id=run_id, reason="cancelled through the API")
        await log.append([Envelope.wrap(request, stream=run_id)])
        return Accepted(id=run_id, url=f"/api/runs/{run_id}")

    @router.post("/{run_id}/rerun", status_code=202, dependencies=write)
    async def rerun(run_id: str, body: RerunRequest) -> Accepted:
        run = await queries.run(run_id)
        if run is None:
            raise HTTPException(404, f"no run '{run_id}'")
        if run["status"] != "completed":
            raise HTTPException(409, f"run '{run_id}' is still {run['status']}: re-run it once it has completed")
        event = RunRerunRequested(run_id=run_id, mode=body.mode, requested_by=body.requested_by)
        await log.append([Envelope.wrap(event, stream=run_id)])
        return Accepted(id=run_id, url=f"/api/runs/{run_id}")

    @router.post("/{run_id}/jobs/{job}/approve", status_code=202, dependencies=write)
    async def approve(run_id: str, job: str, body: Review) -> Accepted:
        return await _review(run_id, job, body, approved=True)

    @router.post("/{run_id}/jobs/{job}/reject", status_code=202, dependencies=write)
    async def reject(run_id: str, job: str, body: Review) -> Accepted:
        return await _review(run_id, job, body, approved=False)

    async def _review(run_id: str, job: str, body: Review, *, approved: bool) -> Accepted:
        job_id = await queries.job_id(run_id, job)
        if job_id is None:
            raise HTTPException(404, f"no job '{job}' in run '{run_id}'")
        [waiting] = [row for row in (await queries.run(run_id) or {"jobs": []})["jobs"] if row["id"] == job_id]
        if waiting["status"] != "waiting" or "to approve the environment" not in (waiting["reason"] or ""):
            raise HTTPException(409, f"job '{job}' is not waiting for an approval (it is {waiting['status']})")
        decision = (ApprovalGranted if approved else ApprovalRejected)(
            run_id=run_id, job_id=job_id, attempt=waiting["attempt"], approver=body.approver, comment=body.comment
        )
        await log.append([Envelope.wrap(decision, stream=run_id)])
        return Accepted(id=run_id, url=f"/api/runs/{run_id}")

    @router.post("", status_code=202, dependencies=[Depends(access.on_repository("write"))])
    async def dispatch(body: DispatchRequest) -> Accepted:
        repository = await queries.repository(body.repository)
        if repository is None:
            raise HTTPException(404, f"no repository registered as '{body.repository}'")
        try:
            request = await dispatched_run(
                repository,
                event=body.event,
                ref=body.ref,
                workflow=body.workflow,
                inputs=body.inputs,
                event_type=body.event_type,
                client_payload=body.client_payload,
                remotes=remotes,
            )
        except DispatchRefused as error:
            raise HTTPException(422, str(error)) from error
        await log.append([Envelope.wrap(request, stream=request.run_id)])
        return Accepted(id=request.run_id, url=f"/api/runs/{request.run_id}")

    return router


def _repositories_router(
    log: EventLog, queries: Queries, keys: KeyWrapper, access: Access, github_api_url: str
) -> APIRouter:
    router = APIRouter(prefix="/api/repositories", tags=["repositories"])

    @router.get("")
    async def list_repositories(token: Reader) -> list[dict[str, Any]]:
        """The repositories the token may read."""
        return [repository for repository in await queries.repositories() if token.allows("read", [repository["name"]])]

    @router.post("", status_code=201, dependencies=[Depends(access.on_every_repository("admin"))])
    async def add_repository(body: RepositoryRequest) -> dict[str, Any]:
        local = Path(body.url)
        if not is_remote(body.url) and not (local / ".git").exists() and not (local / "HEAD").is_file():
            raise HTTPException(422, f"'{body.url}' is not a local git repository")
        try:
            event = register_repository(
                body.name,
                body.url,
                body.default_branch,
                github=body.github,
                webhook_secret=seal_for(body.name, "webhook_secret", body.webhook_secret, keys),
                token=seal_for(body.name, "token", body.token, keys),
                app_id=body.app_id,
                installation_id=body.installation_id,
                app_private_key=seal_for(body.name, "app_private_key", body.app_private_key, keys),
            )
        except ValueError as error:
            raise HTTPException(422, str(error)) from error
        if is_remote(body.url):
            if redacted(body.url) != body.url and urlsplit(body.url).password is not None:
                raise HTTPException(422, "a clone URL carries no password or token: send the token as 'token'")
            token = body.token
            if token is None and event.app_private_key is not None:
                token = await _app_token(event, RepositoryTokens(log, keys, api_url=github_api_url))
            await _reachable(event.url, token)
        [stored] = await log.append([Envelope.wrap(event, stream=REPOSITORIES_STREAM)])
        await queries.caught_up(stored.position)
        registered = await queries.repository(body.name)
        assert registered is not None
        return registered

    return router


async def _app_token(event: RepositoryRegistered, tokens: RepositoryTokens) -> str | None:
    """The installation token of the GitHub App `event` registers; 422 when GitHub gives none."""
    try:
        return await tokens.for_registration(event)
    except CredentialsError as error:
        raise HTTPException(422, f"{redacted(event.url)}: {error}") from error
    finally:
        await tokens.aclose()


async def _reachable(url: str, token: str | None) -> None:
    """422 unless the repository at clone URL `url` answers `git ls-remote` with `token`."""
    try:
        await asyncio.to_thread(ls_remote, url, "HEAD", token)
    except RemoteGitError as error:
        raise HTTPException(422, f"'{redacted(url)}' cannot be read: {error}") from error
