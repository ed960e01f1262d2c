"""Conveyor's events and their envelope: the only contract between services.

Events are frozen pydantic models named in the past tense. Each has a schema version; data of older versions
is upcast on read, and data of newer versions or with unknown fields is kept rather than dropped.
"""

from conveyor_events._base import Event, RunEvent, UnknownEvent, event_class, upcast, upcaster
from conveyor_events._envelope import (
    Envelope,
    child_traceparent,
    decode_event,
    deterministic_id,
    envelope_from_dict,
    envelope_from_json,
    new_traceparent,
)
from conveyor_events._events import (
    Conclusion,
    EventDeadLettered,
    JobAssigned,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    LogLine,
    NeedResult,
    Problem,
    RepositoryRegistered,
    RunCancelRequested,
    RunCompleted,
    RunPlanned,
    RunRejected,
    RunRequested,
    StepCompleted,
    StepLogged,
    StepStarted,
)

__all__ = [
    "Conclusion",
    "Envelope",
    "Event",
    "EventDeadLettered",
    "JobAssigned",
    "JobCompleted",
    "JobPlanned",
    "JobQueued",
    "JobSkipped",
    "JobStarted",
    "LogLine",
    "NeedResult",
    "Problem",
    "RepositoryRegistered",
    "RunCancelRequested",
    "RunCompleted",
    "RunEvent",
    "RunPlanned",
    "RunRejected",
    "RunRequested",
    "StepCompleted",
    "StepLogged",
    "StepStarted",
    "UnknownEvent",
    "child_traceparent",
    "decode_event",
    "deterministic_id",
    "envelope_from_dict",
    "envelope_from_json",
    "event_class",
    "new_traceparent",
    "upcast",
    "upcaster",
]
