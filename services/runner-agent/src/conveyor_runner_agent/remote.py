"""A runner agent on its own host: it leases jobs from a Conveyor over HTTP and reports them back the same way.

A job runs with the same code as in the in-process runner (`JobRun`, `run_attempt`); what differs is where its
events go (an `Outbox` that posts them) and how its lease is kept (heartbeats over HTTP, which also say when the
attempt is to stop). The agent asks for a lease only when it has a free slot, so no job waits on a busy agent
while another could run it.
"""

from __future__ import annotations

import asyncio
import logging
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from conveyor_runtime import LEASE_PERIOD, GitRemotes

from conveyor_runner_agent.adapters.action_source import ActionSource
from conveyor_runner_agent.adapters.outbox import Backoff, Outbox
from conveyor_runner_agent.adapters.results import ResultsService
from conveyor_runner_agent.adapters.server import ConveyorServer, Leased, LeaseOver, Refused, Unavailable
from conveyor_runner_agent.attempts import ToolCaches, run_attempt
from conveyor_runner_agent.domain import DEFAULT_JOB_LOG_LIMIT
from conveyor_runner_agent.job import JobRun
from conveyor_runner_agent.step_processes import runner_arch

logger = logging.getLogger(__name__)


def default_labels() -> list[str]:
    """GitHub's labels of a self-hosted runner on this machine: `self-hosted`, its OS and its architecture."""
    system = {"linux": "Linux", "darwin": "macOS", "windows": "Windows"}.get(platform.system().lower())
    return ["self-hosted", system or platform.system(), runner_arch()]


class AgentError(Exception):
    """The agent cannot go on: the server refuses it (its credential, say); the message says what to do."""


LEASE_RETRY_LONGEST = 2.0
"""The longest pause between two lease requests the server did not answer: a restarted server gets its idle
runners back within seconds (a request costs it little, and it may be back after a second)."""

@dataclass
class RemoteAgent:
    """Runs up to `concurrency` jobs at once that it leases from `server` as the runner `server.identity` names."""

    server: ConveyorServer
    work_dir: Path
    concurrency: int = 1
    lease_period: timedelta = LEASE_PERIOD
    """The server's lease period: a lease is renewed three times within it."""
    watch_every: float = 3.0
    """Seconds between two questions whether a running job's lease still holds (between renewals)."""
    poll_wait: float = 5.0
    """Seconds one request for a lease waits for a job; also how long stopping may wait for that request."""
    grace: float = 60.0
    """Seconds running jobs get to finish once the agent is stopped; the rest are then cancelled."""
    drain: float = 30.0
    """Seconds a cancelled job gets to wind down and report its end before the agent gives up on it."""
    secrets: Mapping[str, str] = field(default_factory=dict)
    log_limit: int = DEFAULT_JOB_LOG_LIMIT
    action_source: ActionSource = field(default_factory=ActionSource)
    platforms: Mapping[str, str] = field(default_factory=dict)
    container_socket: str | None = None
    backoff: Backoff = field(default_factory=Backoff)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _attempts: set[asyncio.Task[None]] = field(default_factory=set)
    _executions: dict[asyncio.Task[None], JobRun] = field(default_factory=dict)
    _holding: set[str] = field(default_factory=set)
    """The leases being run here: one handed over again (its answer seemed lost to the server) is not run twice."""
    _results: ResultsService | None = None
    _tool_caches: ToolCaches = field(default_factory=ToolCaches)

    @property
    def results(self) -> ResultsService:
        """The results service (artifacts, caches) this agent's jobs reach, keeping them under `<work_dir>/results`."""
        if self._results is None:
            self._results = ResultsService(self.work_dir / "results")
        return self._results

    @property
    def runner_id(self) -> str:
        if self.server.identity is None:
            raise AgentError("the runner is not registered")
        return self.server.identity.runner_id

    def stop(self) -> None:
        """Take no new job; `run` returns once the running ones ended (or the grace period ran out)."""
        self._stopping.set()

    async def run(self) -> None:
        """Lease and run jobs until `stop()`; then let the running ones finish, up to the grace period."""
        failures = 0
        try:
            while not self._stopping.is_set():
                self._attempts = {task for task in self._attempts if not task.done()}
                if len(self._attempts) >= self.concurrency:
                    await self._until_stopping(*self._attempts)
                    continue
                try:
                    leased = await self.server.lease(self.poll_wait)
                except Unavailable as error:
                    delay = min(self.backoff.delay(failures), LEASE_RETRY_LONGEST)
                    failures += 1
                    logger.warning("no lease from %s (%s); asking again in %.1f s", self.server.base_url, error, delay)
                    pause = asyncio.ensure_future(asyncio.sleep(delay))
                    await self._until_stopping(pause)
                    pause.cancel()
                    continue
                except Refused as refused:
                    raise AgentError(f"{self.server.base_url} refuses this runner: {refused.detail}") from None
                failures = 0
                if leased is not None and leased.lease_id in self._holding:
                    # Handed over again before the server saw it start: ask again once that has had time.
                    pause = asyncio.ensure_future(asyncio.sleep(self.backoff.first))
                    await self._until_stopping(pause)
                    pause.cancel()
                elif leased is not None:
                    self._holding.add(leased.lease_id)
                    self._attempts.add(asyncio.create_task(self._hold(leased), name=f"lease {leased.lease_id}"))
        finally:
            await self._wind_down()
            if self._results is not None:
                await self._results.stop()

    async def _until_stopping(self, *waits: asyncio.Future[Any]) -> None:
        stopping: asyncio.Future[Any] = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({stopping, *waits}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()

    async def _hold(self, leased: Leased) -> None:
        """Run the leased attempt while heartbeating its lease; return once all it reported was sent."""
        stop_job = _JobStop()
        outbox = Outbox(self.server, leased.lease_id, on_over=stop_job, backoff=self.backoff)
        job = JobRun(
            outbox,
            leased.queued,
            leased.request,
            leased.plan,
            self.work_dir / "jobs",
            self.runner_id,
            exclude=self.work_dir,
            secrets={} if leased.request.fork else self.secrets,  # a fork's code gets no secrets, as on GitHub
            log_limit=self.log_limit,
            action_source=self.action_source,
            platforms=self.platforms,
            container_socket=self.container_socket,
            remotes=GitRemotes(self.work_dir / "repositories"),
            results_service=self.results,
        )
        name = f"job {leased.request.run_id}/{leased.plan.job_id}"
        execution = asyncio.create_task(run_attempt(job, self._tool_caches), name=name)
        self._executions[execution] = stop_job.job = job
        stop_job.execution = execution
        beat = asyncio.create_task(self._heartbeat(leased.lease_id, stop_job))
        logger.info("running job %s of run %s (lease %s)", leased.plan.job_id, leased.request.run_id, leased.lease_id)
        try:
            await asyncio.wait({execution})
        finally:
            self._holding.discard(leased.lease_id)
            self._executions.pop(execution, None)
            execution.cancel()
            try:
                await outbox.close()
            finally:
                beat.cancel()
                await asyncio.gather(beat, return_exceptions=True)

    async def _heartbeat(self, lease_id: str, stop_job: Callable[[LeaseOver], None]) -> None:
        """Renew the lease a third of its period after the last renewal; in between ask every `watch_every`
        seconds whether it still holds, so that a cancelled job stops within seconds, as on GitHub."""
        renew_every = self.lease_period.total_seconds() / 3
        renewed = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(min(self.watch_every, renew_every))
            now = asyncio.get_running_loop().time()
            try:
                if now - renewed >= renew_every:
                    renewed = now  # a winding-down attempt's renewal is answered 410, yet renewed all the same
                    await self.server.heartbeat(lease_id)
                else:
                    await self.server.check(lease_id)
            except LeaseOver as over:
                stop_job(over)
                if not over.winding_down:
                    return
            except (Unavailable, Refused) as error:
                logger.warning("the lease %s could not be renewed: %s", lease_id, error)

    async def _wind_down(self) -> None:
        """Wait for the running jobs up to `grace`, cancel those still running, give them `drain` to report."""
        running = {task for task in self._attempts if not task.done()}
        if not running:
            return
        logger.info("stopping: waiting up to %g s for %d running jobs", self.grace, len(running))
        _, running = await asyncio.wait(running, timeout=self.grace)
        if not running:
            return
        logger.warning("stopping: cancelling %d jobs still running after %g s", len(running), self.grace)
        for execution in list(self._executions):
            execution.cancel()
        _, running = await asyncio.wait(running, timeout=self.drain)
        for task in running:
            task.cancel()
        await asyncio.wait(running, timeout=5)


@dataclass
class _JobStop:
    """What stops the job once its lease is over, as the in-process runner does on a cancel, timeout or loss.

    Only the first call counts: a stopping job winds down (its `if: always()` steps run) and is not stopped again.
    """

    job: JobRun | None = None
    execution: asyncio.Task[None] | None = None
    stopped: bool = False

    def __call__(self, over: LeaseOver) -> None:
        if self.stopped or self.job is None or self.execution is None or self.execution.done():
            return
        self.stopped = True
        logger.info("job %s of run %s: %s; stopping it", self.job.plan.job_id, self.job.request.run_id, over)
        if over.state == "timed out" and over.timeout_minutes is not None:
            self.job.timed_out = over.timeout_minutes
        self.execution.cancel()
