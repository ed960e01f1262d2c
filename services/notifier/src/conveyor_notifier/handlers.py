"""The notifier's handlers: a job's state goes to its commit on GitHub, a run's end to the log."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from conveyor_events import (
    Envelope,
    Event,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    JobTimedOut,
    RunCompleted,
    RunPlanned,
    RunRequested,
)
from conveyor_runtime import Consumer, EventLog, Handler, consume

from conveyor_notifier.adapters import CommitStatus
from conveyor_notifier.delivery import StatusDelivery
from conveyor_notifier.domain import RunTarget, context_name, job_status, run_target

CONSUMER = "notifier"
REMEMBERED_RUNS = 256
logger = logging.getLogger("conveyor.notifier")

JobEvent = JobQueued | JobStarted | JobCompleted | JobSkipped | JobTimedOut
_JOB_EVENTS: tuple[type[Event], ...] = (JobQueued, JobStarted, JobCompleted, JobSkipped, JobTimedOut)
_TARGET_EVENTS = [cls.event_type() for cls in (RunRequested, RunPlanned, JobPlanned)]


@dataclass
class Notifier:
    """Reports each job of a run of a GitHub repository as a commit status; without `statuses`, only logs."""

    log: EventLog
    statuses: StatusDelivery | None = None
    public_url: str = "http://127.0.0.1:8080"
    _targets: OrderedDict[str, RunTarget | None] = field(default_factory=OrderedDict)

    async def on_job_event(self, envelope: Envelope) -> Sequence[Envelope]:
        event = envelope.event
        assert isinstance(event, JobEvent)
        change = job_status(event)
        if self.statuses is None or change is None:
            return []
        target = await self._target(event.run_id, event.job_id)
        if target is None:
            return []
        status = CommitStatus(
            repository=target.repository,
            sha=target.sha,
            state=change.state,
            context=context_name(target, event.job_id),
            description=change.description,
            target_url=f"{self.public_url.rstrip('/')}/api/runs/{event.run_id}",
        )
        self.statuses.submit(status, run_id=event.run_id, cause=envelope)
        return []

    async def on_run_completed(self, envelope: Envelope) -> Sequence[Envelope]:
        event = envelope.event
        assert isinstance(event, RunCompleted)
        logger.info("run %s concluded: %s", event.run_id, event.conclusion.value)
        self._targets.pop(event.run_id, None)
        return []

    async def _target(self, run_id: str, job_id: str) -> RunTarget | None:
        """The run's target, from memory; read from the run's stream when it is new or has jobs not seen yet."""
        if run_id in self._targets:
            known = self._targets[run_id]
            if known is None or job_id in known.jobs:
                self._targets.move_to_end(run_id)
                return known
        history = await self.log.read_stream(run_id, types=_TARGET_EVENTS)
        target = run_target(envelope.event for envelope in history)
        self._targets[run_id] = target
        while len(self._targets) > REMEMBERED_RUNS:
            self._targets.popitem(last=False)
        return target

    def consumer(self) -> Consumer:
        handlers: Mapping[type[Event], Handler] = {RunCompleted: self.on_run_completed}
        if self.statuses is not None:
            handlers = {**handlers, **dict.fromkeys(_JOB_EVENTS, self.on_job_event)}
        return Consumer(CONSUMER, handlers)

    async def run(self) -> None:
        """Follow the log until cancelled; then let the statuses in flight finish, briefly, and stop."""
        try:
            await consume(self.log, self.consumer())
        finally:
            if self.statuses is not None:
                await self.statuses.stop()
