"""Conveyor's services over one SQLite log: all of them in one process, or any subset of them.

Several processes may share one data directory, each running some of the services: SQLite serialises their
writers, and each subscriber notices the others' appends by polling.
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
    GitRemotes,
    RuntimeSettings,
    SqliteEventLog,
    SqliteProjections,
    consume,
    project,
    redacted,
)
from conveyor_scheduler import create_scheduler
from fastapi import FastAPI

logger = logging.getLogger(__name__)

CONSUMERS = ("planner", "scheduler", "runner-agent", "notifier", "projector")
"""The services that follow the log; ingest, the API, is served by whoever calls `api()`."""


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
    log: SqliteEventLog = field(init=False)
    projections: SqliteProjections = field(init=False)
    runner: RunnerAgent = field(init=False)
    remotes: GitRemotes = field(init=False)
    """How the services read repositories registered by clone URL (see `_git_remotes`)."""

    def __post_init__(self) -> None:
        unknown = set(self.services) - set(CONSUMERS)
        if unknown:
            raise ValueError(f"no service named {', '.join(sorted(unknown))}; the services are {', '.join(CONSUMERS)}")
        self.log = SqliteEventLog(self.settings.log_path, synchronous=self.settings.log_sync)
        self.projections = SqliteProjections(self.settings.projections_path)
        self.remotes = _git_remotes(self.settings)
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
        )

    def _loops(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        return {
            "planner": lambda: _planner(self.log, self.settings),
            "scheduler": lambda: _scheduler(self.log, self.settings.environments, self.lease_period),
            "runner-agent": lambda: consume(self.log, self.runner.consumer()),
            "notifier": lambda: create_notifier(
                self.log,
                github_api_url=self.settings.github_api_url,
                github_token=self.settings.github_token.get_secret_value() if self.settings.github_token else None,
                tokens=RepositoryTokens(
                    self.log, LocalKeyWrapper.from_settings(self.settings), api_url=self.settings.github_api_url
                ),
                public_url=self.settings.public_url,
            ).run(),
            "projector": lambda: project(self.log, self.projections),
        }

    def _edge_loops(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        if not self.edge:
            return {}
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "schedules": lambda: run_schedules(self.log, self.settings, self.remotes)
        }
        if self.settings.webhook_backfill_minutes > 0:
            every = timedelta(minutes=self.settings.webhook_backfill_minutes)
            keys = LocalKeyWrapper.from_settings(self.settings)
            loops["webhook back-fill"] = lambda: backfill_forever(self.log, self.settings, keys, every=every)
        return loops

    def api(self) -> FastAPI:
        """The API; over a log that holds no token yet, it first issues an admin token into `<data_dir>/admin-token`."""
        path = _first_admin_token(self.settings)
        if path.exists():
            logger.info("an admin token for the API is in %s (send it as 'Authorization: Bearer <token>')", path)
        queries = Queries(self.projections, embedded_runner=self.settings.embedded_runner)
        keys = LocalKeyWrapper.from_settings(self.settings)
        return create_app(self.log, queries, keys, remotes=self.remotes, github_api_url=self.settings.github_api_url)

    async def projected(self, position: int, *, timeout: float = 10.0) -> None:
        """Wait until the read models include the event at `position`."""
        await Queries(self.projections).caught_up(position, timeout=timeout)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[EmbeddedSystem]:
        await self.log.open()
        loops = self._loops()
        left_out = set() if self.settings.embedded_runner else {"runner-agent"}  # only remote runners run jobs
        chosen = [name for name in CONSUMERS if name in self.services and name not in left_out]
        tasks = [asyncio.create_task(_supervised(name, loops[name]), name=name) for name in chosen]
        for name, loop in self._edge_loops().items():
            tasks.append(asyncio.create_task(_supervised(name, loop), name=name))
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.runner.stop()
            await self.log.close()


def _first_admin_token(settings: RuntimeSettings) -> Path:
    """Where the first admin token is written when the log holds no token yet (see `first_admin_token`).

    Over its own log, in a thread with its own loop: the caller may be in a running loop, and `api()` is not async.
    """
    path = settings.data_dir / "admin-token"

    async def issue() -> None:
        async with SqliteEventLog(settings.log_path, synchronous=settings.log_sync) as log:
            await first_admin_token(log, path)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, issue()).result()
    return path


def _git_remotes(settings: RuntimeSettings) -> GitRemotes:
    """Repositories registered by clone URL, fetched into the data directory's cache with their own credentials.

    A token is looked up in a thread with its own loop over its own log connection: git runs in worker threads,
    and some callers of the lookup are not async.
    """

    def token(url: str) -> str | None:
        async def lookup() -> str | None:
            async with SqliteEventLog(settings.log_path, synchronous=settings.log_sync) as log:
                keys = LocalKeyWrapper.from_settings(settings)
                tokens = RepositoryTokens(log, keys, api_url=settings.github_api_url)
                try:
                    return await tokens.for_url(url)
                finally:
                    await tokens.aclose()

        try:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                return pool.submit(asyncio.run, lookup()).result()
        except Exception:
            logger.exception("the token of %s cannot be looked up; git goes without one", redacted(url))
            return None

    return GitRemotes(settings.repositories_cache_dir, token)


async def _planner(log: SqliteEventLog, settings: RuntimeSettings) -> None:
    """The planner plans requested runs and, with a checkpoint of its own, requests the workflow_run runs they cause;
    remote reusable workflows come from where remote actions do, cached under `<data_dir>/workflows`."""
    source = LocalRepositorySource(_git_remotes(settings))
    trigger = create_workflow_run_trigger(log, source, LocalBranchHeads(source.remotes))
    remote = RemoteWorkflowSource(
        settings.data_dir / "workflows", offline_dir=settings.actions_offline_dir, base_url=settings.actions_base_url
    )
    planner = create_planner(source, remote=remote)
    await asyncio.gather(consume(log, planner.consumer()), consume(log, trigger.consumer()))


async def _scheduler(
    log: SqliteEventLog, environments: Mapping[str, Mapping[str, Any]], lease_period: timedelta
) -> None:
    """The scheduler follows the log and the clock (timeouts, leases, wait timers) with one state."""
    scheduler = create_scheduler(log, environments, lease_period=lease_period)
    await asyncio.gather(consume(log, scheduler.consumer()), scheduler.keep_time())


async def _supervised(name: str, loop: Callable[[], Coroutine[Any, Any, None]], *, pause: float = 1.0) -> None:
    """Run a service's loop; when it fails (say, the disk is full), log it and start it again from its checkpoint."""
    while True:
        try:
            await loop()
        except Exception:
            logger.exception("service %s stopped; starting it again in %.0f s", name, pause)
            await asyncio.sleep(pause)
