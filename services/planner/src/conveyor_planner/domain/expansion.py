"""Expanding a workflow's jobs into the jobs of a run: one per matrix leg, and the jobs of every workflow it calls.

A job that calls a reusable workflow (`uses: ./.github/workflows/x.yml`) plans no job of its own: each of its
calls (one per matrix leg) becomes the called workflow's jobs, with ids under the caller's (`ci.call/build`,
`ci.call.2/build`), keys as paths (`call/build`), names as GitHub shows them (`call / build`) and the call they
run within (`JobPlanned.call`). The caller's `needs` hold for every called job, and a job that needs the caller
needs every job the call expanded to. A call of another repository's workflow
(`owner/repo/.github/workflows/x.yml@ref`) reads that repository's files through the `RemoteWorkflows` port, and
the `./` calls of that workflow read them too; call chains name such files `owner/repo@ref:path`.

A matrix computed from expressions (`matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}`, or a vector,
`include` or `exclude` written so) cannot be expanded before the jobs it reads have finished: such a job is
planned once, unexpanded, with its matrix as written (`JobPlanned.matrix_expression`), and the scheduler expands
it then, giving its legs the ids, names and labels this module gives static legs. A call with such a matrix is
planned once too (`CallFrame.matrix_expression`, ids `ci.call/build`), and the scheduler plans its jobs again
for each leg (`ci.call.1/build`, …).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from conveyor_events import CallFrame, JobPlanned
from conveyor_workflow import (
    ExpressionError,
    Job,
    Workflow,
    expand_matrix,
    interpolate,
    matrix_job_name,
    matrix_needs_late_evaluation,
)

from conveyor_planner.domain.calls import (
    Loader,
    Origin,
    RemoteFiles,
    RemoteWorkflows,
    call_spec,
    called_workflow,
    check_permissions,
    count_unique,
)


@dataclass(frozen=True)
class _Scope:
    """Where a workflow's jobs are expanded: in the triggered workflow (no frames), or within calls."""

    run_id: str
    top: str
    top_name: str
    """The triggered workflow's `name:` (its path when it has none): `github.workflow`, in its calls too."""
    files: Mapping[str, str]
    load: Loader
    remote: RemoteFiles
    chain: tuple[str, ...]
    id_prefix: str
    origin: Origin = field(default_factory=Origin)
    key_prefix: str = ""
    name_prefix: str = ""
    frames: tuple[CallFrame, ...] = ()
    outer_needs: tuple[str, ...] = ()
    unique: set[str] = field(default_factory=set)
    """The reusable workflows the triggered workflow's tree of calls has called so far, shared by its scopes."""
    permissions: dict[str, str] | None = None
    """The GITHUB_TOKEN permissions the workflow's caller passed on; None outside calls, or when only the
    repository's default is known."""


def expand_jobs(
    run_id: str,
    workflow: Workflow,
    keys: list[str],
    files: Mapping[str, str],
    load: Loader,
    remote: RemoteWorkflows | None = None,
) -> list[JobPlanned]:
    """The planned jobs of `keys` (in file order) of the triggered `workflow`, calls expanded; `remote` reads the
    workflows of other repositories (without it, calling one is refused).

    Raises `CallError` for a call that cannot run, `MatrixError` or `ExpressionError` for a matrix or a name
    that cannot be planned.
    """
    prefix = f"{PurePosixPath(workflow.path).stem}."
    scope = _Scope(
        run_id=run_id,
        top=workflow.path,
        top_name=workflow.name or workflow.path,
        files=files,
        load=load,
        remote=remote if isinstance(remote, RemoteFiles) else RemoteFiles(remote),
        chain=(workflow.path,),
        id_prefix=prefix,
    )
    return _expand(workflow, keys, scope)


def _expand(workflow: Workflow, keys: list[str], scope: _Scope) -> list[JobPlanned]:
    ids: dict[str, list[str]] = {}
    planned: dict[str, list[JobPlanned]] = {}
    for key in _needs_first(workflow, keys):
        job = workflow.jobs[key]
        needs = [*(needed for need in job.needs for needed in ids.get(need, [])), *scope.outer_needs]
        late = _late_matrix(job)
        if late is not None and job.uses is None:
            planned[key] = [_late(workflow, job, needs, scope)]
        elif late is not None:
            planned[key] = _leg(workflow, job, None, None, needs, scope, late=late)
        else:
            planned[key] = [e for leg, matrix in _legs(job) for e in _leg(workflow, job, leg, matrix, needs, scope)]
        ids[key] = [event.job_id for event in planned[key]]
    return [event for key in keys for event in planned[key]]


def _leg(
    workflow: Workflow,
    job: Job,
    leg: int | None,
    matrix: dict[str, Any] | None,
    needs: list[str],
    scope: _Scope,
    *,
    late: str | dict[str, Any] | None = None,
) -> list[JobPlanned]:
    """The planned jobs of one leg of `job`: the job itself, or every job of the workflow it calls. A call whose
    matrix is computed from expressions (`late`) is planned once, its name as written, for the scheduler to
    expand."""
    job_id = f"{scope.id_prefix}{job.id}" if leg is None else f"{scope.id_prefix}{job.id}.{leg}"
    shown = job.name or job.id if late is not None else _job_name(job, matrix, strict=not scope.frames)
    name = scope.name_prefix + shown
    if job.uses is None:
        return [
            JobPlanned(
                run_id=scope.run_id,
                job_id=job_id,
                workflow=scope.top,
                workflow_name=scope.top_name,
                job_key=scope.key_prefix + job.id,
                name=name,
                needs=needs,
                condition=job.if_,
                runs_on=_labels(job.runs_on, matrix, strict=not scope.frames),
                spec=job.model_dump(mode="json"),
                workflow_env=dict(workflow.env),
                workflow_defaults=dict(workflow.defaults),
                matrix=matrix,
                call=list(scope.frames),
            )
        ]
    target = called_workflow(workflow, job, scope.files, scope.origin, scope.chain, scope.load, scope.remote)
    count_unique(workflow, job, target, scope.unique)
    permissions = check_permissions(workflow, job, target, scope.permissions)
    called = target.workflow
    spec = call_spec(called)
    outputs = spec.get("outputs") or {}
    frame = CallFrame(
        job_id=job_id,
        job_key=job.id,
        workflow=called.path,
        name=name,
        needs=needs,
        condition=job.if_,
        with_=dict(job.with_),
        inputs=dict(spec.get("inputs") or {}),
        secrets=dict(job.secrets) if isinstance(job.secrets, Mapping) else {},
        inherit_secrets=job.secrets == "inherit",
        outputs={output: str(entry.get("value", "")) for output, entry in outputs.items()},
        matrix=matrix,
        strategy={key: value for key, value in (job.strategy or {}).items() if key != "matrix"},
        matrix_expression=late,
        concurrency=job.concurrency,
        workflow_concurrency=called.concurrency,
    )
    inner = _Scope(
        run_id=scope.run_id,
        top=scope.top,
        top_name=scope.top_name,
        files=target.files,
        load=scope.load,
        remote=scope.remote,
        chain=(*scope.chain, target.entry),
        id_prefix=f"{job_id}/",
        origin=target.origin,
        key_prefix=f"{scope.key_prefix}{job.id}/",
        name_prefix=f"{name} / ",
        frames=(*scope.frames, frame),
        outer_needs=tuple(needs),
        unique=scope.unique,
        permissions=permissions,
    )
    return _expand(called, list(called.jobs), inner)


def _late(workflow: Workflow, job: Job, needs: list[str], scope: _Scope) -> JobPlanned:
    """The one plan of a job whose matrix is computed from expressions: its name and labels are left as written,
    for the scheduler to evaluate for each leg."""
    return JobPlanned(
        run_id=scope.run_id,
        job_id=f"{scope.id_prefix}{job.id}",
        workflow=scope.top,
        workflow_name=scope.top_name,
        job_key=scope.key_prefix + job.id,
        name=scope.name_prefix + (job.name or job.id),
        needs=needs,
        condition=job.if_,
        runs_on=[str(value) for value in _label_values(job.runs_on)],
        spec=job.model_dump(mode="json"),
        workflow_env=dict(workflow.env),
        workflow_defaults=dict(workflow.defaults),
        matrix_expression=_late_matrix(job),
        call=list(scope.frames),
    )


def _late_matrix(job: Job) -> str | dict[str, Any] | None:
    """`strategy.matrix` when it (or a part of it) is computed from expressions, else None."""
    matrix = (job.strategy or {}).get("matrix")
    if not matrix or not matrix_needs_late_evaluation(matrix):
        return None
    return matrix if isinstance(matrix, str) else dict(matrix)


def _needs_first(workflow: Workflow, keys: list[str]) -> list[str]:
    """`keys` with every job after the jobs it needs (the loader refuses cycles), else in file order."""
    order: list[str] = []
    seen: set[str] = set()
    wanted = set(keys)

    def visit(key: str) -> None:
        if key in seen or key not in wanted:
            return
        seen.add(key)
        for need in workflow.jobs[key].needs:
            visit(need)
        order.append(key)

    for key in keys:
        visit(key)
    return order


def _legs(job: Job) -> list[tuple[int | None, dict[str, Any] | None]]:
    matrix = (job.strategy or {}).get("matrix")
    if not matrix:
        return [(None, None)]
    combinations = expand_matrix(matrix)
    return [(leg, combination) for leg, combination in enumerate(combinations, start=1)] or [(None, None)]


def _job_name(job: Job, matrix: dict[str, Any] | None, *, strict: bool) -> str:
    """The display name; in a called workflow one that reads `inputs` is left as written (they come later)."""
    name = job.name or job.id
    if matrix is not None:
        name = matrix_job_name(name, matrix)
    if "${{" not in name:
        return name
    try:
        return interpolate(name, {"matrix": matrix or {}})
    except ExpressionError:
        if strict:
            raise
        return name


def _labels(runs_on: Any, matrix: dict[str, Any] | None, *, strict: bool) -> list[str]:
    """`runs-on` as labels; in a called workflow a label that reads `inputs` is left for the scheduler."""
    values = _label_values(runs_on)
    contexts = {"matrix": matrix or {}}
    labels = []
    for value in values:
        text = str(value)
        try:
            labels.append(interpolate(text, contexts) if "${{" in text else text)
        except ExpressionError:
            if strict:
                raise
            labels.append(text)
    return labels


def _label_values(runs_on: Any) -> list[Any]:
    if isinstance(runs_on, Mapping):
        runs_on = runs_on.get("labels", [])
    return runs_on if isinstance(runs_on, list) else [runs_on] if runs_on else []
