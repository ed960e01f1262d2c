"""The run state machine: jobs become ready in `needs` order, run when their `if:` holds, and the run ends.

`evolve(state, event)` is a pure fold; `decide(state, event)` looks at the state *after* the event and returns
the events that follow from it. Both are deterministic, so replaying a run's events rebuilds the same state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from conveyor_events import (
    Conclusion,
    Event,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    NeedResult,
    RunCancelRequested,
    RunCompleted,
    RunEvent,
    RunPlanned,
    RunRejected,
    RunRequested,
)
from conveyor_workflow import ExpressionError, Status, evaluate_condition, github_context

JobStatus = Literal["pending", "queued", "running", "completed"]


@dataclass(frozen=True)
class JobState:
    plan: JobPlanned
    status: JobStatus = "pending"
    conclusion: Conclusion | None = None
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunState:
    run_id: str
    request: RunRequested | None = None
    workflows_expected: int | None = None
    workflows_seen: frozenset[str] = frozenset()
    rejected: bool = False
    planned: frozenset[str] = frozenset()
    jobs: dict[str, JobState] = field(default_factory=dict)
    cancel_requested: bool = False
    conclusion: Conclusion | None = None


def evolve(state: RunState, event: Event) -> RunState:
    """The state after `event`."""
    match event:
        case RunRequested():
            return replace(state, request=event)
        case RunRejected():
            seen = state.workflows_seen | {event.workflow or ""}
            return replace(state, rejected=True, workflows_seen=seen, workflows_expected=event.count)
        case JobPlanned():
            return replace(state, jobs={**state.jobs, event.job_id: JobState(plan=event)})
        case RunPlanned():
            return replace(
                state,
                workflows_expected=event.count,
                workflows_seen=state.workflows_seen | {event.workflow},
                planned=state.planned | {event.workflow},
            )
        case JobQueued():
            return _job(state, event.job_id, status="queued")
        case JobStarted():
            return _job(state, event.job_id, status="running")
        case JobSkipped():
            return _job(state, event.job_id, status="completed", conclusion=Conclusion.SKIPPED)
        case JobCompleted():
            return _job(state, event.job_id, status="completed", conclusion=event.conclusion, outputs=event.outputs)
        case RunCancelRequested():
            return replace(state, cancel_requested=True)
        case RunCompleted():
            return replace(state, conclusion=event.conclusion)
    return state


def _job(state: RunState, job_id: str, **changes: Any) -> RunState:
    job = state.jobs.get(job_id)
    if job is None or job.status == "completed":
        return state
    return replace(state, jobs={**state.jobs, job_id: replace(job, **changes)})


def decide(state: RunState, event: Event) -> list[RunEvent]:
    """What follows from `event`, given the state after it. Events of an ended run decide nothing."""
    if state.conclusion is not None or state.request is None:
        return []
    if not isinstance(event, RunPlanned | RunRejected | JobCompleted | JobSkipped | RunCancelRequested):
        return []
    produced: list[RunEvent] = []
    while True:
        step = _next_decisions(state)
        if not step:
            break
        for decision in step:
            state = evolve(state, decision)
        produced.extend(step)
    if _finished(state):
        produced.append(RunCompleted(run_id=state.run_id, conclusion=_run_conclusion(state)))
    return produced


def _next_decisions(state: RunState) -> list[RunEvent]:
    decisions: list[RunEvent] = []
    for job_id, job in state.jobs.items():
        if job.status != "pending" or job.plan.workflow not in state.planned:
            continue
        needs = [state.jobs[need] for need in job.plan.needs if need in state.jobs]
        if any(need.status != "completed" for need in needs):
            continue
        decisions.append(_start_or_skip(state, job_id, job, needs))
    return decisions


def _start_or_skip(state: RunState, job_id: str, job: JobState, needs: list[JobState]) -> RunEvent:
    if state.cancel_requested:
        return JobSkipped(run_id=state.run_id, job_id=job_id, reason="the run was cancelled")
    context = _needs_context(needs)
    status = _status(state, job)
    try:
        runs = evaluate_condition(job.plan.condition, _contexts(state, context), status=status)
    except ExpressionError as error:
        return JobCompleted(
            run_id=state.run_id,
            job_id=job_id,
            conclusion=Conclusion.FAILURE,
            error=f"the job's if: could not be evaluated: {error}",
        )
    if not runs:
        return JobSkipped(run_id=state.run_id, job_id=job_id, reason=f"if: {job.plan.condition or 'success()'}")
    return JobQueued(run_id=state.run_id, job_id=job_id, labels=job.plan.runs_on, needs=context)


def _status(state: RunState, job: JobState) -> Status:
    """What the status functions report for a job: failure when any job it depends on failed.

    A job that depends on a skipped job sees neither success nor failure: GitHub skips it unless its `if:`
    says otherwise.
    """
    ancestors = _ancestors(state, job)
    if state.cancel_requested:
        return "cancelled"
    conclusions = {state.jobs[ancestor].conclusion for ancestor in ancestors}
    if Conclusion.FAILURE in conclusions or Conclusion.CANCELLED in conclusions:
        return "failure"
    if conclusions - {Conclusion.SUCCESS}:
        return "skipped"
    return "success"


def _ancestors(state: RunState, job: JobState) -> set[str]:
    found: set[str] = set()
    pending = list(job.plan.needs)
    while pending:
        need = pending.pop()
        if need in found or need not in state.jobs:
            continue
        found.add(need)
        pending.extend(state.jobs[need].plan.needs)
    return found


def _needs_context(needs: list[JobState]) -> dict[str, NeedResult]:
    by_key: dict[str, list[JobState]] = {}
    for need in needs:
        by_key.setdefault(need.plan.job_key, []).append(need)
    context: dict[str, NeedResult] = {}
    for key, legs in by_key.items():
        conclusions = [leg.conclusion or Conclusion.SKIPPED for leg in legs]
        outputs: dict[str, str] = {}
        for leg in legs:
            outputs.update(leg.outputs)
        context[key] = NeedResult(result=_combined(conclusions), outputs=outputs)
    return context


def _combined(conclusions: list[Conclusion]) -> Conclusion:
    for worst in (Conclusion.FAILURE, Conclusion.CANCELLED, Conclusion.SUCCESS):
        if worst in conclusions:
            return worst
    return Conclusion.SKIPPED


def _contexts(state: RunState, needs: dict[str, NeedResult]) -> dict[str, Any]:
    request = state.request
    assert request is not None
    return {
        "github": github_context(
            event_name=request.event_name,
            payload=request.payload,
            ref=request.ref,
            sha=request.sha,
            repository=request.repository,
            actor=request.actor,
            run_id=request.run_id,
        ),
        "needs": {key: need.model_dump(mode="json") for key, need in needs.items()},
        "inputs": dict(request.inputs),
        "vars": {},
    }


def _finished(state: RunState) -> bool:
    if state.workflows_expected is None or len(state.workflows_seen) < state.workflows_expected:
        return False
    return all(job.status == "completed" for job in state.jobs.values())


def _run_conclusion(state: RunState) -> Conclusion:
    conclusions = {job.conclusion for job in state.jobs.values()}
    if state.rejected or Conclusion.FAILURE in conclusions:
        return Conclusion.FAILURE
    if state.cancel_requested or Conclusion.CANCELLED in conclusions:
        return Conclusion.CANCELLED
    return Conclusion.SUCCESS
