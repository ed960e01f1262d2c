"""`POST /webhooks/github`: a signed delivery from GitHub becomes a `RunRequested`, once per delivery.

A delivery is checked before anything is decided on it: size, JSON, then the signature with the secret of
the repository it names. Its run id and event id derive from the repository and the delivery id, so the log
(an event id is unique in its stream) keeps one run however often GitHub redelivers it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

from conveyor_events import Envelope, RunRequested, SealedSecret
from conveyor_runtime import EventLog, GitRemotes
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from conveyor_ingest.adapters import GitError, resolve_ref
from conveyor_ingest.dispatch import typed_inputs, workflow_path
from conveyor_ingest.domain import run_id_for, webhook_event_id
from conveyor_ingest.github_events import Ignored, PayloadError, Trigger, repository_full_name, trigger_for
from conveyor_ingest.queries import Queries
from conveyor_ingest.sealing import KeyWrapper, SecretKeyError, secret_context, unseal
from conveyor_ingest.signatures import signature_valid

MAX_BODY_BYTES = 25 * 1024 * 1024
"""GitHub caps payloads at 25 MB and delivers nothing larger, so a larger body is not GitHub's."""

logger = logging.getLogger(__name__)


class _Locks:
    """One lock per key, gone when no one holds or waits for it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            yield


def webhooks_router(log: EventLog, queries: Queries, keys: KeyWrapper, remotes: GitRemotes | None = None) -> APIRouter:
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])
    # Appends of one delivery in flight together would land in one commit and each get its own envelope
    # back; one at a time, a repeat gets the stored envelope, which is how it knows it is a repeat.
    deliveries = _Locks()

    @router.post("/github", status_code=202)
    async def github(request: Request) -> JSONResponse:
        """Verify a GitHub delivery and request the run it asks for: 202 with the run's id."""
        body = await _body(request)
        payload = _payload(body, request.headers.get("content-type", ""))
        event_name = request.headers.get("x-github-event")
        if not event_name:
            raise HTTPException(400, "no X-GitHub-Event header: which event is this?")
        repository = await _verified(queries, keys, payload, body, request.headers.get("x-hub-signature-256"))
        if event_name == "ping":
            return JSONResponse({"ok": True, "zen": payload.get("zen")}, status_code=200)
        try:
            decision = trigger_for(event_name, payload)
        except PayloadError as error:
            raise HTTPException(400, str(error)) from error
        if isinstance(decision, Ignored):
            return JSONResponse({"ignored": decision.reason}, status_code=200)
        requested = await _run_requested(repository, decision, event_name, payload, request, remotes or GitRemotes())
        envelope = Envelope.wrap(requested, stream=requested.run_id, event_id=webhook_event_id(requested.run_id))
        async with deliveries.hold(requested.run_id):
            [stored] = await log.append([envelope])
        duplicate = stored.traceparent != envelope.traceparent
        return JSONResponse({"id": requested.run_id, "duplicate": duplicate}, status_code=202)

    return router


async def _body(request: Request) -> bytes:
    """The raw body, refused (413) past the cap by its declared length or, when that lies, while reading."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _payload(body: bytes, content_type: str) -> dict[str, Any]:
    """The JSON payload, sent as JSON or (GitHub's other content type) as the form field `payload`."""
    text: str | bytes = body
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qs(body.decode("utf-8", errors="replace"))
        if "payload" not in fields:
            raise HTTPException(400, "a form-encoded delivery needs a 'payload' field")
        text = fields["payload"][0]
    try:
        payload = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HTTPException(400, f"the payload is not valid JSON: {error}") from error
    if not isinstance(payload, dict):
        raise HTTPException(400, f"the payload must be a JSON object, not {type(payload).__name__}")
    return payload


async def _verified(
    queries: Queries, keys: KeyWrapper, payload: dict[str, Any], body: bytes, header: str | None
) -> dict[str, Any]:
    """The registered repository whose webhook secret signed `body`; 401 when there is none.

    Every refusal reads the same, so a caller without the secret learns nothing about what is registered.
    """
    full_name = repository_full_name(payload)
    candidates = await queries.github_repositories(full_name) if full_name and header else []
    for repository in candidates:
        if repository["webhook_secret"] is None:
            continue
        sealed = SealedSecret.model_validate_json(repository["webhook_secret"])
        try:
            secret = unseal(sealed, keys, context=secret_context(repository["name"], "webhook_secret"))
        except SecretKeyError as error:
            logger.error("cannot check a delivery for %s: %s", repository["name"], error)
            raise HTTPException(500, "the repository's webhook secret cannot be opened; see the server log") from None
        if signature_valid(secret, body, header):
            return repository
    raise HTTPException(401, "the X-Hub-Signature-256 signature does not match a registered repository's secret")


async def _run_requested(
    repository: dict[str, Any],
    trigger: Trigger,
    event_name: str,
    payload: dict[str, Any],
    request: Request,
    remotes: GitRemotes,
) -> RunRequested:
    delivery_id = request.headers.get("x-github-delivery") or None
    sha = trigger.sha
    if sha is None:
        try:
            url = str(repository["url"])
            _, sha = await asyncio.to_thread(lambda: resolve_ref(url, trigger.ref, token=remotes.token(url)))
        except GitError:
            sha = trigger.ref  # accepted all the same: the planner cannot read it and rejects the run, saying so
    inputs, workflows = trigger.inputs, []
    if event_name == "workflow_dispatch" and trigger.workflow:
        workflows = [workflow_path(trigger.workflow)]
        url = str(repository["url"])
        inputs = await asyncio.to_thread(typed_inputs, url, str(sha), workflows[0], trigger.inputs, remotes)
    return RunRequested(
        run_id=run_id_for(repository["name"], delivery_id),
        repository=repository["url"],
        repository_name=repository.get("github") or None,
        default_branch=str(repository.get("default_branch") or ""),
        ref=trigger.ref,
        sha=sha,
        event_name=event_name,
        payload=payload,
        inputs=inputs,
        workflows=workflows,
        actor=trigger.actor,
        delivery_id=delivery_id,
        fork=trigger.fork,
    )
