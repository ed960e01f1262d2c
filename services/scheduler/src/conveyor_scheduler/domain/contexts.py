"""The expression contexts of a job (github, inputs, vars, needs, matrix, strategy) and its `if:` status."""

from __future__ import annotations

from typing import Any

from conveyor_events import NeedResult
from conveyor_workflow import ExpressionError, github_context

from conveyor_scheduler.domain import rules
from conveyor_scheduler.domain.state import JobState, RunState


def workflow_contexts(run: RunState, path: str) -> dict[str, Any]:
    """What a workflow-level expression of the workflow at `path` may read: github, inputs and vars."""
    request = run.request
    assert request is not None
    planned = run.workflows.get(path)
    github = github_context(
        event_name=request.event_name,
        payload=request.payload,
        ref=request.ref,
        sha=request.sha,
        repository=request.github_repository,
        actor=request.actor,
        run_id=request.run_id,
        run_number=planned.number if planned is not None and planned.number else 1,
        run_attempt=run.attempt,
        workflow=planned.name if planned is not None and planned.name else path,
        workflow_path=path,
    )
    return {"github": github, "inputs": dict(request.inputs), "vars": dict(request.variables)}


def legs(run: RunState, job: JobState) -> list[JobState]:
    """Every leg of the job's matrix (the job alone when it has none), in plan order."""
    key = job.key
    return [other for other in run.jobs.values() if other.key == key]


def job_contexts(run: RunState, job: JobState, needs: dict[str, NeedResult]) -> dict[str, Any]:
    """What a job-level expression may read: the workflow's contexts plus needs, matrix and strategy."""
    siblings = legs(run, job)
    contexts = workflow_contexts(run, job.plan.workflow)
    if job.plan.call:
        contexts["inputs"] = _called_inputs(run, job)
    contexts["needs"] = {key: need.model_dump(mode="json") for key, need in needs.items()}
    contexts["matrix"] = dict(job.plan.matrix or {})
    # `strategy` reads github, needs, vars and inputs: its settings are evaluated before the context is made
    contexts["strategy"] = {
        "fail-fast": rules.fail_fast(job.plan.spec, contexts),
        "job-index": next((i for i, leg in enumerate(siblings) if leg.plan.job_id == job.plan.job_id), 0),
        "job-total": len(siblings),
        "max-parallel": rules.max_parallel(job.plan.spec, contexts) or len(siblings),
    }
    return contexts


def ancestors(run: RunState, job: JobState) -> set[str]:
    found: set[str] = set()
    pending = list(job.plan.needs)
    while pending:
        need = pending.pop()
        if need in found or need not in run.jobs:
            continue
        found.add(need)
        pending.extend(run.jobs[need].plan.needs)
    return found


def cancelled(run: RunState, job: JobState) -> bool:
    """The run, or the job's workflow, was cancelled."""
    workflow = run.workflows.get(job.plan.workflow)
    return run.cancel_requested or (workflow is not None and workflow.cancelled)


def _called_inputs(run: RunState, job: JobState) -> dict[str, Any]:
    """The inputs of a called job; empty when they cannot be evaluated (the job fails before its `if:`)."""
    from conveyor_scheduler.domain import calls  # calls reads conclusions, which read these contexts

    try:
        return calls.call_inputs(run, job.plan.call)
    except (ExpressionError, calls.CallInputError):
        return {}
