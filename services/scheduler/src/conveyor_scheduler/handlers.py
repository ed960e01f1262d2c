"""The scheduler's handler: keep each run's state from the log, decide, and return what follows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import reduce

from conveyor_events import (
    Envelope,
    Event,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    RunCancelRequested,
    RunCompleted,
    RunEvent,
    RunPlanned,
    RunRejected,
    RunRequested,
    deterministic_id,
)
from conveyor_runtime import Consumer, EventLog

from conveyor_scheduler.domain import RunState, decide, evolve

CONSUMER = "scheduler"
_STATE_EVENTS: tuple[type[Event], ...] = (
    RunRequested,
    RunPlanned,
    RunRejected,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    JobCompleted,
    RunCancelRequested,
    RunCompleted,
)
_STATE_TYPES = [cls.event_type() for cls in _STATE_EVENTS]


@dataclass
class Scheduler:
    """Holds the state of the runs in progress; a run it has not seen is rebuilt from its stream."""

    log: EventLog
    runs: dict[str, RunState] = field(default_factory=dict)

    async def on_event(self, envelope: Envelope) -> Sequence[Envelope]:
        event = envelope.event
        if not isinstance(event, RunEvent):
            return []
        state = self.runs.get(event.run_id)
        if state is None:
            # A run's first event has no history to rebuild; a later one means this scheduler restarted.
            fresh = envelope.sequence == 1
            state = RunState(run_id=event.run_id) if fresh else await self._rebuild(event.run_id, envelope.position)
        state = evolve(state, event)
        decisions = decide(state, event)
        state = reduce(evolve, decisions, state)
        if state.conclusion is None:
            self.runs[event.run_id] = state
        else:
            self.runs.pop(event.run_id, None)
        return [
            Envelope.wrap(decision, stream=event.run_id, cause=envelope, event_id=_decision_id(decision))
            for decision in decisions
        ]

    async def _rebuild(self, run_id: str, before: int) -> RunState:
        history = await self.log.read_stream(run_id, types=_STATE_TYPES)
        return reduce(evolve, (e.event for e in history if e.position < before), RunState(run_id=run_id))

    def consumer(self) -> Consumer:
        reacts_to = (RunRequested, RunPlanned, JobPlanned, RunRejected, JobStarted, JobCompleted, RunCancelRequested)
        return Consumer(CONSUMER, dict.fromkeys(reacts_to, self.on_event))


def _decision_id(decision: RunEvent) -> str:
    """The same decision about the same job always gets the same id, so a redelivery cannot repeat it."""
    job_id = getattr(decision, "job_id", "")
    attempt = getattr(decision, "attempt", 1)
    return deterministic_id(decision.run_id, decision.event_type(), job_id, attempt)
