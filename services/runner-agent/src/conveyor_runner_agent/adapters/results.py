"""GitHub's results service, as actions reach it: artifacts over Twirp (JSON), their contents as blobs.

A job's JavaScript and Docker actions find it through `ACTIONS_RESULTS_URL` and authenticate with
`ACTIONS_RUNTIME_TOKEN`, a JWT whose `Actions.Results:<run>:<job>` scope names the run and job (the toolkit's
`@actions/artifact` reads both ids from it). Contents go to signed URLs that speak as much of Azure's Blob
service as the toolkit uses: `Put Block`, `Put Block List`, `Put Blob` and `Get Blob`.

The service runs in the runner's process, on a port of its own, from the first job that needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import socket
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from conveyor_runner_agent.adapters.artifacts import ArtifactError, ArtifactStore, Uploader
from conveyor_runner_agent.adapters.containers import CONTAINER_HOST

ARTIFACTS = "github.actions.results.api.v1.ArtifactService"
_STATUS = {
    "invalid_argument": 400,
    "malformed": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "already_exists": 409,
    "failed_precondition": 412,
}
_URL_LIFETIME = 6 * 3600
"""How long a signed upload or download URL stays good, in seconds."""

Method = Callable[[Request, "Caller", dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Caller:
    """Who called, read from a runtime token the service itself signed."""

    run_id: str
    job_id: str
    attempt: int
    job_backend_id: str

    @property
    def uploader(self) -> Uploader:
        return Uploader(self.run_id, self.job_id, self.attempt)


class _Quiet(uvicorn.Server):
    """A uvicorn server that leaves the process's signals to whoever runs it (`conveyor up` serves an API too)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ResultsService:
    """The results service over `store`: tokens for jobs, the HTTP app, and the server it runs on."""

    def __init__(self, store: ArtifactStore, *, host: str = "127.0.0.1") -> None:
        self.store = store
        self.host = host
        self._secret = os.urandom(32)
        self._servers: dict[str, tuple[_Quiet, asyncio.Task[None], int]] = {}
        """Per address listened on: the server, the task serving it, and its port."""
        self._starting = asyncio.Lock()
        self.app = Starlette(
            routes=[
                Route("/twirp/{service}/{method}", self._twirp, methods=["POST"]),
                Route("/blobs/{artifact:int}", self._put_blob, methods=["PUT"]),
                Route("/blobs/{artifact:int}/{filename}", self._get_blob, methods=["GET", "HEAD"]),
            ]
        )
        self._methods: dict[tuple[str, str], Method] = {
            (ARTIFACTS, "CreateArtifact"): self._create_artifact,
            (ARTIFACTS, "FinalizeArtifact"): self._finalize_artifact,
            (ARTIFACTS, "ListArtifacts"): self._list_artifacts,
            (ARTIFACTS, "GetSignedArtifactURL"): self._signed_artifact_url,
            (ARTIFACTS, "DeleteArtifact"): self._delete_artifact,
        }

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
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        server = _Quiet(config)
        serving = asyncio.create_task(server.serve(sockets=[listening]), name=f"results service on {host}")
        while not server.started:
            if serving.done():
                serving.result()
                raise RuntimeError(f"the results service stopped while it started on {host}")
            await asyncio.sleep(0.005)
        return server, serving, listening.getsockname()[1]

    async def stop(self) -> None:
        for server, serving, _ in self._servers.values():
            server.should_exit = True
            await serving
        self._servers.clear()
        await asyncio.to_thread(self.store.close)

    # -- tokens ---------------------------------------------------------------------------------------------

    def runtime_token(self, run_id: str, job_id: str, attempt: int, job_backend_id: str, lifetime: float) -> str:
        """`ACTIONS_RUNTIME_TOKEN` for one job's attempt: good for `lifetime` seconds, in this process only."""
        now = int(time.time())
        claims = {
            "scp": f"Actions.GenericRead:{run_id} Actions.Results:{run_id}:{job_backend_id}",
            "run": run_id,
            "job": job_id,
            "attempt": attempt,
            "iat": now,
            "exp": now + int(lifetime),
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def _caller(self, request: Request) -> Caller:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ArtifactError("unauthenticated", "the request carries no runtime token")
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"])
        except jwt.PyJWTError as error:
            raise ArtifactError("unauthenticated", f"the runtime token is not good: {error}") from None
        job_backend_id = str(claims["scp"]).rsplit(":", 1)[-1]
        return Caller(str(claims["run"]), str(claims["job"]), int(claims["attempt"]), job_backend_id)

    def _signature(self, artifact_id: int, permission: str, expiry: int) -> str:
        message = f"{artifact_id}:{permission}:{expiry}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _signed(self, request: Request, path: str, artifact_id: int, permission: str) -> str:
        """A URL of `path` that lets its holder do `permission` (r, w) to the artifact for a while; on the address
        the request came to, so that a container gets one it can reach."""
        expiry = int(time.time()) + _URL_LIFETIME
        signature = self._signature(artifact_id, permission, expiry)
        return f"{str(request.base_url).rstrip('/')}{path}?se={expiry}&sp={permission}&sig={signature}"

    def _check_signature(self, request: Request, artifact_id: int, permission: str) -> None:
        query = request.query_params
        try:
            expiry = int(query.get("se", ""))
        except ValueError:
            raise ArtifactError("permission_denied", "the URL is not signed") from None
        expected = self._signature(artifact_id, permission, expiry)
        if query.get("sp") != permission or not hmac.compare_digest(expected, query.get("sig", "")):
            raise ArtifactError("permission_denied", "the URL's signature does not match")
        if expiry < time.time():
            raise ArtifactError("permission_denied", "the signed URL has expired")

    # -- Twirp ----------------------------------------------------------------------------------------------

    async def _twirp(self, request: Request) -> Response:
        method = self._methods.get((request.path_params["service"], request.path_params["method"]))
        if method is None:
            return _twirp_error("bad_route", f"no method {request.url.path}", status=404)
        try:
            caller = self._caller(request)
            body = await request.json()
            if not isinstance(body, dict):
                raise ArtifactError("malformed", "the request body is not a JSON object")
            run_id = _field(body, "workflow_run_backend_id")
            if run_id and run_id != caller.run_id:
                raise ArtifactError("permission_denied", "the runtime token is not good for that workflow run")
            return JSONResponse(await method(request, caller, body))
        except ArtifactError as error:
            return _twirp_error(error.code, str(error))
        except ValueError as error:
            return _twirp_error("malformed", f"the request body is not JSON: {error}")

    async def _create_artifact(self, request: Request, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        name = _required(body, "name")
        expires = _field(body, "expires_at")
        artifact = await asyncio.to_thread(
            self.store.create,
            caller.uploader,
            name,
            _field(body, "mime_type") or "application/zip",
            _timestamp(expires) if expires else None,
        )
        return {"ok": True, "signed_upload_url": self._signed(request, f"/blobs/{artifact.id}", artifact.id, "w")}

    async def _finalize_artifact(self, request: Request, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        size = _field(body, "size") or "0"
        if not size.isdigit():
            raise ArtifactError("invalid_argument", f"size {size!r} is not a number of bytes")
        artifact = await asyncio.to_thread(
            self.store.finalize, caller.run_id, _required(body, "name"), int(size), _field(body, "hash")
        )
        return {"ok": True, "artifact_id": str(artifact.id)}

    async def _list_artifacts(self, request: Request, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        by_id = _field(body, "id_filter")
        if by_id is not None and not by_id.isdigit():
            raise ArtifactError("invalid_argument", f"id_filter {by_id!r} is not an artifact id")
        found = await asyncio.to_thread(
            self.store.list,
            caller.run_id,
            name=_field(body, "name_filter"),
            artifact_id=int(by_id) if by_id is not None else None,
        )
        return {
            "artifacts": [
                {
                    "workflow_run_backend_id": artifact.run_id,
                    "workflow_job_run_backend_id": caller.job_backend_id,
                    "database_id": str(artifact.id),
                    "name": artifact.name,
                    "size": str(artifact.size or 0),
                    "created_at": _rfc3339(artifact.created_at),
                    **({"digest": artifact.digest} if artifact.digest else {}),
                }
                for artifact in found
            ]
        }

    async def _signed_artifact_url(self, request: Request, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        name = _required(body, "name")
        found = await asyncio.to_thread(self.store.list, caller.run_id, name=name)
        if not found:
            raise ArtifactError("not_found", f"the run has no artifact named '{name}'")
        artifact = found[-1]
        filename = f"{name}.zip" if artifact.mime_type == "application/zip" else name
        return {"signed_url": self._signed(request, f"/blobs/{artifact.id}/{quote(filename)}", artifact.id, "r")}

    async def _delete_artifact(self, request: Request, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        artifact = await asyncio.to_thread(self.store.delete, caller.run_id, _required(body, "name"))
        return {"ok": True, "artifact_id": str(artifact.id)}

    # -- blobs ----------------------------------------------------------------------------------------------

    async def _put_blob(self, request: Request) -> Response:
        artifact_id: int = request.path_params["artifact"]
        try:
            self._check_signature(request, artifact_id, "w")
            comp = request.query_params.get("comp")
            if comp == "block":
                block_id = request.query_params.get("blockid", "")
                if not block_id:
                    raise ArtifactError("invalid_argument", "Put Block names no blockid")
                data = await request.body()
                await asyncio.to_thread(self.store.stage, artifact_id, block_id, [data])
            elif comp == "blocklist":
                blocks = _block_list(await request.body())
                content_type = request.headers.get("x-ms-blob-content-type")
                await asyncio.to_thread(self.store.commit, artifact_id, blocks, content_type)
            elif comp is None:
                data = await request.body()
                await asyncio.to_thread(self.store.stage, artifact_id, "whole", [data])
                await asyncio.to_thread(
                    self.store.commit, artifact_id, ["whole"], request.headers.get("x-ms-blob-content-type")
                )
            else:
                raise ArtifactError("invalid_argument", f"comp={comp} is not supported")
        except ArtifactError as error:
            return _blob_error(error)
        return Response(status_code=201, headers=_blob_headers())

    async def _get_blob(self, request: Request) -> Response:
        artifact_id: int = request.path_params["artifact"]
        try:
            self._check_signature(request, artifact_id, "r")
            artifact = await asyncio.to_thread(self.store.finalized, artifact_id)
        except ArtifactError as error:
            return _blob_error(error)
        filename = request.path_params["filename"]
        return FileResponse(
            self.store.content(artifact.id),
            media_type=artifact.mime_type,
            headers={**_blob_headers(), "content-disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
        )


def _field(body: dict[str, Any], name: str) -> str | None:
    """A field of a Twirp JSON request by its proto name or its JSON (lowerCamel) name; wrappers unwrapped."""
    camel = name.split("_")[0] + "".join(part.title() for part in name.split("_")[1:])
    value = body.get(name, body.get(camel))
    if isinstance(value, dict):
        value = value.get("value")
    return None if value is None else str(value)


def _required(body: dict[str, Any], name: str) -> str:
    value = _field(body, name)
    if not value:
        raise ArtifactError("invalid_argument", f"{name} is required")
    return value


def _timestamp(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        raise ArtifactError("invalid_argument", f"{text!r} is not an RFC 3339 time") from None


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _block_list(document: bytes) -> list[str]:
    """The block ids of a `Put Block List` body, in order (`Latest`, `Committed` and `Uncommitted` alike)."""
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as error:
        raise ArtifactError("invalid_argument", f"the block list is not XML: {error}") from None
    return [element.text or "" for element in root if element.tag in ("Latest", "Committed", "Uncommitted")]


def _blob_headers() -> dict[str, str]:
    return {"x-ms-version": "2024-11-04", "x-ms-request-server-encrypted": "false", "date": _http_date()}


def _http_date() -> str:
    return datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def _blob_error(error: ArtifactError) -> Response:
    """An error as Azure's Blob service words it: an XML `Error` with a code and a message."""
    code = {"not_found": "BlobNotFound", "permission_denied": "AuthenticationFailed"}.get(error.code, "InvalidInput")
    message = escape(str(error))
    body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(
        body, status_code=_STATUS.get(error.code, 400), media_type="application/xml", headers={"x-ms-error-code": code}
    )


def _twirp_error(code: str, message: str, *, status: int | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "msg": message}, status_code=status or _STATUS.get(code, 500))
