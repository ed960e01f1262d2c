"""From a run request and the workflow files at its commit to the events that plan the run."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from conveyor_events import JobPlanned, Problem, RunEvent, RunPlanned, RunRejected, RunRequested
from conveyor_workflow import (
    ExpressionError,
    Job,
    MatrixError,
    Workflow,
    WorkflowError,
    expand_matrix,
    interpolate,
    load_workflow,
    matrix_job_name,
    triggered,
)

WORKFLOWS_DIR = ".github/workflows"


def job_id_for(workflow_path: str, job_key: str, leg: int | None = None) -> str:
    """A job's id within its run: `<workflow file stem>.<job key>`, and `.<n>` for the n-th matrix leg."""
    stem = PurePosixPath(workflow_path).stem
    return f"{stem}.{job_key}" if leg is None else f"{stem}.{job_key}.{leg}"


def plan_run(request: RunRequested, files: Mapping[str, str]) -> list[RunEvent]:
    """Plan every workflow in `files` (path → text) that `request` triggers.

    A workflow that cannot be loaded is rejected with all its problems: GitHub cannot tell whether it would
    have been triggered, so it fails the run. Each planned workflow gives its `JobPlanned` events followed by
    one `RunPlanned`; `index`/`count` let the scheduler know when every workflow has been accounted for.
    """
    if not files:
        return [_rejected(request, f"no workflow files in {WORKFLOWS_DIR}", WORKFLOWS_DIR)]
    chosen: list[tuple[str, Workflow | WorkflowError]] = []
    for path in sorted(files):
        if request.workflows and path not in request.workflows:
            continue
        try:
            workflow = _load(files[path], path)
        except WorkflowError as error:
            chosen.append((path, error))
            continue
        wanted = not request.jobs or any(key in workflow.jobs for key in request.jobs)
        if wanted and triggered(workflow, request.event_name, request.payload):
            chosen.append((path, workflow))
    if not chosen:
        return [_rejected(request, f"no workflow is triggered by '{request.event_name}'", WORKFLOWS_DIR)]
    events: list[RunEvent] = []
    for index, (path, item) in enumerate(chosen, start=1):
        if isinstance(item, WorkflowError):
            events.append(_invalid(request, item, path, index, len(chosen)))
        else:
            events.extend(_plan_workflow(request, item, index, len(chosen)))
    return events


@functools.lru_cache(maxsize=512)
def _load(text: str, path: str) -> Workflow:
    """Loading is pure and workflows change rarely: the same text at the same path loads once."""
    return load_workflow(text, path)


def _rejected(request: RunRequested, reason: str, path: str) -> RunRejected:
    return RunRejected(run_id=request.run_id, reason=reason, problems=[Problem(path=path, message=reason)])


def _invalid(request: RunRequested, error: WorkflowError, path: str, index: int, count: int) -> RunRejected:
    problems = [Problem(path=d.path, line=d.line, column=d.column, message=d.message) for d in error.diagnostics]
    return RunRejected(
        run_id=request.run_id,
        workflow=path,
        index=index,
        count=count,
        reason=f"{path} is not a valid workflow",
        problems=problems,
    )


def _plan_workflow(request: RunRequested, workflow: Workflow, index: int, count: int) -> list[RunEvent]:
    try:
        legs = {key: _legs(job) for key, job in workflow.jobs.items()}
    except (MatrixError, ExpressionError) as error:
        problem = Problem(path=workflow.path, message=str(error))
        return [
            RunRejected(
                run_id=request.run_id,
                workflow=workflow.path,
                index=index,
                count=count,
                reason=str(error),
                problems=[problem],
            )
        ]
    chosen = _chosen_jobs(workflow, request.jobs)
    ids = {key: [job_id_for(workflow.path, key, leg) for leg, _ in legs[key]] for key in chosen}
    events: list[RunEvent] = []
    for key in chosen:
        job = workflow.jobs[key]
        for (_leg, matrix), job_id in zip(legs[key], ids[key], strict=True):
            events.append(
                JobPlanned(
                    run_id=request.run_id,
                    job_id=job_id,
                    workflow=workflow.path,
                    job_key=key,
                    name=_job_name(job, matrix),
                    needs=[needed for need in job.needs for needed in ids[need]],
                    condition=job.if_,
                    runs_on=_labels(job.runs_on, matrix),
                    spec=job.model_dump(mode="json"),
                    workflow_env=dict(workflow.env),
                    workflow_defaults=dict(workflow.defaults),
                    matrix=matrix,
                )
            )
    events.append(
        RunPlanned(
            run_id=request.run_id,
            workflow=workflow.path,
            workflow_name=workflow.name or workflow.path,
            index=index,
            count=count,
            jobs=[job_id for key in chosen for job_id in ids[key]],
            concurrency=workflow.concurrency,
        )
    )
    return events


def _chosen_jobs(workflow: Workflow, wanted: list[str]) -> list[str]:
    """The workflow's jobs in file order: all of them, or the wanted ones with every job they need."""
    if not wanted:
        return list(workflow.jobs)
    keep: set[str] = set()
    pending = [key for key in wanted if key in workflow.jobs]
    while pending:
        key = pending.pop()
        if key not in keep:
            keep.add(key)
            pending.extend(workflow.jobs[key].needs)
    return [key for key in workflow.jobs if key in keep]


def _legs(job: Job) -> list[tuple[int | None, dict[str, Any] | None]]:
    matrix = (job.strategy or {}).get("matrix")
    if not matrix:
        return [(None, None)]
    if not isinstance(matrix, Mapping):
        raise MatrixError(f"the matrix of job '{job.id}' is computed from an expression, which is not planned yet")
    combinations = expand_matrix(matrix)
    return [(leg, combination) for leg, combination in enumerate(combinations, start=1)] or [(None, None)]


def _job_name(job: Job, matrix: dict[str, Any] | None) -> str:
    name = job.name or job.id
    if matrix is not None:
        name = matrix_job_name(name, matrix)
    return interpolate(name, {"matrix": matrix or {}}) if "${{" in name else name


def _labels(runs_on: Any, matrix: dict[str, Any] | None) -> list[str]:
    if isinstance(runs_on, Mapping):
        runs_on = runs_on.get("labels", [])
    values = runs_on if isinstance(runs_on, list) else [runs_on] if runs_on else []
    contexts = {"matrix": matrix or {}}
    return [interpolate(str(value), contexts) if "${{" in str(value) else str(value) for value in values]
