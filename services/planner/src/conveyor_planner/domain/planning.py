"""From a run request and the workflow files at its commit to the events that plan the run."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import PurePosixPath

from conveyor_events import Problem, RunEvent, RunPlanned, RunRejected, RunRequested
from conveyor_workflow import ExpressionError, MatrixError, Workflow, WorkflowError, load_workflow, triggered

from conveyor_planner.domain.calls import CallError, RemoteFiles, RemoteWorkflows
from conveyor_planner.domain.expansion import expand_jobs

WORKFLOWS_DIR = ".github/workflows"


def job_id_for(workflow_path: str, job_key: str, leg: int | None = None) -> str:
    """A job's id within its run: `<workflow file stem>.<job key>`, and `.<n>` for the n-th matrix leg."""
    stem = PurePosixPath(workflow_path).stem
    return f"{stem}.{job_key}" if leg is None else f"{stem}.{job_key}.{leg}"


def plan_run(
    request: RunRequested,
    files: Mapping[str, str],
    remote: RemoteWorkflows | None = None,
    *,
    changed_files: list[str] | None = None,
    head_commit_message: str | None = None,
) -> list[RunEvent]:
    """Plan every workflow in `files` (path → text) that `request` triggers; `remote` reads the workflows of other
    repositories that they call (without it, such a call is refused). `changed_files` are what the push or pull
    request changed, for path filters (None: unknown, the filters are met); `head_commit_message` a pull
    request's head commit message, for its skip markers.

    A workflow that cannot be loaded is rejected with all its problems: GitHub cannot tell whether it would
    have been triggered, so it fails the run. Each planned workflow gives its `JobPlanned` events followed by
    one `RunPlanned`; `index`/`count` let the scheduler know when every workflow has been accounted for.
    """
    if not files:
        return [_rejected(request, f"no workflow files in {WORKFLOWS_DIR}", WORKFLOWS_DIR, nothing=True)]
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
        if wanted and triggered(
            workflow,
            request.event_name,
            request.payload,
            changed_files=changed_files,
            head_commit_message=head_commit_message,
        ):
            chosen.append((path, workflow))
    if not chosen:
        reason = f"no workflow is triggered by '{request.event_name}'"
        return [_rejected(request, reason, WORKFLOWS_DIR, nothing=True)]
    events: list[RunEvent] = []
    shared = RemoteFiles(remote)
    for index, (path, item) in enumerate(chosen, start=1):
        if isinstance(item, WorkflowError):
            events.append(_invalid(request, item, path, index, len(chosen)))
        else:
            events.extend(_plan_workflow(request, item, files, shared, index, len(chosen)))
    return events


@functools.lru_cache(maxsize=512)
def _load(text: str, path: str) -> Workflow:
    """Loading is pure and workflows change rarely: the same text at the same path loads once."""
    return load_workflow(text, path)


def _rejected(request: RunRequested, reason: str, path: str, *, nothing: bool = False) -> RunRejected:
    return RunRejected(
        run_id=request.run_id, reason=reason, problems=[Problem(path=path, message=reason)], nothing_triggered=nothing
    )


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


def _plan_workflow(
    request: RunRequested,
    workflow: Workflow,
    files: Mapping[str, str],
    remote: RemoteWorkflows | None,
    index: int,
    count: int,
) -> list[RunEvent]:
    try:
        jobs = expand_jobs(request.run_id, workflow, _chosen_jobs(workflow, request.jobs), files, _load, remote)
    except (MatrixError, ExpressionError) as error:
        problems = [Problem(path=workflow.path, message=str(error))]
        return [_not_planned(request, workflow, index, count, str(error), problems)]
    except CallError as error:
        return [_not_planned(request, workflow, index, count, error.problems[0].message, error.problems)]
    planned = RunPlanned(
        run_id=request.run_id,
        workflow=workflow.path,
        workflow_name=workflow.name or workflow.path,
        index=index,
        count=count,
        jobs=[job.job_id for job in jobs],
        concurrency=workflow.concurrency,
        run_name=workflow.run_name,
    )
    return [*jobs, planned]


def _not_planned(
    request: RunRequested, workflow: Workflow, index: int, count: int, reason: str, problems: list[Problem]
) -> RunRejected:
    return RunRejected(
        run_id=request.run_id, workflow=workflow.path, index=index, count=count, reason=reason, problems=problems
    )


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
