"""The runner agent's handler: lease a queued job, run it in the background, report through the log.

A queued attempt is claimed (see `conveyor_runtime.claim`) when a slot is free, so that an agent never sits
on leases it cannot run yet while other runners could; the lease is renewed while the job runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from conveyor_events import (
    Envelope,
    JobCancelRequested,
    JobLost,
    JobPlanned,
    JobQueued,
    JobTimedOut,
    RunCancelRequested,
    RunRequested,
)
from conveyor_runtime import ANY_LABEL, LEASE_PERIOD, Consumer, EventLog, GitRemotes, Lease, claim, covers, renew

from conveyor_runner_agent.adapters.action_source import ActionSource
from conveyor_runner_agent.adapters.results import ResultsService
from conveyor_runner_agent.attempts import ToolCaches, run_attempt
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
    labels: Sequence[str] = (ANY_LABEL,)
    """The `runs-on` labels this agent takes jobs of (case-insensitive); `*` takes every job."""
    lease_period: timedelta = LEASE_PERIOD
    """The scheduler's lease period: a lease is renewed three times within it."""
    remotes: GitRemotes | None = None
    """Where checkouts fetch repositories registered by clone URL, with their tokens."""
    results_dir: Path | None = None
    """Where the artifacts and caches its jobs upload are kept (`<work_dir>/results` when not given)."""
    _results: ResultsService | None = None
    _tool_caches: ToolCaches = field(default_factory=ToolCaches)
    _running: dict[asyncio.Task[None], JobRun] = field(default_factory=dict)
    _leases: dict[asyncio.Task[None], Lease] = field(default_factory=dict)
    _slots: asyncio.Semaphore | None = None

    async def on_job_queued(self, envelope: Envelope) -> Sequence[Envelope]:
        queued = envelope.event
        assert isinstance(queued, JobQueued)
        if not covers(self.labels, queued.labels):
            logger.debug("job %s of run %s runs on %s: not this runner's", queued.job_id, queued.run_id, queued.labels)
            return []
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
            secrets={} if request.fork else self.secrets,  # a fork's code gets no secrets, as on GitHub
            log_limit=self.log_limit,
            action_source=self.action_source,
            platforms=self.platforms,
            container_socket=self.container_socket,
            remotes=self.remotes,
            results_service=self.results,
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

    async def on_job_lost(self, envelope: Envelope) -> Sequence[Envelope]:
        """Stop an attempt whose lease expired (this agent was paused, say): another attempt may be queued."""
        event = envelope.event
        assert isinstance(event, JobLost)
        for task, lease in list(self._leases.items()):
            same = (lease.run_id, lease.job_id, lease.attempt)
            if same == (event.run_id, event.job_id, event.attempt) and event.lease_id in (None, lease.lease_id):
                task.cancel()
        return []

    async def _run(self, job: JobRun) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        try:
            async with self._slots:
                run_id, job_id, attempt = job.request.run_id, job.plan.job_id, job.event.attempt
                lease = await claim(self.log, run_id, job_id, attempt, self.runner_id, self.labels)
                if lease is None:
                    logger.debug("job %s of run %s, attempt %d, is taken or over: left alone", job_id, run_id, attempt)
                    return
                async with self._renewing(lease):
                    await run_attempt(job, self._tool_caches)
        except asyncio.CancelledError:
            return  # stopped before it held the attempt: whoever holds it reports it
        except Exception:
            logger.exception("job %s of run %s could not be leased", job.plan.job_id, job.request.run_id)

    @contextlib.asynccontextmanager
    async def _renewing(self, lease: Lease) -> AsyncIterator[None]:
        """Hold `lease` for the running task, renewing it every third of the lease period."""
        task = asyncio.current_task()
        assert task is not None
        self._leases[task] = lease
        beat = asyncio.create_task(self._heartbeat(lease), name=f"lease {lease.lease_id}")
        try:
            yield
        finally:
            self._leases.pop(task, None)
            beat.cancel()
            await asyncio.wait([beat])

    async def _heartbeat(self, lease: Lease) -> None:
        while True:
            await asyncio.sleep(self.lease_period.total_seconds() / 3)
            try:
                state = await renew(self.log, lease)
            except Exception:
                logger.exception("the lease on job %s of run %s could not be renewed", lease.job_id, lease.run_id)
                continue
            if state not in ("current", "cancelled", "timed out"):
                return  # the attempt ended; JobLost and JobTimedOut stop the job through their handlers

    @property
    def results(self) -> ResultsService:
        """The results service (artifacts, caches) this agent's jobs reach; it listens from the first job that asks."""
        if self._results is None:
            self._results = ResultsService(self.results_dir or self.work_dir / "results")
        return self._results

    async def stop(self) -> None:
        """Cancel the jobs that are running (their processes are killed), wait for them to end, then stop the results
        service."""
        for task in list(self._running):
            task.cancel()
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        if self._results is not None:
            await self._results.stop()

    def consumer(self) -> Consumer:
        return Consumer(
            CONSUMER,
            {
                JobQueued: self.on_job_queued,
                RunCancelRequested: self.on_run_cancel_requested,
                JobCancelRequested: self.on_job_stop_requested,
                JobTimedOut: self.on_job_stop_requested,
                JobLost: self.on_job_lost,
            },
        )
