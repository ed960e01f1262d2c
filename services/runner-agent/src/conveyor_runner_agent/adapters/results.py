"""GitHub's results service, as actions reach it: artifacts and caches over Twirp (JSON), their contents as blobs.

A job's JavaScript and Docker actions find it through `ACTIONS_RESULTS_URL` and authenticate with
`ACTIONS_RUNTIME_TOKEN`, a JWT whose `Actions.Results:<run>:<job>` scope names the run and job (the toolkit's
`@actions/artifact` reads both ids from it); the token also names the repository and refs whose caches the job
may use. Contents go to signed URLs that speak as much of Azure's Blob service as the toolkit uses: `Put Block`,
`Put Block List`, `Put Blob` and `Get Blob`.

The service runs in the runner's process from the first job that needs it: on a port of its own on the loopback
address, and on another on every address once a job in a container needs it (containers reach the host
through their network's gateway); only requests signed by the service are answered there.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import jwt
import uvicorn
from conveyor_events import RunEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from conveyor_runner_agent.adapters import artifact_service, cache_service, twirp
from conveyor_runner_agent.adapters.artifacts import ArtifactStore, Uploader
from conveyor_runner_agent.adapters.blob_protocol import Blocks, blob_error, blob_headers, block_list, receive
from conveyor_runner_agent.adapters.caches import CacheStore
from conveyor_runner_agent.adapters.containers import CONTAINER_HOST
from conveyor_runner_agent.adapters.twirp import ResultsError

logger = logging.getLogger(__name__)

_URL_LIFETIME = 6 * 3600
"""How long a signed upload or download URL stays good, in seconds."""
_SHUTDOWN_GRACE = 5
"""Seconds an upload or download still going when the service stops gets to finish."""

Method = Callable[["ResultsService", Request, "Caller", dict[str, Any]], Awaitable[Any]]
Watcher = Callable[[RunEvent], None]
"""Takes the events a job's calls cause (an artifact uploaded or deleted), to append them with the job's own."""


@dataclass(frozen=True)
class Caller:
    """A job's attempt, as the runtime token it presents names it (the service signed the token itself)."""

    run_id: str
    job_id: str
    attempt: int
    job_backend_id: str
    repository: str
    scope: str
    """The ref whose caches the job saves."""
    scopes: tuple[str, ...]
    """The refs whose caches it restores, in the order they are looked in."""

    @property
    def uploader(self) -> Uploader:
        return Uploader(self.run_id, self.job_id, self.attempt)

    @property
    def attempt_key(self) -> tuple[str, str, int]:
        return self.run_id, self.job_id, self.attempt


class BlobStore(Blocks, Protocol):
    """What keeps the blobs of one kind (artifacts, caches) under their numbers."""

    def commit(self, number: int, block_ids: Iterable[str], content_type: str | None = None) -> None: ...

    def readable(self, number: int) -> tuple[Path, str]: ...

    def close(self) -> None: ...


class _Quiet(uvicorn.Server):
    """A uvicorn server that leaves the process's signals to whoever runs it (`conveyor up` serves an API too),
    and does not announce itself as the API does ("Uvicorn running on …, press CTRL+C to quit")."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def _log_started_message(self, listeners: Sequence[socket.SocketType]) -> None:
        for listener in listeners:
            logger.debug("the results service listens on %s", listener.getsockname())


class _QuietConfig(uvicorn.Config):
    """A uvicorn configuration that leaves the process's loggers as they are: uvicorn's own would reset those of
    the API `conveyor up` serves (its access log among them)."""

    def configure_logging(self) -> None:
        pass


class ResultsService:
    """The results service over the artifacts and caches kept under `root`: tokens for jobs, the HTTP app, and
    the servers it runs on."""

    def __init__(self, root: Path, *, host: str = "127.0.0.1") -> None:
        self.artifacts = ArtifactStore(root / "artifacts")
        self.caches = CacheStore(root / "caches")
        self.host = host
        self._stores: dict[str, BlobStore] = {"artifacts": self.artifacts, "caches": self.caches}
        self._methods: dict[tuple[str, str], Method] = {**artifact_service.METHODS, **cache_service.METHODS}
        self._secret = os.urandom(32)
        self._watchers: dict[tuple[str, str, int], Watcher] = {}
        self._servers: dict[str, tuple[_Quiet, asyncio.Task[None], int]] = {}
        """Per address listened on: the server, the task serving it, and its port."""
        self._starting = asyncio.Lock()
        self.app = Starlette(
            routes=[
                Route("/twirp/{service}/{method}", self._twirp, methods=["POST"]),
                Route("/blobs/{kind}/{number:int}", self._put_blob, methods=["PUT"]),
                Route("/blobs/{kind}/{number:int}/{filename}", self._get_blob, methods=["GET", "HEAD"]),
            ]
        )

    # -- life cycle -----------------------------------------------------------------------------------------

    async def url(self, *, for_containers: bool = False) -> str:
        """Where the service answers (`ACTIONS_RESULTS_URL`), listening from the first time it is asked.

        Containers reach it through their engine's name for the host, `host.containers.internal`, which leads to
        their network's gateway: for them it listens on every address, not only on the loopback one.
        """
        host = "0.0.0.0" if for_containers else self.host  # only signed requests are answered
        async with self._starting:
            if host not in self._servers:
                self._servers[host] = await self._listen(host)
        port = self._servers[host][2]
        return f"http://{CONTAINER_HOST if for_containers else self.host}:{port}/"

    async def _listen(self, host: str) -> tuple[_Quiet, asyncio.Task[None], int]:
        listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, 0))
        config = _QuietConfig(
            self.app, lifespan="off", access_log=False, timeout_graceful_shutdown=_SHUTDOWN_GRACE
        )
        server = _Quiet(config)
        serving = asyncio.create_task(server.serve(sockets=[listening]), name=f"results service on {host}")
        while not server.started:
            if serving.done():
                serving.result()
                raise RuntimeError(f"the results service stopped while it started on {host}")
            await asyncio.sleep(0.005)
        return server, serving, listening.getsockname()[1]

    async def stop(self) -> None:
        """Stop listening; a transfer still going gets `_SHUTDOWN_GRACE` seconds, then is cut."""
        try:
            for server, _, _ in self._servers.values():
                server.should_exit = True
            await asyncio.gather(*(serving for _, serving, _ in self._servers.values()), return_exceptions=True)
        finally:
            self._servers.clear()
            for store in self._stores.values():
                await asyncio.to_thread(store.close)

    # -- what jobs are told ---------------------------------------------------------------------------------

    def watch(self, caller: Caller, watcher: Watcher) -> None:
        """Hand `watcher` the events that the calls of this job's attempt cause, until `unwatch`."""
        self._watchers[caller.attempt_key] = watcher

    def unwatch(self, caller: Caller) -> None:
        self._watchers.pop(caller.attempt_key, None)

    def report(self, caller: Caller, event: RunEvent) -> None:
        """An event a call caused, for the job that made it (a call after the job ended tells no one)."""
        watcher = self._watchers.get(caller.attempt_key)
        if watcher is not None:
            watcher(event)

    # -- tokens and signatures ------------------------------------------------------------------------------

    def runtime_token(self, caller: Caller, lifetime: float) -> str:
        """`ACTIONS_RUNTIME_TOKEN` for one job's attempt: good for `lifetime` seconds, in this process only."""
        now = int(time.time())
        scope = f"Actions.GenericRead:{caller.run_id} Actions.Results:{caller.run_id}:{caller.job_backend_id}"
        claims = {
            "scp": scope,
            "run": caller.run_id,
            "job": caller.job_id,
            "attempt": caller.attempt,
            "repository": caller.repository,
            "ref": caller.scope,
            "refs": list(caller.scopes),
            # What BuildKit's cache client (docker/build-push-action's `type=gha`) reads: read (1) and write (2)
            # permissions per ref, as GitHub's tokens carry them.
            "ac": json.dumps(
                [{"Scope": caller.scope, "Permission": 3}]
                + [{"Scope": ref, "Permission": 1} for ref in caller.scopes if ref != caller.scope]
            ),
            "nbf": now,
            "iat": now,
            "exp": now + int(lifetime),
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def _caller(self, request: Request) -> Caller:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ResultsError("unauthenticated", "the request carries no runtime token")
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"])
        except jwt.PyJWTError as error:
            raise ResultsError("unauthenticated", f"the runtime token is not good: {error}") from None
        return Caller(
            run_id=str(claims["run"]),
            job_id=str(claims["job"]),
            attempt=int(claims["attempt"]),
            job_backend_id=str(claims["scp"]).rsplit(":", 1)[-1],
            repository=str(claims["repository"]),
            scope=str(claims["ref"]),
            scopes=tuple(str(ref) for ref in claims["refs"]),
        )

    def _signature(self, kind: str, number: int, permission: str, expiry: int) -> str:
        message = f"{kind}:{number}:{permission}:{expiry}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def signed(self, request: Request, kind: str, number: int, permission: str, filename: str | None = None) -> str:
        """A URL that lets its holder read (r) or write (w) one blob for a while; on the address the request came
        to, so that a container gets one it can reach. `filename` ends a download's path."""
        expiry = int(time.time()) + _URL_LIFETIME
        signature = self._signature(kind, number, permission, expiry)
        path = f"/blobs/{kind}/{number}" + (f"/{filename}" if filename else "")
        return f"{str(request.base_url).rstrip('/')}{path}?se={expiry}&sp={permission}&sig={signature}"

    def _store(self, request: Request, permission: str) -> tuple[BlobStore, int]:
        """The store and number of the blob a signed URL names; refused when the signature does not hold."""
        kind: str = request.path_params["kind"]
        number: int = request.path_params["number"]
        store = self._stores.get(kind)
        query = request.query_params
        try:
            expiry = int(query.get("se", ""))
        except ValueError:
            raise ResultsError("permission_denied", "the URL is not signed") from None
        expected = self._signature(kind, number, permission, expiry)
        if store is None or query.get("sp") != permission or not hmac.compare_digest(expected, query.get("sig", "")):
            raise ResultsError("permission_denied", "the URL's signature does not match")
        if expiry < time.time():
            raise ResultsError("permission_denied", "the signed URL has expired")
        return store, number

    # -- Twirp ----------------------------------------------------------------------------------------------

    async def _twirp(self, request: Request) -> Response:
        method = self._methods.get((request.path_params["service"], request.path_params["method"]))
        if method is None:
            return twirp.error("bad_route", f"no method {request.url.path}")
        try:
            caller = self._caller(request)
            body = await request.json()
            if not isinstance(body, dict):
                raise ResultsError("malformed", "the request body is not a JSON object")
            run_id = twirp.field(body, "workflow_run_backend_id")
            if run_id and run_id != caller.run_id:
                raise ResultsError("permission_denied", "the runtime token is not good for that workflow run")
            return JSONResponse(await method(self, request, caller, body))
        except ResultsError as refused:
            return twirp.error(refused.code, str(refused))
        except ValueError as error:
            return twirp.error("malformed", f"the request body is not JSON: {error}")

    # -- blobs ----------------------------------------------------------------------------------------------

    async def _put_blob(self, request: Request) -> Response:
        try:
            store, number = self._store(request, "w")
            comp = request.query_params.get("comp")
            content_type = request.headers.get("x-ms-blob-content-type")
            if comp == "block":
                block_id = request.query_params.get("blockid", "")
                if not block_id:
                    raise ResultsError("invalid_argument", "Put Block names no blockid")
                await receive(request, store, number, block_id)
            elif comp == "blocklist":
                blocks = block_list(await request.body())
                await asyncio.to_thread(store.commit, number, blocks, content_type)
            elif comp is None:
                await receive(request, store, number, "whole")
                await asyncio.to_thread(store.commit, number, ["whole"], content_type)
            else:
                raise ResultsError("invalid_argument", f"comp={comp} is not supported")
        except ResultsError as refused:
            return blob_error(refused)
        return Response(status_code=201, headers=blob_headers())

    async def _get_blob(self, request: Request) -> Response:
        try:
            store, number = self._store(request, "r")
            path, media_type = await asyncio.to_thread(store.readable, number)
        except ResultsError as refused:
            return blob_error(refused)
        ranged = request.headers.get("x-ms-range")
        if ranged and "range" not in request.headers:  # Azure's own name for a Range header, as its SDKs send it
            request.scope["headers"] = [*request.scope["headers"], (b"range", ranged.encode("latin-1"))]
        filename = request.path_params["filename"]
        return FileResponse(
            path,
            media_type=media_type,
            headers={**blob_headers(), "content-disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
        )
