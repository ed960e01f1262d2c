"""Late matrices: a job whose `strategy.matrix` is computed from expressions, expanded once its needs finished.

The planner plans such a job once, with its matrix as written (`JobPlanned.matrix_expression`). When its turn
comes (the jobs it needs completed, its `if:` held) the matrix is evaluated in the contexts GitHub allows in
`strategy` (github, needs, vars, inputs) and expanded by `conveyor_workflow.expand_matrix`, as a static matrix
is: `MatrixExpanded`, then a `JobPlanned` per leg with the id, name and labels the planner gives a static leg.
The job is replaced by its legs, and a job that needed it needs every leg. A matrix that cannot be expanded
fails the job, and its dependants are skipped as usual.

A call of a reusable workflow whose matrix is computed so is planned once (`CallFrame.matrix_expression`): its
jobs (`ci.call/build`, …) stand for every leg's. When the caller's turn comes, each of them is expanded as a job
is, into its jobs in each leg of the call (`ci.call.1/build`, `ci.call.2/build`), named and nested as the
planner names and nests the jobs of a static leg (`call (a) / build`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from conveyor_events import CallFrame, Conclusion, JobCompleted, JobPlanned, MatrixExpanded, RunEvent
from conveyor_workflow import ExpressionError, MatrixError, expand_matrix, interpolate, matrix_job_name

from conveyor_scheduler.domain import rules
from conveyor_scheduler.domain.state import JobState, RunState

_STRATEGY_CONTEXTS = ("github", "needs", "vars", "inputs")


def expand(run: RunState, job: JobState, contexts: Mapping[str, Any]) -> list[RunEvent]:
    """The job's legs (`MatrixExpanded` then a `JobPlanned` each), or its failure when its matrix cannot be
    expanded: an expression that fails, a value that is not a mapping, an empty matrix, more than 256 legs."""
    plan = job.plan
    allowed = {name: contexts[name] for name in _STRATEGY_CONTEXTS if name in contexts}
    try:
        matrix = _plain(_evaluated(plan.matrix_expression, allowed))
        combinations = expand_matrix(matrix)
    except (ExpressionError, MatrixError) as error:
        reason = f"Error when evaluating 'strategy' for job '{plan.job_key}' of {plan.workflow}: {error}"
        return [JobCompleted(run_id=run.run_id, job_id=plan.job_id, attempt=max(job.attempt, 1),
                             conclusion=Conclusion.FAILURE, error=reason)]
    legs = [_leg(plan, index, combination, contexts) for index, combination in enumerate(combinations, start=1)]
    expanded = MatrixExpanded(run_id=run.run_id, job_id=plan.job_id, matrix=matrix, legs=[leg.job_id for leg in legs])
    return [expanded, *legs]


def late_call(plan: JobPlanned) -> int | None:
    """The depth of the outermost call `plan` runs within whose matrix is still to be expanded, else None."""
    for depth, frame in enumerate(plan.call):
        if frame.matrix_expression is not None:
            return depth
    return None


def expand_call(run: RunState, job: JobState, depth: int, contexts: Mapping[str, Any]) -> list[RunEvent]:
    """The jobs of the call at `depth` of `job`'s calls, each expanded into its jobs in every leg of the caller's
    matrix (a `MatrixExpanded` each, then their `JobPlanned`s leg by leg), or each failed when the matrix cannot
    be expanded. `contexts` are the caller's."""
    frame = job.plan.call[depth]
    members = [
        other
        for other in run.jobs.values()
        if other.status == "pending"
        and late_call(other.plan) == depth
        and other.plan.call[depth].job_id == frame.job_id
    ]
    allowed = {name: contexts[name] for name in _STRATEGY_CONTEXTS if name in contexts}
    try:
        matrix = _plain(_evaluated(frame.matrix_expression, allowed))
        combinations = expand_matrix(matrix)
    except (ExpressionError, MatrixError) as error:
        caller_workflow = job.plan.call[depth - 1].workflow if depth else job.plan.workflow
        reason = f"Error when evaluating 'strategy' for job '{frame.job_key}' of {caller_workflow}: {error}"
        return [
            JobCompleted(run_id=run.run_id, job_id=member.plan.job_id, attempt=max(member.attempt, 1),
                         conclusion=Conclusion.FAILURE, error=reason)
            for member in members
        ]
    outer = f"{job.plan.call[depth - 1].name} / " if depth else ""
    written = frame.name.removeprefix(outer)
    calls = []
    for index, combination in enumerate(combinations, start=1):
        name = outer + _interpolated(matrix_job_name(written, combination), {**contexts, "matrix": combination})
        leg = frame.model_copy(update={"job_id": f"{frame.job_id}.{index}", "name": name, "matrix": combination,
                                       "matrix_expression": None})
        calls.append(leg)
    planned = [[_in_leg(member.plan, depth, leg) for member in members] for leg in calls]
    expansions = [
        MatrixExpanded(run_id=run.run_id, job_id=member.plan.job_id, matrix=matrix,
                       legs=[jobs[position].job_id for jobs in planned])
        for position, member in enumerate(members)
    ]
    return [*expansions, *(plan for jobs in planned for plan in jobs)]


def _in_leg(plan: JobPlanned, depth: int, leg: CallFrame) -> JobPlanned:
    """`plan`, a job of the call at `depth`, as the job of that call's `leg`: ids and names under the leg's."""
    frame = plan.call[depth]
    within, into = f"{frame.job_id}/", f"{leg.job_id}/"
    shown, renamed = f"{frame.name} / ", f"{leg.name} / "

    def moved(job_id: str) -> str:
        return into + job_id.removeprefix(within) if job_id.startswith(within) else job_id

    def named(name: str) -> str:
        return renamed + name.removeprefix(shown) if name.startswith(shown) else name

    inner = [
        call.model_copy(update={"job_id": moved(call.job_id), "name": named(call.name),
                                "needs": [moved(need) for need in call.needs]})
        for call in plan.call[depth + 1 :]
    ]
    return plan.model_copy(
        update={
            "job_id": moved(plan.job_id),
            "name": named(plan.name),
            "needs": [moved(need) for need in plan.needs],
            "call": [*plan.call[:depth], leg, *inner],
        }
    )


def expanded(run: RunState, event: MatrixExpanded) -> RunState:
    """The run with the job replaced by its legs (planned by the `JobPlanned`s that follow) in every `needs`."""
    job = run.jobs.get(event.job_id)
    if job is None or (job.plan.matrix_expression is None and late_call(job.plan) is None):
        return run
    into = {**run.expanded, event.job_id: tuple(event.legs)}
    jobs = {job_id: _rewired(other, into) for job_id, other in run.jobs.items() if job_id != event.job_id}
    return replace(run, jobs=jobs, expanded=into)


def rewired(plan: JobPlanned, expanded: Mapping[str, Sequence[str]]) -> JobPlanned:
    """`plan` needing the legs of every expanded job it needed, in its own `needs` and its calls' `needs`."""
    if not expanded:
        return plan
    needs = _replaced(plan.needs, expanded)
    frames = [frame.model_copy(update={"needs": _replaced(frame.needs, expanded)}) for frame in plan.call]
    if needs == plan.needs and all(new.needs == old.needs for new, old in zip(frames, plan.call, strict=True)):
        return plan
    return plan.model_copy(update={"needs": needs, "call": frames})


def _rewired(job: JobState, expanded: Mapping[str, Sequence[str]]) -> JobState:
    plan = rewired(job.plan, expanded)
    return job if plan is job.plan else replace(job, plan=plan)


def _replaced(needs: list[str], expanded: Mapping[str, Sequence[str]]) -> list[str]:
    return [leg for need in needs for leg in expanded.get(need, (need,))]


def _leg(plan: JobPlanned, index: int, combination: dict[str, Any], contexts: Mapping[str, Any]) -> JobPlanned:
    """The leg as the planner plans a static one: `<job id>.<n>`, `name (a, b)`, labels that read `matrix`."""
    scope = {**contexts, "matrix": combination}
    name = matrix_job_name(plan.name, combination)
    return plan.model_copy(
        update={
            "job_id": f"{plan.job_id}.{index}",
            "name": _interpolated(name, scope),
            "runs_on": [_interpolated(label, scope) for label in plan.runs_on],
            "matrix": combination,
            "matrix_expression": None,
        }
    )


def _interpolated(text: str, contexts: Mapping[str, Any]) -> str:
    """`text` with its expressions evaluated; as written when they cannot be (the runner or a later step may)."""
    if "${{" not in text:
        return text
    try:
        return interpolate(text, contexts)
    except ExpressionError:
        return text


def _evaluated(raw: Any, contexts: Mapping[str, Any]) -> Any:
    """`raw` with every `${{ }}` string in it evaluated: a lone expression keeps its type (`fromJSON` gives a
    mapping or an array), text around one makes a string."""
    if isinstance(raw, str):
        return rules.evaluated(raw, contexts)
    if isinstance(raw, Mapping):
        return {key: _evaluated(value, contexts) for key, value in raw.items()}
    if isinstance(raw, list | tuple):
        return [_evaluated(item, contexts) for item in raw]
    return raw


def _plain(value: Any) -> Any:
    """JSON-like data for the events: mappings as dicts with string keys, sequences as lists."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
