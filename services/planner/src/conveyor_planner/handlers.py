"""The planner's handlers: read the workflow files, plan, and hand the events back to be appended.

Planning runs in a thread: a call of another repository's workflow reads it through `remote`, which may fetch.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from conveyor_events import Envelope, Problem, RunEvent, RunRejected, RunRequested, deterministic_id
from conveyor_runtime import Consumer

from conveyor_planner.adapters import Changes, RemoteWorkflowSource, RepositoryError, RepositorySource
from conveyor_planner.domain import RemoteWorkflows, plan_run

CONSUMER = "planner"


@dataclass(frozen=True)
class Planner:
    source: RepositorySource
    remote: RemoteWorkflows = field(default_factory=RemoteWorkflowSource)

    async def on_run_requested(self, envelope: Envelope) -> Sequence[Envelope]:
        request = envelope.event
        assert isinstance(request, RunRequested)
        events: list[RunEvent]
        try:
            files = await asyncio.to_thread(self.source.workflow_files, request)
            # git is asked what changed only when a path filter or a pull request's skip marker could read it
            needed = request.event_name == "pull_request" or any("paths" in text for text in files.values())
            changes = await asyncio.to_thread(self.source.changes, request) if needed else Changes()
        except RepositoryError as error:
            events = [
                RunRejected(
                    run_id=request.run_id,
                    reason=str(error),
                    problems=[Problem(path=request.repository, message=str(error))],
                )
            ]
        else:
            events = await asyncio.to_thread(
                functools.partial(
                    plan_run,
                    request,
                    files,
                    self.remote,
                    changed_files=changes.files,
                    head_commit_message=changes.head_commit_message,
                )
            )
        return [
            Envelope.wrap(
                event,
                stream=request.run_id,
                cause=envelope,
                event_id=deterministic_id(envelope.event_id, "plan", number),
            )
            for number, event in enumerate(events)
        ]

    def consumer(self) -> Consumer:
        return Consumer(CONSUMER, {RunRequested: self.on_run_requested})
