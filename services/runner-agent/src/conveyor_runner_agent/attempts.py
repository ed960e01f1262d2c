"""Running a held attempt to its end, whichever runner holds it: in this process, or on a host that leased it over
HTTP. However it goes, the attempt ends with `JobCompleted`: a job cancelled before it began, or one that could not
run at all, is still reported, so the run does not wait for it until its lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterator

from conveyor_events import Conclusion

from conveyor_runner_agent.job import JobRun

logger = logging.getLogger(__name__)


class ToolCaches:
    """Which tool cache (`RUNNER_TOOL_CACHE`) each of an agent's running jobs gets: one per job running at once, as
    each of GitHub's self-hosted runners on a machine has its own. A setup action replaces a tool's folder while
    it installs it, so two jobs sharing one could pull a tool from under each other."""

    def __init__(self) -> None:
        self._taken: set[int] = set()

    @contextlib.contextmanager
    def take(self) -> Iterator[int]:
        slot = next(number for number in itertools.count() if number not in self._taken)
        self._taken.add(slot)
        try:
            yield slot
        finally:
            self._taken.discard(slot)


async def run_attempt(job: JobRun, tool_caches: ToolCaches | None = None) -> None:
    """Execute `job`, whose lease the caller holds; cancelling this stops the job (its steps get SIGINT, SIGTERM,
    then SIGKILL; `if: always()` steps still run) and returns once it reported its end."""
    with (tool_caches or ToolCaches()).take() as slot:
        job.tool_slot = slot
        await _execute(job)


async def _execute(job: JobRun) -> None:
    try:
        await job.execute()
    except asyncio.CancelledError:
        if not job.started:
            await asyncio.shield(job.abandon("the job was cancelled before it started", Conclusion.CANCELLED))
    except Exception as error:
        logger.exception("job %s of run %s failed to run", job.plan.job_id, job.request.run_id)
        await job.abandon(f"the runner could not run the job: {type(error).__name__}: {error}")
