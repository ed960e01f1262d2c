"""Running a held attempt to its end, whichever runner holds it: in this process, or on a host that leased it over
HTTP. However it goes, the attempt ends with `JobCompleted`: a job cancelled before it began, or one that could not
run at all, is still reported, so the run does not wait for it until its lease expires.
"""

from __future__ import annotations

import asyncio
import logging

from conveyor_events import Conclusion

from conveyor_runner_agent.job import JobRun

logger = logging.getLogger(__name__)


async def run_attempt(job: JobRun) -> None:
    """Execute `job`, whose lease the caller holds; cancelling this stops the job (its steps get SIGINT, SIGTERM,
    then SIGKILL; `if: always()` steps still run) and returns once it reported its end."""
    try:
        await job.execute()
    except asyncio.CancelledError:
        if not job.started:
            await asyncio.shield(job.abandon("the job was cancelled before it started", Conclusion.CANCELLED))
    except Exception as error:
        logger.exception("job %s of run %s failed to run", job.plan.job_id, job.request.run_id)
        await job.abandon(f"the runner could not run the job: {type(error).__name__}: {error}")
