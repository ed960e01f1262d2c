"""Runners over HTTP: register with labels, long-poll for a lease on a queued job, heartbeat while running it,
and report the job with the events a runner appends.

A lease is taken with the same `claim` the in-process runner agent uses, so however many runners ask, one
attempt goes to one of them. A runner that stops heartbeating loses its lease when the scheduler's lease
period runs out; the job's `retry:` then decides whether another runner gets a new attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Annotated, Any

from conveyor_events import (
    ACCESS_STREAM,
    RUNNERS_STREAM,
    Envelope,
    JobPlanned,
    JobQueued,
    JobTimedOut,
    RunnerCredentialIssued,
    RunnerRegistered,
    RunnerSeen,
    RunRequested,
)
from conveyor_runtime import EventLog, Lease, LeaseState, claim, covers, held_lease, held_lease_state, renew
from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from conveyor_ingest.access import RUNNER_PREFIX, Access, Reader, new_secret, secret_hash
from conveyor_ingest.queries import Queries
from conveyor_ingest.runner_events import EventBatch, RefusedEvent, lease_events, stored_already

SEEN_EVERY = 30.0
"""Seconds between two `RunnerSeen` of one runner: a runner polling in a loop does not flood the log."""
WINDING_DOWN: tuple[LeaseState, ...] = ("current", "cancelled", "timed out")
"""Lease states in which the runner still reports the attempt: a stopped attempt still runs `if: always()` steps."""
REMEMBERED_LEASES = 4096
"""Leases remembered, as handed out or found in the read models: which run, job, attempt and runner a lease id
names never changes, and a runner asks about its lease with every heartbeat and every report."""
LeaseName = tuple[str, str, int, str]
"""What a lease id names: run, job, attempt, runner."""


class RunnerRequest(BaseModel):
    """A runner joining: its name, and the `runs-on` labels it satisfies (`*` for any)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    labels: list[str] = Field(default_factory=list, max_length=100)


def runners_router(log: EventLog, queries: Queries, access: Access) -> APIRouter:
    """Registering takes admin on `*` and answers with the runner's credential, which alone leases and heartbeats
    for that runner: an API token with every role cannot take a job in a runner's name."""
    router = APIRouter(prefix="/api/runners", tags=["runners"])
    itself = [Depends(access.runner())]
    last_seen: dict[str, float] = {}
    leases: OrderedDict[str, LeaseName] = OrderedDict()

    def remember(lease_id: str, named: LeaseName) -> LeaseName:
        leases[lease_id] = named
        while len(leases) > REMEMBERED_LEASES:
            leases.popitem(last=False)
        return named

    async def leased(held: Lease) -> JSONResponse:
        remember(held.lease_id, (held.run_id, held.job_id, held.attempt, held.runner_id))
        return await _leased(log, held)

    async def looked_up(runner_id: str, lease_id: str) -> LeaseName | None:
        await known(runner_id)
        found = await queries.lease(lease_id)
        if found is None:
            # Handed out by another ingest, a lease may not be in the read models yet.
            with contextlib.suppress(TimeoutError):
                await queries.caught_up(await log.head())
            found = await queries.lease(lease_id)
        if found is None:
            return None
        return remember(lease_id, (found["run"], found["job"], found["attempt"], found["runner"]))

    async def known(runner_id: str) -> dict[str, Any]:
        runner = await queries.runner(runner_id, datetime.now(UTC))
        if runner is None:
            raise HTTPException(404, f"no runner '{runner_id}': register it first with POST /api/runners")
        return runner

    async def seen(runner_id: str) -> None:
        now = time.monotonic()
        if now - last_seen.get(runner_id, -SEEN_EVERY) >= SEEN_EVERY:
            last_seen[runner_id] = now
            await log.append([Envelope.wrap(RunnerSeen(runner_id=runner_id), stream=RUNNERS_STREAM)])

    @router.get("")
    async def list_runners(token: Reader) -> list[dict[str, Any]]:
        """Every runner; of the leases they hold, only those on runs the token may read."""
        readable = await access.readable_runs(token)
        runners = await queries.runners(datetime.now(UTC))
        for runner in runners:
            runner["leases"] = [lease for lease in runner["leases"] if await readable(lease["run"])]
            runner["job"] = runner["leases"][0] if runner["leases"] else None
        return runners

    @router.post("", status_code=201, dependencies=[Depends(access.on_every_repository("admin"))])
    async def register(body: RunnerRequest) -> dict[str, str]:
        """The runner's id and its credential: shown here once, kept nowhere but as a hash."""
        registered = RunnerRegistered(runner_id=str(uuid.uuid4()), name=body.name, labels=body.labels)
        credential = new_secret(RUNNER_PREFIX)
        issued = RunnerCredentialIssued(runner_id=registered.runner_id, credential_hash=secret_hash(credential))
        await log.append([Envelope.wrap(issued, stream=ACCESS_STREAM)])
        [stored] = await log.append([Envelope.wrap(registered, stream=RUNNERS_STREAM)])
        await queries.caught_up(stored.position)
        return {"id": registered.runner_id, "credential": credential}

    @router.post(
        "/{runner_id}/lease",
        response_model=None,
        responses={204: {"description": "no job came"}},
        dependencies=itself,
    )
    async def lease(
        runner_id: str,
        wait: Annotated[float, Query(ge=0, le=60, description="seconds to wait for a job when none is queued")] = 0,
    ) -> Response:
        labels: list[str] = (await known(runner_id))["labels"]
        await seen(runner_id)
        head = await log.head()
        with contextlib.suppress(TimeoutError):
            await queries.caught_up(head)  # a job queued before `head` is in the read model, or in what follows
        # A lease the runner holds but never started is one whose answer it did not get (the server stopped
        # between the claim and the answer, or the runner did before reading it): it is handed over again.
        for lease in await queries.unstarted_leases(runner_id):
            again = await held_lease(log, lease["run"], lease["job"], lease["attempt"], lease["lease_id"])
            if again is not None:
                return await leased(again)
        for run_id, job_id, attempt in await queries.queued_for(labels):
            if (held := await claim(log, run_id, job_id, attempt, runner_id, labels)) is not None:
                return await leased(held)
        held = await _next_claim(log, runner_id, labels, after=head, wait=wait)
        return Response(status_code=204) if held is None else await leased(held)

    async def holding(runner_id: str, lease_id: str) -> tuple[Lease, LeaseState]:
        """The runner's lease and where it stands; 404 when the runner holds no such lease."""
        named = leases.get(lease_id) or await looked_up(runner_id, lease_id)
        held = None
        if named is not None and named[3] == runner_id:
            held = await held_lease_state(log, *named[:3], lease_id)
        if held is None:
            raise HTTPException(404, f"runner '{runner_id}' holds no lease '{lease_id}'")
        return held

    @router.post("/{runner_id}/leases/{lease_id}/heartbeat", dependencies=itself)
    async def heartbeat(runner_id: str, lease_id: str) -> dict[str, Any]:
        """Renew the lease; 410 once the attempt was cancelled, timed out, lost or completed (the
        `Conveyor-Lease-State` header says which, `Conveyor-Timeout-Minutes` the limit a timed-out job outlived)."""
        held, state = await holding(runner_id, lease_id)
        return await _current(log, held, await renew(log, held, state))

    @router.get("/{runner_id}/leases/{lease_id}", dependencies=itself)
    async def lease_now(runner_id: str, lease_id: str) -> dict[str, Any]:
        """Whether the lease still holds, without renewing it: a runner asks this often, to stop a cancelled job
        within seconds, and renews its lease seldom. 410 as the heartbeat answers it."""
        return await _current(log, *await holding(runner_id, lease_id))

    @router.post("/{runner_id}/leases/{lease_id}/events", dependencies=itself)
    async def report(runner_id: str, lease_id: str, body: EventBatch) -> dict[str, Any]:
        """Append the attempt's events in order; an event whose id is stored already is not stored again, so a
        batch sent again is harmless. 410 once the attempt was lost or completed, unless the batch was stored."""
        held, state = await holding(runner_id, lease_id)
        try:
            envelopes = lease_events(body, held)
        except RefusedEvent as refused:
            raise HTTPException(422, str(refused)) from None
        if not envelopes:
            return {"positions": []}
        if state not in WINDING_DOWN:
            stored = await log.read_stream(held.run_id, types={envelope.type for envelope in envelopes})
            if not stored_already(envelopes, stored):
                detail = f"the lease is over: the attempt was {state}; its events are no longer taken"
                raise HTTPException(410, detail, headers={"Conveyor-Lease-State": state})
        appended = await log.append(envelopes)
        return {"positions": [envelope.position for envelope in appended]}

    return router


async def _next_claim(
    log: EventLog, runner_id: str, labels: list[str], *, after: int, wait: float
) -> Lease | None:
    """The first attempt queued after `after` that the runner claims within `wait` seconds, or None.

    Only the waiting is timed: a claim under way finishes, lest an attempt be taken and nobody told.
    """
    deadline = asyncio.get_running_loop().time() + wait
    queued = log.subscribe(after, types=[JobQueued.event_type()])
    try:
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    envelope = await anext(queued)
            except (TimeoutError, StopAsyncIteration):
                return None
            job = envelope.event
            assert isinstance(job, JobQueued)
            if covers(labels, job.labels):
                held = await claim(log, job.run_id, job.job_id, job.attempt, runner_id, labels)
                if held is not None:
                    return held
    finally:
        if isinstance(queued, AsyncGenerator):
            await queued.aclose()


async def _current(log: EventLog, held: Lease, state: LeaseState) -> dict[str, Any]:
    """The lease's state when it is current; else 410, with its state and any time limit outlived as headers."""
    if state != "current":
        headers: dict[str, str] = {"Conveyor-Lease-State": state}
        if state == "timed out" and (minutes := await _timeout_minutes(log, held)) is not None:
            headers["Conveyor-Timeout-Minutes"] = f"{minutes:g}"
        raise HTTPException(410, f"the lease is over: the attempt was {state}; stop the job", headers=headers)
    return {"lease_id": held.lease_id, "state": state}


async def _timeout_minutes(log: EventLog, held: Lease) -> float | None:
    """The limit the scheduler found the attempt outlived, from its `JobTimedOut`."""
    history = await log.read_stream(held.run_id, types=[JobTimedOut.event_type()])
    limits = [
        envelope.event.limit_minutes
        for envelope in history
        if isinstance(envelope.event, JobTimedOut)
        and (envelope.event.job_id, envelope.event.attempt) == (held.job_id, held.attempt)
    ]
    return limits[-1] if limits else None


async def _leased(log: EventLog, held: Lease) -> JSONResponse:
    """The leased attempt with all a remote runner needs to run it."""
    history = await log.read_stream(held.run_id, types=[RunRequested.event_type(), JobPlanned.event_type()])
    request = next(e for e in history if isinstance(e.event, RunRequested))
    plan = next(e for e in history if isinstance(e.event, JobPlanned) and e.event.job_id == held.job_id)
    return JSONResponse(
        {
            "lease_id": held.lease_id,
            "run_id": held.run_id,
            "job_id": held.job_id,
            "attempt": held.attempt,
            "queued": json.loads(held.queued.to_json()),
            "request": json.loads(request.to_json()),
            "plan": json.loads(plan.to_json()),
        }
    )
