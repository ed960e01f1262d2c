"""The scheduler's handler: keep the state of every run in progress from the log, decide, return what follows.

The clock is the log's: each event is preceded by a `Tick` at its envelope's time, so a run rebuilt from its
stream has the same deadlines. `tick(now)` (for a timer loop) and `offer(runner, labels)` (for the lease
endpoint) return decisions the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import groupby

from conveyor_events import (
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    ConcurrencyAcquired,
    ConcurrencyCancelled,
    ConcurrencyWaited,
    Envelope,
    Event,
    JobAssigned,
    JobCancelRequested,
    JobCompleted,
    JobLost,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    JobTimedOut,
    LeaseRenewed,
    MatrixExpanded,
    RunCancelRequested,
    RunCompleted,
    RunEvent,
    RunNumbered,
    RunPlanned,
    RunRejected,
    RunRequested,
    RunRerunRequested,
    RunTimedOut,
    WaitTimerStarted,
    deterministic_id,
    event_json,
)
from conveyor_runtime import Consumer, EventLog

from conveyor_scheduler.domain import Policy, Runs, SchedulerState, Tick, assign, at, evolve, numbered, settle

logger = logging.getLogger(__name__)

CONSUMER = "scheduler"
_REACTS_TO: tuple[type[Event], ...] = (
    RunRequested,
    RunPlanned,
    JobPlanned,
    RunRejected,
    JobAssigned,
    LeaseRenewed,
    JobStarted,
    JobCompleted,
    JobLost,
    RunCancelRequested,
    RunRerunRequested,
    ApprovalGranted,
    ApprovalRejected,
)
_DECIDED: tuple[type[Event], ...] = (
    JobQueued,
    JobSkipped,
    JobCancelRequested,
    JobTimedOut,
    RunTimedOut,
    RunCompleted,
    ApprovalRequested,
    WaitTimerStarted,
    ConcurrencyWaited,
    ConcurrencyAcquired,
    ConcurrencyCancelled,
    MatrixExpanded,
    RunNumbered,
)
_STATE_TYPES = [cls.event_type() for cls in (*_REACTS_TO, *_DECIDED)]


@dataclass
class Scheduler:
    """Holds the state of the runs in progress; a run it has not seen is rebuilt from its stream."""

    log: EventLog
    policy: Policy = field(default_factory=Policy)
    state: SchedulerState = field(init=False)

    def __post_init__(self) -> None:
        self.state = SchedulerState(policy=self.policy)

    async def recover(self) -> int:
        """Rebuild every run that was still open at this scheduler's checkpoint; how many there were.

        A restarted scheduler otherwise learns of a run only from the run's next event, and a run that gets
        none (its runner died holding the lease, its job waits out a timeout) would never hear the clock.
        The run numbers given so far are counted too, also those decided after the checkpoint.
        """
        saved = await self.log.checkpoint(CONSUMER)
        opened: dict[str, None] = {}
        late: list[RunNumbered] = []
        after = 0
        kinds = [
            RunRequested.event_type(),
            RunRerunRequested.event_type(),
            RunCompleted.event_type(),
            RunNumbered.event_type(),
        ]
        while batch := await self.log.read(after, 5000, types=kinds):
            for envelope in batch:
                if isinstance(envelope.event, RunNumbered):
                    self.state = numbered(self.state, envelope.event)
                    if envelope.position > saved:
                        late.append(envelope.event)
                elif envelope.position > saved:
                    continue
                elif isinstance(envelope.event, RunCompleted):
                    opened.pop(envelope.event.run_id, None)
                else:
                    opened[envelope.stream] = None
            after = batch[-1].position
        for run_id in opened:
            if run_id not in self.state.runs:
                await self._rebuild(run_id, saved + 1)
        for event in late:  # decided with the checkpoint's last event: a run keeps its number when it is rebuilt
            if event.run_id in self.state.runs:
                self.state = evolve(self.state, event)
        return len(opened)

    async def on_event(self, envelope: Envelope) -> Sequence[Envelope]:
        event = envelope.event
        if not isinstance(event, RunEvent):
            return []
        if event.run_id not in self.state.runs and envelope.sequence != 1:
            # A run's first event has no history to rebuild; a later one means this scheduler restarted.
            await self._rebuild(event.run_id, envelope.position)
        before = self.state.runs.get(event.run_id)
        self.state = evolve(at(self.state, envelope.occurred_at), event)
        if self.state.runs.get(event.run_id) is before:
            _log_ignored(envelope, event, known=before is not None)
        return self._decide(event, cause=envelope)

    def tick(self, now: datetime) -> Sequence[Envelope]:
        """What the clock decides at `now`: timeouts, expired leases, wait timers that ran out."""
        tick = Tick(now)
        self.state = evolve(self.state, tick)
        return self._decide(tick, cause=None)

    def offer(self, runner_id: str, labels: Iterable[str]) -> Envelope | None:
        """Lease the oldest queued attempt the runner's labels satisfy to it, or None when there is none."""
        chosen = assign(self.state, runner_id, labels, lease_id="")
        if chosen is None:
            return None
        lease_id = deterministic_id("lease", chosen.run_id, chosen.job_id, chosen.attempt, runner_id)
        assigned = chosen.model_copy(update={"lease_id": lease_id})
        self.state = evolve(self.state, assigned)
        return Envelope.wrap(assigned, stream=assigned.run_id, event_id=self._decision_id(assigned))

    def _decide(self, event: Event | Tick, cause: Envelope | None) -> list[Envelope]:
        self.state, decisions = settle(self.state, event)
        envelopes: list[Envelope] = []
        for decision in decisions:
            same_run = cause is not None and cause.stream == decision.run_id
            envelopes.append(
                Envelope.wrap(
                    decision,
                    stream=decision.run_id,
                    cause=cause if same_run else None,
                    event_id=self._decision_id(decision),
                )
            )
        # Only the runs the event and its decisions touched can have ended; the clock may end any.
        touched = {decision.run_id for decision in decisions}
        if isinstance(event, RunEvent):
            touched.add(event.run_id)
        candidates = list(self.state.runs) if isinstance(event, Tick) else touched
        for run_id in [run_id for run_id in candidates if self.state.run(run_id).conclusion is not None]:
            self.state = self.state.without_run(run_id)
        return envelopes

    async def _rebuild(self, run_id: str, before: int) -> None:
        history = await self.log.read_stream(run_id, types=_STATE_TYPES)
        alone = replace(self.state, runs=Runs())
        for envelope in history:
            if envelope.position < before:
                alone = evolve(at(alone, envelope.occurred_at), envelope.event)
        self.state = self.state.with_run(alone.run(run_id))

    def _decision_id(self, decision: RunEvent) -> str:
        """The same decision in the same run attempt always gets the same id: a redelivery cannot repeat it."""
        attempt = self.state.run(decision.run_id).attempt
        return deterministic_id(decision.run_id, attempt, decision.event_type(), event_json(decision))

    def consumer(self) -> Consumer:
        return Consumer(CONSUMER, dict.fromkeys(_REACTS_TO, self.on_event))

    async def keep_time(self, *, interval: float = 1.0, clock: Callable[[], datetime] | None = None) -> None:
        """Feed the clock to the core every `interval` seconds and append what it decides, forever."""
        now = clock or (lambda: datetime.now(UTC))
        while True:
            await asyncio.sleep(interval)
            decided = list(self.tick(now()))
            for _, group in groupby(decided, key=lambda envelope: envelope.stream):
                await self.log.append(list(group))


def _log_ignored(envelope: Envelope, event: RunEvent, *, known: bool) -> None:
    """Say why an event changed nothing: its run is not known, or it repeats or comes too late for what it is
    about (a redelivery, a runner's report on an attempt that is not the job's current one, a reviewer not asked)."""
    about = f"{event.event_type()} {envelope.event_id} of run {event.run_id}"
    job_id = getattr(event, "job_id", None)
    if job_id is not None:
        about += f", job {job_id} attempt {getattr(event, 'attempt', 1)}"
    if known:
        logger.info("ignored %s: it changes nothing (a redelivery, or about an attempt or a state already past)", about)
    else:
        logger.warning("ignored %s: no run of that id was requested", about)
