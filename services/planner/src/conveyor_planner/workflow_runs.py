"""The `workflow_run` trigger: a consumer of its own that requests the runs Conveyor's own runs trigger.

It folds the events that move a workflow of a run along (planned, jobs concluded, run completed, re-run) into
that run's `RunHistory`, which decides. The history of a run in progress is kept in memory and rebuilt from the
run's stream when it is not there (after a restart, or when the consumer reads an event again). A request goes
out only when a workflow at the target commit listens for it, so runs of repositories without `on: workflow_run`
leave no trace. Runs of a local working tree (`conveyor run`) trigger nothing: they are not commits of a
repository.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from conveyor_events import (
    Envelope,
    JobCompleted,
    JobPlanned,
    JobSkipped,
    MatrixExpanded,
    RunCompleted,
    RunEvent,
    RunNumbered,
    RunPlanned,
    RunRequested,
    RunRerunRequested,
)
from conveyor_runtime import Consumer, EventLog

from conveyor_planner.adapters import BranchHeads, RepositoryError, RepositorySource
from conveyor_planner.domain import (
    HISTORY_TYPES,
    MAX_CHAIN_DEPTH,
    ChainLimitReached,
    Decision,
    RunHistory,
    WorkflowRunRequest,
    wanted,
)

CONSUMER = "workflow-run-trigger"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkflowRunTrigger:
    log: EventLog
    source: RepositorySource
    heads: BranchHeads
    runs: dict[str, tuple[RunHistory, int]] = field(default_factory=dict)
    """The history of each run in progress with the position of its last event folded in."""

    async def on_run_event(self, envelope: Envelope) -> Sequence[Envelope]:
        """The `RunRequested` of each `workflow_run` the event newly triggers, in the stream of its own run."""
        event = envelope.event
        assert isinstance(event, RunEvent)
        produced: list[Envelope] = []
        for decision in await self._decided(event, envelope.position):
            if isinstance(decision, ChainLimitReached):
                logger.info(
                    "run %s is %d workflow_run levels deep (GitHub chains at most %d): %s of %s triggers nothing",
                    event.run_id,
                    decision.depth,
                    MAX_CHAIN_DEPTH,
                    decision.action,
                    decision.workflow,
                )
                continue
            request = await asyncio.to_thread(self._placed, decision)
            if request is not None:
                produced.append(
                    Envelope.wrap(
                        request,
                        stream=request.run_id,
                        event_id=decision.event_id,
                        cause=envelope,
                        correlation_id=request.run_id,
                    )
                )
        return produced

    async def _decided(self, event: RunEvent, position: int) -> list[Decision]:
        """What the event newly decides, folded into the run's history: the one in memory when it ends just before
        the event, else one rebuilt from the run's stream up to the event."""
        history, last = self.runs.pop(event.run_id, (None, 0))
        if history is not None and last < position:
            decided = history.apply(event)
        else:
            history, decided = RunHistory(), []
            for stored in await self.log.read_stream(event.run_id, types=HISTORY_TYPES):
                if stored.position <= position and isinstance(stored.event, RunEvent):
                    decided = history.apply(stored.event)
        if not isinstance(event, RunCompleted):  # a re-run after it is rare: rebuilt from the log then
            self.runs[event.run_id] = (history, position)
        return decided

    def _placed(self, decision: WorkflowRunRequest) -> RunRequested | None:
        """The request at the default branch's head when it names one, if a workflow there listens; else None."""
        request = decision.request
        if decision.default_branch is not None:
            try:
                sha = self.heads.head(request.repository, decision.default_branch)
            except RepositoryError as error:
                logger.warning(
                    "a workflow_run stays at the commit of run %s: %s", request.payload["workflow_run"]["id"], error
                )
            else:
                request = request.model_copy(update={"ref": f"refs/heads/{decision.default_branch}", "sha": sha})
        try:
            files = self.source.workflow_files(request)
        except RepositoryError as error:
            logger.warning("no workflow_run for %s: its workflows cannot be read: %s", request.repository, error)
            return None
        return request if wanted(request, files) else None

    def consumer(self) -> Consumer:
        handle = self.on_run_event
        return Consumer(
            CONSUMER,
            {
                RunRequested: handle,
                JobPlanned: handle,
                RunPlanned: handle,
                RunNumbered: handle,
                JobCompleted: handle,
                JobSkipped: handle,
                MatrixExpanded: handle,
                RunCompleted: handle,
                RunRerunRequested: handle,
            },
        )
