"""Deadlines read off the clock: job and run time limits, queue and approval limits, leases, wait timers."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal

from conveyor_events import Conclusion, JobCompleted, JobLost, JobTimedOut, RunEvent, RunTimedOut

from conveyor_scheduler.domain import rules
from conveyor_scheduler.domain.calls import needs_context, queued
from conveyor_scheduler.domain.contexts import job_contexts
from conveyor_scheduler.domain.state import JobState, RunState, SchedulerState

Phase = Literal["queued", "running", "approval"]
_WITHOUT_DEADLINES = frozenset({"pending", "waiting", "completed"})
"""Statuses no deadline is kept in (see `_job`): most jobs of a run, skipped without a call."""


def deadlines(state: SchedulerState, run: RunState) -> list[RunEvent]:
    now, policy = state.now, state.policy
    if not run.timed_out and now >= run.started_at + policy.run_timeout:
        return [RunTimedOut(run_id=run.run_id, deadline=run.started_at + policy.run_timeout)]
    for job in run.jobs.values():
        if job.status in _WITHOUT_DEADLINES:
            continue
        if decided := _job(state, run, job):
            return decided
    return []


def _job(state: SchedulerState, run: RunState, job: JobState) -> list[RunEvent]:
    now, policy, status = state.now, state.policy, job.status
    if status in ("queued", "running") and job.lease_until is not None and now > job.lease_until:
        reason = f"the lease {job.lease_id} of runner {job.runner_id} expired at {job.lease_until.isoformat()}"
        lost = JobLost(run_id=run.run_id, job_id=job.plan.job_id, attempt=job.attempt, runner_id=job.runner_id,
                       lease_id=job.lease_id, reason=reason)
        return [lost]
    if status == "running" and job.timed_out:
        deadline = job.since + _span(timeout_minutes(state, run, job)) + policy.stop_grace
        if now < deadline:
            return []
        error = f"the runner did not report the job within {policy.stop_grace} of its timeout"
        return [JobCompleted(run_id=run.run_id, job_id=job.plan.job_id, attempt=job.attempt,
                             conclusion=Conclusion.FAILURE, error=error)]
    if status == "running":
        return _timed_out(run, job, "running", job.attempt, timeout_minutes(state, run, job), now)
    if status == "queued":
        return _timed_out(run, job, "queued", job.attempt, _in_minutes(policy.queue_timeout), now)
    if status == "approval":
        return _timed_out(run, job, "approval", job.attempt + 1, _in_minutes(policy.approval_timeout), now)
    if status == "timer" and job.timer_until is not None and now >= job.timer_until:
        return [queued(run, job)]
    return []


def _timed_out(
    run: RunState, job: JobState, phase: Phase, attempt: int, minutes: float, now: datetime
) -> list[RunEvent]:
    deadline = job.since + _span(minutes)
    if now < deadline:
        return []
    timed_out = JobTimedOut(run_id=run.run_id, job_id=job.plan.job_id, attempt=attempt, phase=phase,
                            deadline=deadline, limit_minutes=minutes)
    return [timed_out]


@lru_cache(maxsize=256)
def _span(minutes: float) -> timedelta:
    """`timedelta(minutes=minutes)`: every job in progress is measured against its limit on every decision, and
    the limits are few."""
    return timedelta(minutes=minutes)


@lru_cache(maxsize=64)
def _in_minutes(limit: timedelta) -> float:
    return limit / timedelta(minutes=1)


def timeout_minutes(state: SchedulerState, run: RunState, job: JobState) -> float:
    """The job's `timeout-minutes` (the policy's default, 360, when it does not say or says nonsense)."""
    raw = job.plan.spec.get("timeout_minutes")
    default = state.policy.job_timeout_minutes
    if raw is None:
        return default
    if isinstance(raw, str):
        return rules.timeout_minutes(job.plan.spec, job_contexts(run, job, needs_context(run, job)), default)
    return rules.timeout_minutes(job.plan.spec, {}, default)
