"""Moving jobs forward: retries of failed attempts, and each pending job through its gates in order.

The gates of a job, once every job it needs has completed: its workflow's concurrency group, its `if:`
(skipped when false), a matrix computed from expressions (expanded into legs, see `matrices`),
`strategy.max-parallel`, its own concurrency group, its environment's required
reviewers, its environment's wait timer, and then `JobQueued` for the next attempt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from conveyor_events import (
    ApprovalRequested,
    CallFrame,
    CallLevel,
    Conclusion,
    ConcurrencyAcquired,
    JobCompleted,
    JobSkipped,
    NeedResult,
    RunEvent,
    RunNumbered,
    WaitTimerStarted,
)
from conveyor_workflow import ExpressionError, evaluate_condition, interpolate

from conveyor_scheduler.domain import calls, concurrency, matrices, rules
from conveyor_scheduler.domain.conclusions import status
from conveyor_scheduler.domain.contexts import cancelled, job_contexts, legs, workflow_contexts
from conveyor_scheduler.domain.state import ACTIVE, JobState, RunState, SchedulerState, changed

_RETRIED_ON_ANY = frozenset({"step", "timeout"})


def retryable(run: RunState, job: JobState) -> bool:
    """The job's last attempt failed in a way its `retry:` policy retries, and attempts are left."""
    if job.conclusion != Conclusion.FAILURE or job.attempt < 1 or cancelled(run, job):
        return False
    if job.plan.matrix_expression is not None or matrices.late_call(job.plan) is not None:
        return False  # its matrix, or its call's, could not be expanded; the needs it reads will not change
    policy = rules.retry(job.plan.spec)
    if job.attempt - job.first_attempt + 1 >= policy.max_attempts:
        return False
    return job.failure == "infrastructure" or (policy.on == "any" and job.failure in _RETRIED_ON_ANY)


def retries(state: SchedulerState, run: RunState) -> list[RunEvent]:
    for job in run.jobs.values():
        if job.status == "completed" and retryable(run, job):
            return [calls.queued(run, job)]
    return []


def advance(state: SchedulerState, run: RunState) -> list[RunEvent]:
    planned = run.planned
    for path, workflow in run.workflows.items():  # in the order they were planned
        if workflow.number == 0 and path in planned:
            return [_numbered(state, run, path)]
    for path, workflow in run.workflows.items():
        if workflow.status == "none" and path in planned and not cancelled_run(run, path):
            contexts = workflow_contexts(run, path)
            rule = rules.concurrency(workflow.concurrency, contexts)
            if rule is None and rules.empty_group(workflow.concurrency, contexts):
                # the workflow cannot start: each of its jobs fails, once, and it never takes a group
                if failed := _fail_workflow(run, path):
                    return failed
                continue
            if rule is None:
                return [ConcurrencyAcquired(run_id=run.run_id, workflow=path, group="")]
            return concurrency.enter(state, run.run_id, path, None, rule)
    for job in run.jobs.values():
        if job.status != "pending" or job.plan.workflow not in planned:
            continue
        if decided := _advance_job(state, run, job):
            return decided
    return []


def _fail_workflow(run: RunState, path: str) -> list[RunEvent]:
    """The next job of the workflow at `path` still to complete, failed for its empty concurrency group."""
    for job in run.jobs.values():
        if job.plan.workflow == path and job.status != "completed":
            return _failed(run, job, rules.EMPTY_GROUP)
    return []


def _failed(run: RunState, job: JobState, error: str) -> list[RunEvent]:
    """The job's attempt fails before it is queued, saying why."""
    return [JobCompleted(run_id=run.run_id, job_id=job.plan.job_id, conclusion=Conclusion.FAILURE,
                         attempt=max(job.attempt, 1), error=error)]


def _numbered(state: SchedulerState, run: RunState, path: str) -> RunNumbered:
    """The workflow's run number, before anything of it is decided: one more than its repository's last; and
    the run's title, which may read it."""
    assert run.request is not None
    repository = run.request.github_repository
    number = state.numbers.get((repository, path), 0) + 1
    numbered = changed(run, workflows={**run.workflows, path: changed(run.workflows[path], number=number)})
    return RunNumbered(run_id=run.run_id, workflow=path, repository=repository, number=number,
                       title=_title(numbered, path))


def _title(run: RunState, path: str) -> str:
    """What GitHub names a run: its `run-name:` (github and inputs), else the event's own words, else the
    workflow's name. A `run-name:` that cannot be evaluated, or is blank, leaves the default."""
    assert run.request is not None
    workflow = run.workflows[path]
    if workflow.run_name:
        try:
            title = interpolate(workflow.run_name, workflow_contexts(run, path)).strip()
        except ExpressionError:
            title = ""
        if title:
            return title
    payload = run.request.payload
    commit, pull = payload.get("head_commit"), payload.get("pull_request")
    if run.request.event_name == "push" and isinstance(commit, Mapping) and commit.get("message"):
        return str(commit["message"]).splitlines()[0]
    if isinstance(pull, Mapping) and pull.get("title"):
        return str(pull["title"])
    return workflow.name or path


def cancelled_run(run: RunState, workflow: str) -> bool:
    state = run.workflows.get(workflow)
    return run.cancel_requested or (state is not None and state.cancelled)


def _advance_job(state: SchedulerState, run: RunState, job: JobState) -> list[RunEvent]:
    jobs = run.jobs
    for need in job.plan.needs:  # a loop rather than any() over a generator: asked on every decision
        needed = jobs.get(need)
        if needed is not None and needed.status != "completed":
            return []
    workflow = run.workflows.get(job.plan.workflow)
    if workflow is not None and workflow.status in ("none", "waiting"):
        if cancelled(run, job):
            reason = "the workflow gave way in its concurrency group" if workflow.cancelled else "the run was cancelled"
            return [JobSkipped(run_id=run.run_id, job_id=job.plan.job_id, reason=reason)]
        return []
    needs = calls.needs_context(run, job)
    contexts = job_contexts(run, job, needs)
    if not job.holds and not job.approved:
        decided = _admit(state, run, job, contexts)
        if decided is not None:
            return decided
    return _protect(state, run, job, needs, contexts)


def _admit(state: SchedulerState, run: RunState, job: JobState, contexts: dict[str, Any]) -> list[RunEvent] | None:
    """The call's `if:` and inputs, the job's `if:`, max-parallel and the job's concurrency group: decisions, or
    None to go on."""
    if (depth := matrices.late_call(job.plan)) is not None:
        return _late_call(run, job, depth)
    if job.plan.call and (decided := _called(run, job)):
        return decided
    if job.plan.call and (gate := _call_concurrency(state, run, job)) is not None:
        return gate
    job_status = status(run, job)
    try:
        runs = evaluate_condition(job.plan.condition, contexts, status=job_status)
    except ExpressionError as error:
        return _failed(run, job, f"the job's if: could not be evaluated: {error}")
    if not runs:
        reason = "the run was cancelled" if job_status == "cancelled" else f"if: {job.plan.condition or 'success()'}"
        return [JobSkipped(run_id=run.run_id, job_id=job.plan.job_id, reason=reason)]
    if job.plan.matrix_expression is not None:
        return matrices.expand(run, job, contexts)
    limit = rules.max_parallel(job.plan.spec, contexts)
    if limit is not None and sum(_in_progress(leg) for leg in legs(run, job)) >= limit:
        return []
    if job.plan.call and calls.call_legs_busy(run, job):
        return []
    raw = job.plan.spec.get("concurrency")
    rule = rules.concurrency(raw, contexts)
    if rule is not None:
        return concurrency.enter(state, run.run_id, job.plan.workflow, job.plan.job_id, rule)
    if rules.empty_group(raw, contexts):
        return _failed(run, job, rules.EMPTY_GROUP)
    return None


def _late_call(run: RunState, job: JobState, depth: int) -> list[RunEvent]:
    """A job of a call (at `depth`) whose matrix is still to be computed: skipped or failed as a called job is
    when the calls down to that one say so, else the call's jobs are expanded into their legs."""
    if decided := _called(run, job, depth):
        return decided
    frames = job.plan.call[: depth + 1]
    try:
        contexts = calls.caller_contexts(run, frames)
    except (ExpressionError, calls.CallInputError) as error:
        return _failed(run, job, f"the call could not be evaluated: {error}")
    return matrices.expand_call(run, job, depth, contexts)


def _called(run: RunState, job: JobState, depth: int | None = None) -> list[RunEvent]:
    """A called job is skipped when a caller's `if:` is false, and fails when its call's inputs are wrong; with
    `depth`, of the calls down to that one only, whose own inputs read a matrix not yet known."""
    frames = job.plan.call if depth is None else job.plan.call[: depth + 1]
    try:
        closed = calls.closed_call(run, job, frames)
        calls.call_inputs(run, frames if depth is None else frames[:-1])
    except (ExpressionError, calls.CallInputError) as error:
        return _failed(run, job, f"the call could not be evaluated: {error}")
    if closed is None:
        return []
    if cancelled(run, job):
        return [JobSkipped(run_id=run.run_id, job_id=job.plan.job_id, reason="the run was cancelled")]
    reason = f"if: {closed.condition or 'success()'} of the calling job '{closed.job_key}'"
    return [JobSkipped(run_id=run.run_id, job_id=job.plan.job_id, reason=reason)]


def _call_concurrency(state: SchedulerState, run: RunState, job: JobState) -> list[RunEvent] | None:
    """Each call the job runs within, outermost first, enters the group of its calling job's `concurrency:` (in
    the caller's contexts) and then that of the called workflow's own (in the call's `inputs`), before any of
    its jobs goes on; its jobs wait while it waits: decisions, or None to go on."""
    for depth, frame in enumerate(job.plan.call):
        frames = job.plan.call[: depth + 1]
        levels: tuple[tuple[CallLevel, Any], ...] = (
            ("caller", frame.concurrency), ("workflow", frame.workflow_concurrency)
        )
        for level, raw in levels:
            if raw is None:
                continue
            call = run.calls.get((frame.job_id, level))
            if call is None or call.status == "none":
                return _enter_call(state, run, job, frames, level, raw)
            if call.cancelled or (call.status == "waiting" and cancelled(run, job)):
                reason = "the call gave way in its concurrency group" if call.cancelled else "the run was cancelled"
                return [JobSkipped(run_id=run.run_id, job_id=job.plan.job_id, reason=reason)]
            if call.status == "waiting":
                return []
    return None


def _enter_call(
    state: SchedulerState, run: RunState, job: JobState, frames: Sequence[CallFrame], level: CallLevel, raw: Any
) -> list[RunEvent]:
    frame = frames[-1]
    try:
        if level == "caller":
            contexts = calls.caller_contexts(run, frames)
        else:
            contexts = {**workflow_contexts(run, job.plan.workflow), "inputs": calls.call_inputs(run, frames)}
    except (ExpressionError, calls.CallInputError) as error:
        return _failed(run, job, f"the call could not be evaluated: {error}")
    rule = rules.concurrency(raw, contexts)
    if rule is None and rules.empty_group(raw, contexts):
        return _failed(run, job, rules.EMPTY_GROUP)
    if rule is None:
        return [ConcurrencyAcquired(run_id=run.run_id, workflow=job.plan.workflow, job_id=frame.job_id, group="",
                                    call=level)]
    return concurrency.enter(state, run.run_id, job.plan.workflow, frame.job_id, rule, call=level)


def _protect(
    state: SchedulerState, run: RunState, job: JobState, needs: dict[str, NeedResult], contexts: dict[str, Any]
) -> list[RunEvent]:
    """The environment's protection rules, then the queue (`needs` and `contexts` are the job's, computed once)."""
    name = rules.environment(job.plan.spec, contexts)
    protection = state.policy.environment(name) if name else None
    attempt = job.attempt + 1
    if name and protection is not None and protection.needs_approval and not job.approved:
        return [ApprovalRequested(run_id=run.run_id, job_id=job.plan.job_id, attempt=attempt, environment=name,
                                  reviewers=list(protection.reviewers))]
    if name and protection is not None and protection.wait_timer_minutes > 0 and job.timer_until is None:
        until = state.now + timedelta(minutes=protection.wait_timer_minutes)
        return [WaitTimerStarted(run_id=run.run_id, job_id=job.plan.job_id, attempt=attempt, environment=name,
                                 until=until)]
    return [calls.queued(run, job, needs, contexts)]


def _in_progress(job: JobState) -> bool:
    return job.status in ACTIVE or (job.status == "pending" and (job.holds or job.approved))
