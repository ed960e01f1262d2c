"""The runner agent's handler: take a queued job, run it in the background, report through the log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conveyor_events import (
    Conclusion,
    Envelope,
    JobCancelRequested,
    JobPlanned,
    JobQueued,
    JobTimedOut,
    RunCancelRequested,
    RunRequested,
)
from conveyor_runtime import Consumer, EventLog

from conveyor_runner_agent.adapters.action_source import ActionSource
from conveyor_runner_agent.domain import DEFAULT_JOB_LOG_LIMIT
from conveyor_runner_agent.job import JobRun

CONSUMER = "runner-agent"
logger = logging.getLogger(__name__)


@dataclass
class RunnerAgent:
    """Runs up to `concurrency` jobs at once on this host."""

    log: EventLog
    work_dir: Path
    runner_id: str = "local"
    concurrency: int = 4
    exclude: Path | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)
    """The `secrets` context of every job this agent runs; their values are masked in its logs."""
    log_limit: int = DEFAULT_JOB_LOG_LIMIT
    action_source: ActionSource = field(default_factory=ActionSource)
    platforms: Mapping[str, str] = field(default_factory=dict)
    """`runs-on` label → image its jobs run in ('' keeps them on the host), as act's `-P`."""
    container_socket: str | None = None
    _running: dict[asyncio.Task[None], JobRun] = field(default_factory=dict)
    _slots: asyncio.Semaphore | None = None

    async def on_job_queued(self, envelope: Envelope) -> Sequence[Envelope]:
        queued = envelope.event
        assert isinstance(queued, JobQueued)
        history = await self.log.read_stream(
            queued.run_id, types=[RunRequested.event_type(), JobPlanned.event_type()]
        )
        request = next((e.event for e in history if isinstance(e.event, RunRequested)), None)
        plan = next(
            (e.event for e in history if isinstance(e.event, JobPlanned) and e.event.job_id == queued.job_id), None
        )
        if request is None or plan is None:
            raise LookupError(f"run {queued.run_id} has no request or no plan for job {queued.job_id}")
        job = JobRun(
            self.log,
            envelope,
            request,
            plan,
            self.work_dir,
            self.runner_id,
            exclude=self.exclude,
            secrets=self.secrets,
            log_limit=self.log_limit,
            action_source=self.action_source,
            platforms=self.platforms,
            container_socket=self.container_socket,
        )
        task = asyncio.create_task(self._run(job), name=f"job {queued.run_id}/{queued.job_id}")
        self._running[task] = job
        task.add_done_callback(lambda done: self._running.pop(done, None))
        return []

    async def on_run_cancel_requested(self, envelope: Envelope) -> Sequence[Envelope]:
        """Stop this agent's jobs of the run: their processes get SIGINT, SIGTERM, then SIGKILL."""
        event = envelope.event
        assert isinstance(event, RunCancelRequested)
        for task, job in list(self._running.items()):
            if job.request.run_id == event.run_id:
                task.cancel()
        return []

    async def on_job_stop_requested(self, envelope: Envelope) -> Sequence[Envelope]:
        """Stop one attempt of a job (fail-fast, a concurrency group, a timeout the scheduler decided)."""
        event = envelope.event
        assert isinstance(event, JobCancelRequested | JobTimedOut)
        for task, job in list(self._running.items()):
            same = (job.request.run_id, job.plan.job_id, job.event.attempt)
            if same == (event.run_id, event.job_id, event.attempt):
                if isinstance(event, JobTimedOut):
                    job.timed_out = event.limit_minutes
                task.cancel()
        return []

    async def _run(self, job: JobRun) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        try:
            async with self._slots:
                await job.execute()
        except asyncio.CancelledError:
            if not job.started:  # cancelled before it began: it still has to end
                await asyncio.shield(job.abandon("the job was cancelled before it started", Conclusion.CANCELLED))
        except Exception as error:
            logger.exception("job %s of run %s failed to run", job.plan.job_id, job.request.run_id)
            await job.abandon(f"the runner could not run the job: {type(error).__name__}: {error}")

    async def stop(self) -> None:
        """Cancel the jobs that are running (their processes are killed) and wait for them to end."""
        for task in list(self._running):
            task.cancel()
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def consumer(self) -> Consumer:
        return Consumer(
            CONSUMER,
            {
                JobQueued: self.on_job_queued,
                RunCancelRequested: self.on_run_cancel_requested,
                JobCancelRequested: self.on_job_stop_requested,
                JobTimedOut: self.on_job_stop_requested,
            },
        )
