"""Jobs of called reusable workflows: a call's `inputs` and `if:`, and a call seen as one job by its dependants.

The planner expands a call into the called workflow's jobs, each carrying the calls it runs within
(`JobPlanned.call`, outermost first). A workflow at depth d (0: the triggered one) names a job by the d-th part
of its key path (`call/build` is `call` at depth 0, `build` at depth 1), so every job of a call answers to the
caller's key. A call's result is the worst of its jobs' (failure, cancelled, success; skipped when all were),
and its outputs are the called workflow's `on.workflow_call.outputs` over the `jobs` context of its jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from conveyor_events import CallFrame, Conclusion, JobQueued, NeedResult
from conveyor_workflow import ExpressionError, Status, evaluate_condition, interpolate

from conveyor_scheduler.domain import rules
from conveyor_scheduler.domain.conclusions import combined, effective, status_over
from conveyor_scheduler.domain.contexts import cancelled, job_contexts, workflow_contexts
from conveyor_scheduler.domain.state import JobState, RunState

_UNSET: dict[str, Any] = {"string": "", "boolean": False, "number": 0}


class CallInputError(ValueError):
    """A `with:` value that does not fit the type the called workflow declares for the input."""


def needs_context(run: RunState, job: JobState) -> dict[str, NeedResult]:
    """The `needs` context: each needed job or call of the job's own workflow, with its result and outputs.

    The jobs a called job waits for because its caller needs them are not in it: they belong to the caller.
    """
    needed = [run.jobs[need] for need in job.plan.needs if need in run.jobs]
    return results(run, needed, job.plan.call)


def results(run: RunState, jobs: Iterable[JobState], frames: Sequence[CallFrame]) -> dict[str, NeedResult]:
    """The result and outputs of each job or call among `jobs` that the workflow inside `frames` names."""
    depth, within = len(frames), [frame.job_id for frame in frames]
    groups: dict[str, list[JobState]] = {}
    for job in jobs:
        if depth == 0 or ([frame.job_id for frame in job.plan.call[:depth]] == within and len(job.plan.call) >= depth):
            groups.setdefault(job.plan.job_key.split("/")[depth], []).append(job)
    return {name: _result(run, members, depth) for name, members in groups.items()}


def _result(run: RunState, members: list[JobState], depth: int) -> NeedResult:
    """Matrix legs combined; a call's jobs combined, and its outputs merged.

    Outputs are merged in the order the legs completed, so the last to complete wins, as on GitHub; a leg's
    empty value does not hide another leg's (the outputs are "combined from all jobs inside the matrix"). Of a
    matrix of calls, only a leg that succeeded and a value it actually set count ("the output set by the last
    successful completing reusable workflow of the matrix which actually sets a value"); a single job or call
    gives its outputs as they are.
    """
    result = combined([effective(run, member) or Conclusion.SKIPPED for member in members])
    outputs: dict[str, str] = {}
    calls: dict[str, list[JobState]] = {}
    legs = [member for member in members if len(member.plan.call) == depth]
    if len(legs) > 1:
        legs.sort(key=lambda member: member.since)  # stable, as sorted() is
    for member in legs:
        outputs.update(
            member.outputs
            if len(legs) == 1
            else {name: value for name, value in member.outputs.items() if value != "" or name not in outputs}
        )
    for member in members:
        if len(member.plan.call) > depth:
            calls.setdefault(member.plan.call[depth].job_id, []).append(member)
    for called in sorted(calls.values(), key=lambda jobs: max(job.since for job in jobs)):
        values = call_outputs(run, called, called[0].plan.call[: depth + 1])
        if called[0].plan.call[depth].matrix is None:  # one call, no matrix: its outputs whatever they are
            outputs.update(values)
        elif combined([effective(run, job) or Conclusion.SKIPPED for job in called]) == Conclusion.SUCCESS:
            outputs.update({name: value for name, value in values.items() if value != ""})
    return NeedResult(result=result, outputs=outputs)


def call_outputs(run: RunState, jobs: list[JobState], frames: Sequence[CallFrame]) -> dict[str, str]:
    """The outputs of the innermost call of `frames`, from its jobs; a value that cannot be evaluated is empty."""
    jobs_context = {name: result.model_dump(mode="json") for name, result in results(run, jobs, frames).items()}
    contexts = {
        **workflow_contexts(run, _top(run, frames)),
        "inputs": _inputs_or_none(run, frames),
        "jobs": jobs_context,
    }
    values: dict[str, str] = {}
    for name, expression in frames[-1].outputs.items():
        try:
            values[name] = interpolate(expression, contexts)
        except ExpressionError:
            values[name] = ""
    return values


def call_inputs(run: RunState, frames: Sequence[CallFrame]) -> dict[str, Any]:
    """The `inputs` context inside the innermost call of `frames` (the run's inputs outside every call).

    Each input is its `with:` value, else its default, else the empty value of its type, evaluated in the
    caller's contexts and checked against its type. A `with:` value must be of the input's type, as on GitHub:
    a string (a job's output, a dispatch input) given to a boolean or number input is refused, where
    `fromJSON` would convert it. Raises `ExpressionError` or `CallInputError`.
    """
    request = run.request
    assert request is not None
    if not frames:
        return dict(request.inputs)
    frame, contexts = frames[-1], caller_contexts(run, frames)
    values: dict[str, Any] = {}
    for name, spec in frame.inputs.items():
        kind = str(spec.get("type", "string"))
        given = frame.with_.get(name)
        raw = spec.get("default") if given is None else given
        if raw is None:
            values[name] = _UNSET.get(kind, "")
        else:
            values[name] = _typed(frame, name, kind, rules.evaluated(raw, contexts), strict=given is not None)
    return values


def caller_contexts(run: RunState, frames: Sequence[CallFrame]) -> dict[str, Any]:
    """What the caller of the innermost call of `frames` reads in its `with:` and `if:`."""
    contexts = _strategy_contexts(run, frames)
    contexts["matrix"] = dict(frames[-1].matrix or {})
    contexts["strategy"] = _caller_strategy(run, frames, contexts)
    return contexts


def _strategy_contexts(run: RunState, frames: Sequence[CallFrame]) -> dict[str, Any]:
    """What the innermost caller of `frames` reads in its `strategy:`: github, vars, inputs and needs."""
    outer, frame = frames[:-1], frames[-1]
    needed = [run.jobs[need] for need in frame.needs if need in run.jobs]
    needs = {name: result.model_dump(mode="json") for name, result in results(run, needed, outer).items()}
    return {**workflow_contexts(run, _top(run, frames)), "inputs": call_inputs(run, outer), "needs": needs}


def _caller_setting(run: RunState, frames: Sequence[CallFrame], read: Callable[..., Any]) -> Any:
    """`read` (a `rules` function of a job spec and contexts) of the innermost caller's `strategy:`, its
    contexts worked out only when the setting is an expression."""
    spec = {"strategy": frames[-1].strategy}
    written = any(isinstance(value, str) and "${{" in value for value in frames[-1].strategy.values())
    try:
        return read(spec, _strategy_contexts(run, frames) if written else {})
    except (ExpressionError, CallInputError):
        return read(spec, {})


def call_legs(run: RunState, frames: Sequence[CallFrame]) -> dict[str, list[JobState]]:
    """The legs of the innermost caller of `frames` (one when it has no matrix) in plan order, each with the jobs
    planned within it."""
    depth, frame = len(frames) - 1, frames[-1]
    outer = [outer.job_id for outer in frames[:-1]]
    legs: dict[str, list[JobState]] = {}
    for job in run.jobs.values():
        call = job.plan.call
        if len(call) > depth and call[depth].job_key == frame.job_key and [f.job_id for f in call[:depth]] == outer:
            legs.setdefault(call[depth].job_id, []).append(job)
    return legs or {frame.job_id: []}


def _caller_strategy(run: RunState, frames: Sequence[CallFrame], contexts: Mapping[str, Any]) -> dict[str, Any]:
    """The `strategy` context of the innermost caller of `frames`, as one of its legs sees it; `contexts` are
    what its settings read."""
    frame, legs = frames[-1], list(call_legs(run, frames))
    spec = {"strategy": frame.strategy}
    return {
        "fail-fast": rules.fail_fast(spec, contexts),
        "job-index": legs.index(frame.job_id) if frame.job_id in legs else 0,
        "job-total": len(legs),
        "max-parallel": rules.max_parallel(spec, contexts) or len(legs),
    }


def caller_fails_fast(run: RunState, frames: Sequence[CallFrame]) -> bool:
    """The innermost caller's `strategy.fail-fast`, true by default."""
    return bool(_caller_setting(run, frames, rules.fail_fast))


def failed_call_leg(run: RunState, job: JobState) -> JobState | None:
    """A job of another leg of a matrix of calls the job runs within that failed for good, when that caller's
    `fail-fast` is on: the whole matrix of calls gives way, as a matrix job's legs do. None otherwise."""
    if not job.plan.call:
        return None  # asked of every job on every decision; most are called by no one
    from conveyor_scheduler.domain.progress import retryable  # progress reads this module

    for depth, frame in enumerate(job.plan.call):
        if frame.matrix is None or not caller_fails_fast(run, job.plan.call[: depth + 1]):
            continue  # a caller without a matrix is one leg: there is no other to fail
        legs = call_legs(run, job.plan.call[: depth + 1])
        for leg, members in legs.items():
            if leg == frame.job_id:
                continue
            for member in members:
                failed = member.status == "completed" and effective(run, member) == Conclusion.FAILURE
                if failed and not retryable(run, member):
                    return member
    return None


def call_legs_busy(run: RunState, job: JobState) -> bool:
    """The job's leg of a matrix of calls has not started while its caller's `max-parallel` legs are in
    progress: it waits, as a matrix job's legs do."""
    for depth, frame in enumerate(job.plan.call):
        if frame.strategy.get("max-parallel") is None:
            continue
        limit = _caller_setting(run, job.plan.call[: depth + 1], rules.max_parallel)
        if limit is None:
            continue
        legs = call_legs(run, job.plan.call[: depth + 1])
        if _leg_in_progress(legs.get(frame.job_id, [])):
            continue
        if sum(_leg_in_progress(members) for leg, members in legs.items() if leg != frame.job_id) >= limit:
            return True
    return False


def _leg_in_progress(members: list[JobState]) -> bool:
    """A leg started (one of its jobs left `pending`, or was admitted) and not every job of it completed."""
    started = any(job.status != "pending" or job.holds or job.approved for job in members)
    return started and not all(job.status == "completed" for job in members)


def _top(run: RunState, frames: Sequence[CallFrame]) -> str:
    """The triggered workflow the calls of `frames` were made from: the one of any job planned within them."""
    outermost = frames[0].job_id if frames else None
    found = (job.plan.workflow for job in run.jobs.values() if job.plan.call and job.plan.call[0].job_id == outermost)
    return next(found, "")


def closed_call(run: RunState, job: JobState, frames: Sequence[CallFrame] | None = None) -> CallFrame | None:
    """The outermost call the job runs within (of `frames`, outermost first: by default all of them) whose
    caller's `if:` is false: the whole call is skipped.

    Raises `ExpressionError` or `CallInputError` when a caller's contexts cannot be evaluated.
    """
    frames = job.plan.call if frames is None else frames
    for depth, frame in enumerate(frames):
        contexts = caller_contexts(run, frames[: depth + 1])
        if not evaluate_condition(frame.condition, contexts, status=_caller_status(run, job, frames[: depth + 1])):
            return frame
    return None


def queued(
    run: RunState, job: JobState, needs: dict[str, NeedResult] | None = None, contexts: dict[str, Any] | None = None
) -> JobQueued:
    """The job's next attempt queued, with what its runner needs of the run: the `needs`, `strategy` and (in a
    called workflow) `inputs` contexts, its workflow's run number and the run's attempt, and its `runs-on` labels
    evaluated."""
    if needs is None or contexts is None:
        needs = needs_context(run, job)
        contexts = job_contexts(run, job, needs)
    return JobQueued(
        run_id=run.run_id,
        job_id=job.plan.job_id,
        attempt=job.attempt + 1,
        needs=needs,
        labels=labels(run, job, contexts),
        inputs=contexts["inputs"] if job.plan.call else None,
        strategy=contexts["strategy"],
        run_number=int(contexts["github"]["run_number"]),
        run_attempt=run.attempt,
        callers=[_secret_contexts(run, job.plan.call[: depth + 1]) for depth in range(len(job.plan.call))],
    )


def _secret_contexts(run: RunState, frames: Sequence[CallFrame]) -> dict[str, Any]:
    """The contexts the innermost caller of `frames` reads in its `secrets:` besides github, vars and secrets."""
    try:
        contexts = caller_contexts(run, frames)
    except (ExpressionError, CallInputError):
        return {}
    return {"needs": contexts["needs"], "inputs": contexts["inputs"]}


def labels(run: RunState, job: JobState, contexts: Mapping[str, Any]) -> list[str]:
    """The `runs-on` labels of the job; a called job's read its inputs, so they are evaluated when it is queued."""
    if not job.plan.call or not any("${{" in label for label in job.plan.runs_on):
        return list(job.plan.runs_on)
    raw = job.plan.spec.get("runs_on")
    if isinstance(raw, Mapping):
        raw = raw.get("labels", [])
    values = raw if isinstance(raw, list) else [raw] if raw else []
    try:
        return [str(rules.evaluated(value, contexts)) for value in values]
    except ExpressionError:
        return list(job.plan.runs_on)


def _caller_status(run: RunState, job: JobState, frames: Sequence[CallFrame]) -> Status:
    """What the status functions see in the `if:` of the innermost caller of `frames`: its needs' results."""
    if cancelled(run, job):
        return "cancelled"
    within = [frame.job_id for frame in frames[:-1]]
    found: set[str] = set()
    pending = list(frames[-1].needs)
    while pending:
        need = pending.pop()
        if need not in found and need in run.jobs:
            found.add(need)
            pending.extend(run.jobs[need].plan.needs)
    scoped = [run.jobs[need] for need in found if [f.job_id for f in run.jobs[need].plan.call[: len(within)]] == within]
    return status_over(run, scoped)


def _typed(frame: CallFrame, name: str, kind: str, value: Any, *, strict: bool) -> Any:
    """`value` as the input's `kind`; only a default (not `strict`) may be a string spelling a boolean or number."""
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if not strict and isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        try:
            number = None if strict else float(str(value))
        except ValueError:
            number = None
        if number is not None:
            return int(number) if number.is_integer() else number
    else:
        return ("true" if value else "false") if isinstance(value, bool) else "" if value is None else str(value)
    raise CallInputError(
        f"the job '{frame.job_key}' passes {value!r} to input '{name}' of {frame.workflow}, which is a {kind}"
    )


def _inputs_or_none(run: RunState, frames: Sequence[CallFrame]) -> dict[str, Any]:
    try:
        return call_inputs(run, frames)
    except (ExpressionError, CallInputError):
        return {}
