"""Conveyor's services over one event log (`CONVEYOR_EVENT_LOG`): all of them in one process, or any subset.

Several processes may share one log, each running some of the services. On SQLite they share the data directory:
SQLite serialises their writers, and each subscriber notices the others' appends by polling. On Kafka each
process names itself by the service it runs, so that a restarted one fences the one it replaces (see
`open_event_log`); the read models are still SQLite in the data directory, which the projector and the API share.
A process's health is watched in `conveyor_cli.health`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from conveyor_ingest import (
    LocalKeyWrapper,
    Queries,
    RepositoryTokens,
    backfill_forever,
    create_app,
    first_admin_token,
    run_schedules,
)
from conveyor_notifier import create_notifier
from conveyor_planner import (
    LocalBranchHeads,
    LocalRepositorySource,
    RemoteWorkflowSource,
    create_planner,
    create_workflow_run_trigger,
)
from conveyor_runner_agent import ActionSource, RunnerAgent, create_runner_agent
from conveyor_runtime import (
    LEASE_PERIOD,
    EventLog,
    GitRemotes,
    OpenableEventLog,
    ProjectionStore,
    RuntimeSettings,
    consume,
    open_event_log,
    open_projections,
    project,
)
from conveyor_scheduler import create_scheduler
from fastapi import FastAPI

from conveyor_cli.consumers import CONSUMERS
from conveyor_cli.health import Health, LoopHealth, WatchedLog, health_router
from conveyor_cli.tokens import RepositoryTokenLookup

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Loop:
    """A service's loop over the log it is given (watched for the health probes)."""

    run: Callable[[EventLog], Coroutine[Any, Any, None]]
    readers: int = 1
    """How many subscriptions it opens; it is ready once each has caught up."""


@dataclass
class EmbeddedSystem:
    """The log, the read models and the services, wired; `running()` runs the chosen ones until it is left."""

    settings: RuntimeSettings
    services: Collection[str] = CONSUMERS
    exclude: Path | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)
    lease_period: timedelta = LEASE_PERIOD
    """How long a runner's lease lives without a heartbeat (the scheduler expires it, the runner renews it)."""
    edge: bool = False
    """Also run ingest's own loops (where the API is served): cron schedules and the webhook back-fill."""
    name: str | None = None
    """The service this process is, for as long as it runs (`conveyor service NAME`): on Kafka its writer's
    transactional id, so that a restart fences the process it replaces; None, one of its own."""
    log: OpenableEventLog = field(init=False)
    projections: ProjectionStore = field(init=False)
    runner: RunnerAgent = field(init=False)
    tokens: RepositoryTokenLookup = field(init=False)
    """The git tokens of repositories registered by clone URL, for every service of the process."""
    remotes: GitRemotes = field(init=False)
    """How the services read repositories registered by clone URL: fetched into the data directory's cache with
    their own credentials."""
    health: Health = field(init=False)
    """What the /healthz and /readyz probes report of the log and the loops `running()` runs."""

    def __post_init__(self) -> None:
        unknown = set(self.services) - set(CONSUMERS)
        if unknown:
            raise ValueError(f"no service named {', '.join(sorted(unknown))}; the services are {', '.join(CONSUMERS)}")
        # A process that runs no service (the edge alone) only writes what requests ask: nothing to fence.
        self.log = open_event_log(self.settings, name=self.name, fenced=bool(self.services))
        self.health = Health()
        self.projections = open_projections(self.settings)
        self.tokens = RepositoryTokenLookup(self.settings)
        self.remotes = GitRemotes(self.settings.repositories_cache_dir, self.tokens)
        self.runner = create_runner_agent(
            self.log,
            self.settings.work_dir,
            concurrency=self.settings.runner_concurrency,
            exclude=self.exclude or self.settings.data_dir,
            secrets=self.secrets,
            log_limit=self.settings.job_log_limit,
            action_source=ActionSource(
                self.settings.actions_cache_dir,
                offline_dir=self.settings.actions_offline_dir,
                base_url=self.settings.actions_base_url,
            ),
            platforms=self.settings.platforms,
            container_socket=self.settings.container_socket,
            lease_period=self.lease_period,
            remotes=self.remotes,
            results_dir=self.settings.results_dir,
        )

    def _loops(self) -> dict[str, _Loop]:
        return {
            # the planner and the workflow_run trigger: two subscriptions
            "planner": _Loop(lambda log: _planner(log, self.settings, self.remotes), readers=2),
            "scheduler": _Loop(lambda log: _scheduler(log, self.settings.environments, self.lease_period)),
            "runner-agent": _Loop(lambda log: consume(log, self.runner.consumer())),
            "notifier": _Loop(
                lambda log: create_notifier(
                    log,
                    github_api_url=self.settings.github_api_url,
                    github_token=self.settings.github_token.get_secret_value() if self.settings.github_token else None,
                    tokens=RepositoryTokens(
                        self.log, LocalKeyWrapper.from_settings(self.settings), api_url=self.settings.github_api_url
                    ),
                    public_url=self.settings.public_url,
                ).run()
            ),
            "projector": _Loop(lambda log: project(log, self.projections)),
        }

    def _edge_loops(self) -> dict[str, _Loop]:
        """Ingest's loops, which follow the clock rather than the log (no subscription to catch up)."""
        if not self.edge:
            return {}
        loops = {"schedules": _Loop(lambda log: run_schedules(log, self.settings, self.remotes), readers=0)}
        if self.settings.webhook_backfill_minutes > 0:
            every = timedelta(minutes=self.settings.webhook_backfill_minutes)
            keys = LocalKeyWrapper.from_settings(self.settings)
            loops["webhook back-fill"] = _Loop(
                lambda log: backfill_forever(log, self.settings, keys, every=every), readers=0
            )
        return loops

    def api(self) -> FastAPI:
        """The API; over a log that holds no token yet, it first issues an admin token into `<data_dir>/admin-token`."""
        path = _first_admin_token(self.settings)
        if path.exists():
            logger.info("an admin token for the API is in %s (send it as 'Authorization: Bearer <token>')", path)
        queries = Queries(self.projections, embedded_runner=self.settings.embedded_runner)
        keys = LocalKeyWrapper.from_settings(self.settings)
        app = create_app(self.log, queries, keys, remotes=self.remotes, github_api_url=self.settings.github_api_url)
        # Like GitHub's deliveries, the probes present no token: the app's access rules let them through.
        app.include_router(app.state.access.signed(health_router(self.health)))
        return app

    async def projected(self, position: int, *, timeout: float = 10.0) -> None:
        """Wait until the read models include the event at `position`."""
        await Queries(self.projections).caught_up(position, timeout=timeout)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[EmbeddedSystem]:
        await self.log.open()
        self.health.log_open = True
        loops = self._loops()
        left_out = set() if self.settings.embedded_runner else {"runner-agent"}  # only remote runners run jobs
        chosen = {name: loops[name] for name in CONSUMERS if name in self.services and name not in left_out}
        tasks = [
            asyncio.create_task(_supervised(name, loop, self.log, self.health.loop(name, loop.readers)), name=name)
            for name, loop in {**chosen, **self._edge_loops()}.items()
        ]
        try:
            yield self
        finally:
            self.health.log_open = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.runner.stop()
            await asyncio.to_thread(self.tokens.close)
            await self.projections.close()
            await self.log.close()


def _first_admin_token(settings: RuntimeSettings) -> Path:
    """Where the first admin token is written when the log holds no token yet (see `first_admin_token`).

    Over its own log, in a thread with its own loop: the caller may be in a running loop, and `api()` is not async.
    """
    path = settings.data_dir / "admin-token"

    async def issue() -> None:
        async with open_event_log(settings) as log:  # unnamed: a short-lived writer must not fence the service
            await first_admin_token(log, path)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, issue()).result()
    return path


async def _planner(log: EventLog, settings: RuntimeSettings, remotes: GitRemotes) -> None:
    """The planner plans requested runs and, with a checkpoint of its own, requests the workflow_run runs they cause;
    remote reusable workflows come from where remote actions do, cached under `<data_dir>/workflows`."""
    source = LocalRepositorySource(remotes)
    trigger = create_workflow_run_trigger(log, source, LocalBranchHeads(source.remotes))
    remote = RemoteWorkflowSource(
        settings.data_dir / "workflows", offline_dir=settings.actions_offline_dir, base_url=settings.actions_base_url
    )
    planner = create_planner(source, remote=remote)
    await asyncio.gather(consume(log, planner.consumer()), consume(log, trigger.consumer()))


async def _scheduler(log: EventLog, environments: Mapping[str, Mapping[str, Any]], lease_period: timedelta) -> None:
    """The scheduler follows the log and the clock (timeouts, leases, wait timers) with one state, first taking up
    the runs it left open."""
    scheduler = create_scheduler(log, environments, lease_period=lease_period)
    if reopened := await scheduler.recover():
        logger.info("the scheduler took up %d runs still open at its checkpoint", reopened)
    await asyncio.gather(consume(log, scheduler.consumer()), scheduler.keep_time())


async def _supervised(name: str, loop: _Loop, log: EventLog, health: LoopHealth, *, pause: float = 1.0) -> None:
    """Run a service's loop; when it fails (say, the disk is full), log it and start it again from its checkpoint
    after a pause. Each run sees the log through a `WatchedLog`, which tells `health` how its subscriptions fare."""
    while True:
        health.started()
        try:
            await loop.run(WatchedLog(log, health))
        except Exception:
            if (task := asyncio.current_task()) is not None and task.cancelling():
                raise  # being stopped: an error on the way out must not start it again
            health.failed()
            logger.exception("service %s stopped; starting it again in %.0f s", name, pause)
            await asyncio.sleep(pause)
