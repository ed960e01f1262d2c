"""Stopping jobs: the run (or its workflow) was cancelled, a matrix leg failed (`fail-fast`), or the job gave
way in its concurrency group. A running attempt is asked to stop (`JobCancelRequested`) and concludes when its
runner says so; an attempt no runner started is cancelled at once.

When a run is cancelled GitHub re-evaluates the `if:` of the jobs in progress: one that holds with the status
`cancelled` (`always()`, `cancelled()`) carries on.
"""

from __future__ import annotations

from conveyor_events import Conclusion, JobCancelRequested, JobCompleted, RunEvent
from conveyor_workflow import ExpressionError, evaluate_condition

from conveyor_scheduler.domain import rules
from conveyor_scheduler.domain.calls import failed_call_leg, needs_context
from conveyor_scheduler.domain.conclusions import effective
from conveyor_scheduler.domain.contexts import cancelled, job_contexts, legs
from conveyor_scheduler.domain.progress import retryable
from conveyor_scheduler.domain.state import ACTIVE, JobState, RunState, SchedulerState


def cancellations(state: SchedulerState, run: RunState) -> list[RunEvent]:
    for job in run.jobs.values():
        if job.status == "completed":
            continue
        reason = _reason(run, job)
        if reason is None:
            continue
        if job.status == "running":
            if not job.cancel_requested:
                return [JobCancelRequested(run_id=run.run_id, job_id=job.plan.job_id, attempt=job.attempt,
                                           reason=reason)]
            continue
        return [JobCompleted(run_id=run.run_id, job_id=job.plan.job_id, attempt=max(job.attempt, 1),
                             conclusion=Conclusion.CANCELLED, error=reason)]
    return []


def _reason(run: RunState, job: JobState) -> str | None:
    # Asked of every job on every decision: the cheap tests come first, so that most jobs pass at once.
    if job.cancel_reason:
        return f"cancelled: {job.cancel_reason}"
    if job.plan.matrix is not None or job.plan.call:  # only a matrix leg, or a job of a call, fails fast
        failed = failed_leg(run, job) or failed_call_leg(run, job)
        if failed is not None:
            return f"cancelled by fail-fast: the matrix leg '{failed.plan.name}' failed"
    if job.status in ACTIVE and cancelled(run, job) and not _carries_on(run, job):
        return "the run was cancelled"
    return None


def failed_leg(run: RunState, job: JobState) -> JobState | None:
    """A leg of the job's matrix that failed for good, when `fail-fast` is on; None otherwise."""
    if job.plan.matrix is None:
        return None
    for leg in legs(run, job):
        if leg is job or leg.status != "completed" or effective(run, leg) != Conclusion.FAILURE:
            continue
        if retryable(run, leg):
            continue
        if rules.fail_fast(job.plan.spec, job_contexts(run, job, {})):
            return leg
    return None


def _carries_on(run: RunState, job: JobState) -> bool:
    try:
        contexts = job_contexts(run, job, needs_context(run, job))
        return evaluate_condition(job.plan.condition, contexts, status="cancelled")
    except ExpressionError:
        return False
