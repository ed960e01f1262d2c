"""`evolve(state, event)`: the pure fold of the log (and the clock) into the scheduler's state.

A fact about an attempt other than the job's current one, or about a job that already completed, changes
nothing: redelivered and stale events are harmless.
"""

from __future__ import annotations

from datetime import datetime

from conveyor_events import (
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    Conclusion,
    ConcurrencyAcquired,
    ConcurrencyCancelled,
    ConcurrencyWaited,
    Event,
    JobAssigned,
    JobCancelRequested,
    JobCompleted,
    JobLost,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    JobTimedOut,
    LeaseRenewed,
    MatrixExpanded,
    RunCancelRequested,
    RunCompleted,
    RunEvent,
    RunNumbered,
    RunPlanned,
    RunRejected,
    RunRequested,
    RunRerunRequested,
    RunTimedOut,
    WaitTimerStarted,
)

from conveyor_scheduler.domain.matrices import expanded, rewired
from conveyor_scheduler.domain.rerun import rerun
from conveyor_scheduler.domain.state import JobState, RunState, SchedulerState, Tick, WorkflowState, changed

_CLOSED_WITH = {Conclusion.FAILURE: "step", Conclusion.CANCELLED: "cancelled"}
_OF_A_NEW_ATTEMPT: frozenset[type[RunEvent]] = frozenset({
    JobQueued, JobSkipped, ApprovalRequested, ApprovalGranted, ApprovalRejected, WaitTimerStarted,
})
"""Events of a job that `_job` folds before it compares attempts."""
_OF_A_STARTED_ATTEMPT: frozenset[type[RunEvent]] = frozenset({
    JobAssigned, LeaseRenewed, JobStarted, JobCancelRequested, JobCompleted, JobTimedOut, JobLost,
})
"""Events of a job that `_job` folds only for its current attempt."""
_OF_A_JOB = _OF_A_NEW_ATTEMPT | _OF_A_STARTED_ATTEMPT
"""These exact classes skip the patterns they cannot match (a job's events skip the run's, and those of a started
attempt a new attempt's): the events of jobs are most of a run's, and trying each pattern in turn cost more than
folding them. Any other class, a subclass too, tries every pattern."""


def evolve(state: SchedulerState, event: Event | Tick) -> SchedulerState:
    """The state after `event`; a `Tick` only moves the clock (never backwards)."""
    if isinstance(event, Tick):
        return at(state, event.now)
    if not isinstance(event, RunEvent):
        return state
    if isinstance(event, RunNumbered):
        state = numbered(state, event)
    run = state.run(event.run_id)
    after = _run(state, run, event)
    return state if after is run else state.with_run(after)


def at(state: SchedulerState, now: datetime) -> SchedulerState:
    """The state with its clock moved to `now` (`Tick(now)` folded in); never backwards."""
    return changed(state, now=now) if now > state.now else state


def _run(state: SchedulerState, run: RunState, event: RunEvent) -> RunState:
    if type(event) in _OF_A_JOB:
        return _of_a_job(state, run, event)
    now = state.now
    match event:  # the classes are apart, so the order is free: the most frequent first
        case JobPlanned() if event.job_id in run.jobs or event.job_id in run.expanded:
            return run  # redelivered
        case JobPlanned():
            return changed(run, jobs={**run.jobs, event.job_id: JobState.planned(rewired(event, run.expanded))})
        case RunRequested():
            return run if run.request is not None else changed(run, request=event, started_at=now)
        case RunRejected() if event.nothing_triggered:
            return changed(run, workflows_expected=0)  # nothing to run: concluded skipped
        case RunRejected():
            seen = run.workflows_seen | {event.workflow or ""}
            return changed(run, rejected=True, workflows_seen=seen, workflows_expected=event.count)
        case MatrixExpanded():
            return expanded(run, event)
        case RunPlanned() if event.workflow in run.planned:
            return run  # redelivered
        case RunPlanned():
            concurrency = event.concurrency
            status = "free" if not concurrency else "none"
            run = run.workflow(event.workflow, name=event.workflow_name, concurrency=concurrency, status=status,
                               run_name=event.run_name)
            return changed(
                run,
                workflows_expected=event.count,
                workflows_seen=run.workflows_seen | {event.workflow},
                planned=run.planned | {event.workflow},
            )
        case RunNumbered():
            return run.workflow(event.workflow, number=event.number)
        case RunCancelRequested():
            return run if run.conclusion is not None else changed(run, cancel_requested=True)
        case RunTimedOut():
            return run if run.conclusion is not None else changed(run, cancel_requested=True, timed_out=True)
        case RunCompleted():
            return changed(run, conclusion=event.conclusion)
        case ConcurrencyWaited() | ConcurrencyAcquired() | ConcurrencyCancelled():
            return _concurrency(run, event, now)
        case RunRerunRequested():
            return rerun(run, event, now)
    return _of_a_job(state, run, event)


def _of_a_job(state: SchedulerState, run: RunState, event: RunEvent) -> RunState:
    job_id = getattr(event, "job_id", None)
    if not isinstance(job_id, str) or job_id not in run.jobs:
        return run
    if run.jobs[job_id].status == "completed" and not isinstance(event, JobQueued):
        return run
    return _job(state, run, run.jobs[job_id], event)


def _job(state: SchedulerState, run: RunState, job: JobState, event: RunEvent) -> RunState:
    now, lease_period = state.now, state.policy.lease_period
    job_id = job.plan.job_id
    attempt = getattr(event, "attempt", 1)
    current = max(job.attempt, 1)
    if type(event) not in _OF_A_STARTED_ATTEMPT:
        match event:
            case JobQueued() if attempt == job.attempt + 1:
                return run.job(job_id, status="queued", attempt=attempt, conclusion=None, failure=None, since=now,
                               runner_id=None, lease_id=None, lease_until=None, cancel_requested=False)
            case JobSkipped():
                return run.job(job_id, status="completed", conclusion=Conclusion.SKIPPED, since=now)
            case ApprovalRequested() if attempt == job.attempt + 1:
                return run.job(job_id, status="approval", since=now, reviewers=tuple(event.reviewers))
            case ApprovalGranted() if job.status == "approval" and _may_review(job, event.approver):
                return run.job(job_id, status="pending", approved=True, since=now)
            case ApprovalRejected() if job.status == "approval" and _may_review(job, event.approver):
                return run.job(job_id, status="completed", conclusion=Conclusion.FAILURE, failure="rejected")
            case WaitTimerStarted() if attempt == job.attempt + 1:
                return run.job(job_id, status="timer", since=now, timer_until=event.until)
    if attempt != current:
        return run
    match event:
        case JobAssigned() if job.status == "queued" and job.runner_id is None:
            lease_until = now + lease_period
            return run.job(job_id, runner_id=event.runner_id, lease_id=event.lease_id, lease_until=lease_until)
        case LeaseRenewed() if job.lease_id == event.lease_id and job.status in ("queued", "running"):
            return run.job(job_id, lease_until=now + lease_period)
        case JobStarted() if job.status == "queued" and job.runner_id in (None, event.runner_id):
            return run.job(job_id, status="running", since=now, runner_id=event.runner_id)
        case JobCancelRequested():
            return run.job(job_id, cancel_requested=True)
        case JobCompleted():
            failure = "timeout" if job.timed_out and event.conclusion != Conclusion.SUCCESS else None
            return run.job(job_id, status="completed", conclusion=event.conclusion, outputs=dict(event.outputs),
                           failure=failure or _CLOSED_WITH.get(event.conclusion), since=now)
        case JobTimedOut() if event.phase == "running" and job.status == "running" and job.runner_id is not None:
            # The runner stops the job, runs its `if: always()` steps and reports; the run waits for that.
            return run.job(job_id, timed_out=True)
        case JobTimedOut():
            return run.job(job_id, status="completed", conclusion=Conclusion.FAILURE, failure="timeout")
        case JobLost() if job.status in ("queued", "running") and event.lease_id in (None, job.lease_id):
            return run.job(job_id, status="completed", conclusion=Conclusion.FAILURE, failure="infrastructure")
    return run


def numbered(state: SchedulerState, event: RunNumbered) -> SchedulerState:
    """The state knowing that the repository's workflow has had at least `event.number` runs, so that no number
    is given twice; the run itself is left alone (`evolve` numbers it)."""
    key = (event.repository, event.workflow)
    if state.numbers.get(key, 0) >= event.number:
        return state
    return changed(state, numbers={**state.numbers, key: event.number})


def _call_concurrency(
    run: RunState, event: ConcurrencyWaited | ConcurrencyAcquired | ConcurrencyCancelled, now: datetime
) -> RunState:
    """A call's place in its group; a call that gives way cancels each of its jobs still to complete."""
    call_id, level = event.job_id, event.call
    assert call_id is not None
    assert level is not None
    match event:
        case ConcurrencyWaited():
            return run.call(call_id, level, status="waiting", group=event.group, since=event.since, slots=event.slots)
        case ConcurrencyAcquired() if not run.calls.get((call_id, level), WorkflowState()).cancelled:
            return run.call(call_id, level, status="holding", group=event.group, since=now)
        case ConcurrencyCancelled():
            run = run.call(call_id, level, cancelled=True)
            reason = f"{event.reason} in concurrency group '{event.group}'"
            for job_id, job in run.jobs.items():
                if job.status != "completed" and any(frame.job_id == call_id for frame in job.plan.call):
                    run = run.job(job_id, cancel_reason=reason)
            return run
    return run


def _may_review(job: JobState, approver: str) -> bool:
    return not job.reviewers or approver.lower() in {reviewer.lower() for reviewer in job.reviewers}


def _concurrency(
    run: RunState, event: ConcurrencyWaited | ConcurrencyAcquired | ConcurrencyCancelled, now: datetime
) -> RunState:
    if event.job_id is None:
        workflow = run.workflows.get(event.workflow, WorkflowState())
        match event:
            case ConcurrencyWaited():
                return run.workflow(
                    event.workflow, status="waiting", group=event.group, since=event.since, slots=event.slots
                )
            case ConcurrencyAcquired() if not workflow.cancelled:
                return run.workflow(event.workflow, status="holding", group=event.group, since=now)
            case ConcurrencyCancelled():
                return run.workflow(event.workflow, cancelled=True)
        return run
    if event.call:
        return _call_concurrency(run, event, now)
    job = run.jobs.get(event.job_id)
    if job is None or job.status == "completed":
        return run
    match event:
        case ConcurrencyWaited():
            return run.job(event.job_id, status="waiting", group=event.group, since=event.since, slots=event.slots)
        case ConcurrencyAcquired():
            return run.job(event.job_id, status="pending", group=event.group, holds=True)
        case ConcurrencyCancelled():
            return run.job(event.job_id, cancel_reason=f"{event.reason} in concurrency group '{event.group}'")
    return run
