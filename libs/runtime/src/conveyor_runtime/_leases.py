"""Runner leases: exactly one runner holds an attempt of a job, and keeps it by renewing it.

A runner claims a queued attempt by appending `JobAssigned` to the run's stream with the stream's version as
the expected version, so of two runners that read the same free attempt only one append succeeds; the other
re-reads and finds it taken. Should two assignments ever be stored, the first one holds the attempt, as the
scheduler's state says too; a claim reads back which one that is before it reports success. The scheduler
expires a lease that is not renewed within its lease period (`JobLost`) and its retry policy decides what
follows.

The in-process runner agent and the HTTP lease endpoints both go through these functions.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, TypeVar

from conveyor_events import (
    Envelope,
    Event,
    JobAssigned,
    JobCancelRequested,
    JobCompleted,
    JobLost,
    JobQueued,
    JobTimedOut,
    LeaseRenewed,
    deterministic_id,
)

from conveyor_runtime._log import ConcurrencyError, EventLog

LEASE_PERIOD = timedelta(minutes=2)
"""How long a lease lives without a renewal: the scheduler's policy says the same by default."""
ANY_LABEL = "*"
"""A runner with this label takes a job whose `runs-on` says anything."""

LeaseState = Literal["current", "cancelled", "lost", "timed out", "completed", "unknown"]
_WINDING_DOWN: frozenset[LeaseState] = frozenset({"current", "cancelled", "timed out"})
"""States in which the runner still holds the attempt and renews its lease."""
"""`current`: held and running on · `cancelled`: held, asked to stop (it still winds down) · `lost`,
`timed out`, `completed`: the attempt ended · `unknown`: no such lease on the attempt."""

_ATTEMPT_TYPES = [
    cls.event_type()
    for cls in (JobQueued, JobAssigned, JobCancelRequested, JobCompleted, JobLost, JobTimedOut)
]
_TAKEN = (JobAssigned, JobCompleted, JobLost, JobTimedOut)
_ENDED: dict[type[Event], LeaseState] = {JobLost: "lost", JobTimedOut: "timed out", JobCompleted: "completed"}
_E = TypeVar("_E", bound=Event)


@dataclass(frozen=True)
class Lease:
    """One runner's hold on one attempt of one job."""

    lease_id: str
    runner_id: str
    run_id: str
    job_id: str
    attempt: int
    queued: Envelope
    """The `JobQueued` the attempt began with: what a runner needs to run it, and the cause of its events."""


def covers(runner_labels: Iterable[str], job_labels: Iterable[str]) -> bool:
    """Whether a runner with `runner_labels` may take a job that `runs-on` `job_labels` (case-insensitive)."""
    offered = {label.lower() for label in runner_labels}
    return ANY_LABEL in offered or {label.lower() for label in job_labels} <= offered


def lease_id_for(run_id: str, job_id: str, attempt: int, runner_id: str) -> str:
    return deterministic_id("lease", run_id, job_id, attempt, runner_id)


async def claim(
    log: EventLog, run_id: str, job_id: str, attempt: int, runner_id: str, labels: Collection[str]
) -> Lease | None:
    """Lease the queued attempt to the runner; None when it is not free or the runner lacks its labels.

    The stream is read with only the types that decide (a run's logs can be long). The version to expect is
    the last sequence read, or the version a refused append reported: an append that succeeds at that version
    proves nothing was written after the read, so the attempt was still free when it was taken.
    """
    version = 0
    while True:
        history = await log.read_stream(run_id, types=_ATTEMPT_TYPES)
        version = max([version, *(envelope.sequence for envelope in history)])
        queued = _free(history, job_id, attempt)
        if queued is None or not covers(labels, _event(queued, JobQueued).labels):
            return None
        lease_id = lease_id_for(run_id, job_id, attempt, runner_id)
        assigned = JobAssigned(run_id=run_id, job_id=job_id, attempt=attempt, runner_id=runner_id, lease_id=lease_id)
        # A fresh id per claim, even for one runner polling twice at once: an id the stream already holds would
        # be answered from the stream without the version check.
        event_id = str(uuid.uuid4())
        try:
            await log.append(
                [Envelope.wrap(assigned, stream=run_id, event_id=event_id, cause=queued)], expected_version=version
            )
        except ConcurrencyError as moved:
            version = moved.actual
            continue
        if await _holder(log, run_id, job_id, attempt) != event_id:
            return None
        return Lease(lease_id, runner_id, run_id, job_id, attempt, queued)


async def lease_state(log: EventLog, run_id: str, job_id: str, attempt: int, lease_id: str) -> LeaseState:
    """Where the lease stands, read from the run's stream."""
    history = await log.read_stream(run_id, types=_ATTEMPT_TYPES)
    return _state(history, job_id, attempt, lease_id)


async def renew(log: EventLog, lease: Lease, state: LeaseState | None = None) -> LeaseState:
    """Append `LeaseRenewed` while the runner still holds the lease; the state the lease was found in (`state`,
    when the caller has just read it).

    A cancelled or timed-out attempt is still renewed: its runner winds it down (`if: always()` steps) and
    reports its end, which the run waits for.
    """
    if state is None:
        state = await lease_state(log, lease.run_id, lease.job_id, lease.attempt, lease.lease_id)
    if state in _WINDING_DOWN:
        renewed = LeaseRenewed(run_id=lease.run_id, job_id=lease.job_id, attempt=lease.attempt, lease_id=lease.lease_id)
        await log.append([Envelope.wrap(renewed, stream=lease.run_id, cause=lease.queued)])
    return state


async def held_lease(log: EventLog, run_id: str, job_id: str, attempt: int, lease_id: str) -> Lease | None:
    """The lease as its `JobAssigned` recorded it, or None when the attempt has no such lease."""
    found = await held_lease_state(log, run_id, job_id, attempt, lease_id)
    return None if found is None else found[0]


async def held_lease_state(
    log: EventLog, run_id: str, job_id: str, attempt: int, lease_id: str
) -> tuple[Lease, LeaseState] | None:
    """The lease as its `JobAssigned` recorded it and where it stands, from one read of the run's stream; None
    when the attempt has no such lease."""
    history = await log.read_stream(run_id, types=_ATTEMPT_TYPES)
    mine = _of(history, job_id, attempt)
    queued = next((envelope for envelope in mine if isinstance(envelope.event, JobQueued)), None)
    assigned = next(
        (e.event for e in mine if isinstance(e.event, JobAssigned) and e.event.lease_id == lease_id), None
    )
    if queued is None or assigned is None:
        return None
    lease = Lease(lease_id, assigned.runner_id, run_id, job_id, attempt, queued)
    return lease, _state(history, job_id, attempt, lease_id)


async def _holder(log: EventLog, run_id: str, job_id: str, attempt: int) -> str | None:
    """The event id of the attempt's first `JobAssigned`: the claim that holds it."""
    history = await log.read_stream(run_id, types=[JobAssigned.event_type()])
    return next((envelope.event_id for envelope in _of(history, job_id, attempt)), None)


def _of(history: list[Envelope], job_id: str, attempt: int) -> list[Envelope]:
    return [
        envelope
        for envelope in history
        if getattr(envelope.event, "job_id", None) == job_id and getattr(envelope.event, "attempt", None) == attempt
    ]


def _free(history: list[Envelope], job_id: str, attempt: int) -> Envelope | None:
    """The attempt's `JobQueued` when nothing has taken or ended the attempt since.

    A completed run is no reason to refuse: a re-run queues new attempts of its jobs.
    """
    mine = _of(history, job_id, attempt)
    if any(isinstance(envelope.event, _TAKEN) for envelope in mine):
        return None
    return next((envelope for envelope in mine if isinstance(envelope.event, JobQueued)), None)


def _state(history: list[Envelope], job_id: str, attempt: int, lease_id: str) -> LeaseState:
    mine = [envelope.event for envelope in _of(history, job_id, attempt)]
    if not any(isinstance(event, JobAssigned) and event.lease_id == lease_id for event in mine):
        return "unknown"
    endings = [_ENDED[type(event)] for event in mine if type(event) in _ENDED]
    # A timeout tells the runner to stop; the attempt ends with what the runner (or the scheduler) reports.
    final = next((ending for ending in endings if ending != "timed out"), None)
    if final is not None or endings:
        return final or "timed out"
    return "cancelled" if any(isinstance(event, JobCancelRequested) for event in mine) else "current"


def _event(envelope: Envelope, cls: type[_E]) -> _E:
    event = envelope.event
    assert isinstance(event, cls)
    return event
