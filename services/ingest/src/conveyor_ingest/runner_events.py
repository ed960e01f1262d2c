"""What a remote runner may append through its lease: the events of the attempt it holds, of the kinds a runner makes.

A runner reports the job it runs with the same events the in-process runner appends to the log. Over HTTP the
edge checks each one belongs to the leased run, job and attempt, so a runner's credential writes nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conveyor_events import (
    ArtifactDeleted,
    ArtifactUploaded,
    Envelope,
    JobCompleted,
    JobStarted,
    StepCompleted,
    StepLogged,
    StepStarted,
    envelope_from_dict,
)
from conveyor_runtime import Lease
from pydantic import BaseModel, ConfigDict, Field, ValidationError

RUNNER_EVENTS = (JobStarted, StepStarted, StepLogged, StepCompleted, JobCompleted, ArtifactUploaded, ArtifactDeleted)
"""The events a runner appends while it runs a job (`conveyor_runner_agent.job` makes these and no others)."""
MAX_BATCH = 1000


class EventBatch(BaseModel):
    """Events of one leased attempt, in the order they are to be appended (envelopes in their JSON form)."""

    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] = Field(max_length=MAX_BATCH)


class RefusedEvent(ValueError):
    """An event of the batch the lease does not allow: the message names it and says why."""


def lease_events(batch: EventBatch, lease: Lease) -> list[Envelope]:
    """The batch's envelopes, if every one is an event a runner makes of the leased attempt; `RefusedEvent` if not."""
    envelopes: list[Envelope] = []
    for index, document in enumerate(batch.events):
        named = f"event {index} ({document.get('type', '?')}, id {document.get('event_id', '?')})"
        try:
            envelope = envelope_from_dict(document)
        except (KeyError, TypeError, ValueError, ValidationError) as error:
            raise RefusedEvent(f"{named} is not an event envelope: {error}") from None
        if problem := _mismatch(envelope, lease):
            raise RefusedEvent(f"{named} {problem}")
        envelopes.append(envelope)
    return envelopes


def stored_already(envelopes: Sequence[Envelope], stored: Sequence[Envelope]) -> bool:
    """Whether every envelope's id is among `stored`: a batch sent again after its answer was lost."""
    ids = {envelope.event_id for envelope in stored}
    return all(envelope.event_id in ids for envelope in envelopes)


def _mismatch(envelope: Envelope, lease: Lease) -> str | None:
    event = envelope.event
    if not isinstance(event, RUNNER_EVENTS):
        allowed = ", ".join(cls.__name__ for cls in RUNNER_EVENTS)
        return f"is not an event a runner appends (those are {allowed})"
    if (envelope.stream, event.run_id) != (lease.run_id, lease.run_id):
        return f"is of run {event.run_id!r} (stream {envelope.stream!r}), not of the leased run {lease.run_id!r}"
    if (event.job_id, event.attempt) != (lease.job_id, lease.attempt):
        return (
            f"is of job {event.job_id!r}, attempt {event.attempt}, "
            f"not of the leased job {lease.job_id!r}, attempt {lease.attempt}"
        )
    if isinstance(event, JobStarted) and event.runner_id != lease.runner_id:
        return f"names the runner {event.runner_id!r}, not the lease's {lease.runner_id!r}"
    return None
