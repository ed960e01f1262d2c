"""The embedded system: every service of Conveyor in one process over one SQLite log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from conveyor_ingest import Queries, create_app
from conveyor_notifier import create_notifier
from conveyor_planner import create_planner
from conveyor_runner_agent import RunnerAgent, create_runner_agent
from conveyor_runtime import Consumer, RuntimeSettings, SqliteEventLog, SqliteProjections, consume, project
from conveyor_scheduler import create_scheduler
from fastapi import FastAPI

logger = logging.getLogger(__name__)


@dataclass
class EmbeddedSystem:
    """The log, the projections and the five services, wired; `running()` runs them until it is left."""

    settings: RuntimeSettings
    exclude: Path | None = None
    log: SqliteEventLog = field(init=False)
    projections: SqliteProjections = field(init=False)
    runner: RunnerAgent = field(init=False)
    consumers: list[Consumer] = field(init=False)

    def __post_init__(self) -> None:
        self.log = SqliteEventLog(self.settings.log_path, synchronous=self.settings.log_sync)
        self.projections = SqliteProjections(self.settings.projections_path)
        self.runner = create_runner_agent(
            self.log,
            self.settings.work_dir,
            concurrency=self.settings.runner_concurrency,
            exclude=self.exclude or self.settings.data_dir,
        )
        self.consumers = [
            create_planner().consumer(),
            create_scheduler(self.log).consumer(),
            self.runner.consumer(),
            create_notifier().consumer(),
        ]

    def api(self) -> FastAPI:
        return create_app(self.log, Queries(self.projections))

    async def projected(self, position: int, *, timeout: float = 10.0) -> None:
        """Wait until the read models include the event at `position`."""
        await Queries(self.projections).caught_up(position, timeout=timeout)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[EmbeddedSystem]:
        await self.log.open()
        tasks = [asyncio.create_task(consume(self.log, consumer), name=consumer.name) for consumer in self.consumers]
        tasks.append(asyncio.create_task(project(self.log, self.projections), name="projector"))
        for task in tasks:
            task.add_done_callback(_report_crash)
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.runner.stop()
            await self.log.close()


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("service %s stopped: %r", task.get_name(), task.exception())
