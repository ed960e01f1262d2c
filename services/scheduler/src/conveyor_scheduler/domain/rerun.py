"""Re-running a completed run as a new run attempt, as GitHub does.

`failed` re-runs the jobs that failed or were cancelled and every job that depends on them; the others keep
their results and outputs, which the re-run jobs can read. `all` re-runs every job.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from conveyor_events import Conclusion, RunRerunRequested

from conveyor_scheduler.domain.state import JobState, RunState, WorkflowState

_RERUN = {Conclusion.FAILURE, Conclusion.CANCELLED}


def rerun(run: RunState, event: RunRerunRequested, now: datetime) -> RunState:
    """The run as its next attempt begins; a run that has not completed, or was rejected, is left alone."""
    if run.conclusion is None or run.rejected or run.request is None:
        return run
    chosen = set(run.jobs) if event.mode == "all" else _failed_and_dependants(run)
    jobs = {
        job_id: JobState(plan=job.plan, attempt=job.attempt, first_attempt=job.attempt + 1, since=now)
        if job_id in chosen
        else job
        for job_id, job in run.jobs.items()
    }
    touched = {job.plan.workflow for job_id, job in run.jobs.items() if job_id in chosen}
    workflows = {
        path: WorkflowState(
            name=w.name, number=w.number, run_name=w.run_name, concurrency=w.concurrency,
            status="free" if not w.concurrency else "none",
        )
        if path in touched
        else w
        for path, w in run.workflows.items()
    }
    called = {frame.job_id for job_id, job in run.jobs.items() if job_id in chosen for frame in job.plan.call}
    return replace(
        run,
        attempt=run.attempt + 1,
        started_at=now,
        jobs=jobs,
        workflows=workflows,
        calls={key: call for key, call in run.calls.items() if key[0] not in called},
        cancel_requested=False,
        timed_out=False,
        conclusion=None,
    )


def _failed_and_dependants(run: RunState) -> set[str]:
    chosen = {job_id for job_id, job in run.jobs.items() if job.conclusion in _RERUN}
    grown = True
    while grown:
        dependants = {job_id for job_id, job in run.jobs.items() if chosen.intersection(job.plan.needs)}
        grown = not dependants <= chosen
        chosen |= dependants
    return chosen
