"""Checking a call of a reusable workflow (`jobs.<id>.uses`) against the workflow it calls, before expanding it.

What GitHub refuses when the run starts is refused here, naming the calling job: a remote workflow (not
supported yet), a file that is missing, invalid or has no `on: workflow_call`, a call cycle, nesting deeper than
GitHub's limit, an unknown or missing input, an input literal of the wrong type, an unknown or missing secret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from conveyor_events import Problem
from conveyor_workflow import Job, Workflow, WorkflowError

MAX_LEVELS = 10
"""GitHub connects at most ten levels of workflows: the top-level caller and nine levels of reusable workflows."""
LOCAL_PREFIX = "./"

Loader = Callable[[str, str], Workflow]


class CallError(Exception):
    """A call that cannot run; `problems` say where and why, the first naming the calling job."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems[0].message)
        self.problems = problems


def called_workflow(
    caller: Workflow, job: Job, files: Mapping[str, str], chain: tuple[str, ...], load: Loader
) -> Workflow:
    """The workflow `job` calls, checked; `chain` holds the workflow files from the top-level caller down."""
    uses = job.uses or ""
    if not uses.startswith(LOCAL_PREFIX):
        raise _error(caller, job, f"remote reusable workflows are not supported yet: {uses}")
    path = uses.removeprefix(LOCAL_PREFIX)
    if path in chain:
        raise _error(caller, job, f"reusable workflows call each other in a cycle: {' → '.join((*chain, path))}")
    if len(chain) >= MAX_LEVELS:
        levels = " → ".join((*chain, path))
        raise _error(caller, job, f"reusable workflows nest deeper than {MAX_LEVELS} levels: {levels}")
    text = files.get(path)
    if text is None:
        raise _error(caller, job, f"calls {uses}, which does not exist")
    try:
        called = load(text, path)
    except WorkflowError as error:
        first = _problem(caller, job, f"calls {uses}, which is not a valid workflow")
        rest = [Problem(path=d.path, line=d.line, column=d.column, message=d.message) for d in error.diagnostics]
        raise CallError([first, *rest]) from error
    if "workflow_call" not in called.on:
        raise _error(caller, job, f"calls {uses}, which is not a reusable workflow (it has no `on: workflow_call`)")
    _check_inputs(caller, job, call_spec(called).get("inputs") or {})
    _check_secrets(caller, job, call_spec(called).get("secrets") or {})
    return called


def call_spec(called: Workflow) -> dict[str, Any]:
    """The called workflow's `on.workflow_call` configuration: `inputs`, `outputs`, `secrets`."""
    spec = called.on.get("workflow_call")
    return dict(spec) if isinstance(spec, Mapping) else {}


def _check_inputs(caller: Workflow, job: Job, inputs: Mapping[str, Any]) -> None:
    problems: list[Problem] = []
    for name, value in job.with_.items():
        spec = inputs.get(name)
        if spec is None:
            problems.append(_problem(caller, job, f"input '{name}' is not defined by {job.uses}"))
        elif (wrong := _wrong_type(value, str(spec.get("type", "string")))) is not None:
            problems.append(_problem(caller, job, f"input '{name}' has type {spec.get('type')}, not {wrong}"))
    for name, spec in inputs.items():
        if spec.get("required") and name not in job.with_:
            problems.append(_problem(caller, job, f"input '{name}' is required by {job.uses} but not given"))
    if problems:
        raise CallError(problems)


def _wrong_type(value: Any, kind: str) -> str | None:
    """What a literal `with:` value is when it cannot be of type `kind`; expressions are checked when evaluated."""
    if isinstance(value, str) and "${{" in value:
        return None
    if kind == "boolean" and not isinstance(value, bool):
        return f"the {type(value).__name__} {value!r}"
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"the {type(value).__name__} {value!r}"
    return None


def _check_secrets(caller: Workflow, job: Job, secrets: Mapping[str, Any]) -> None:
    if job.secrets == "inherit":
        return
    passed: Mapping[str, Any] = job.secrets if isinstance(job.secrets, Mapping) else {}
    problems = [
        _problem(caller, job, f"secret '{name}' is not defined by {job.uses}") for name in passed if name not in secrets
    ]
    problems += [
        _problem(caller, job, f"secret '{name}' is required by {job.uses} but not passed")
        for name, spec in secrets.items()
        if isinstance(spec, Mapping) and spec.get("required") and name not in passed
    ]
    if problems:
        raise CallError(problems)


def _problem(caller: Workflow, job: Job, message: str) -> Problem:
    return Problem(path=caller.path, message=f"job '{job.id}': {message}")


def _error(caller: Workflow, job: Job, message: str) -> CallError:
    return CallError([_problem(caller, job, message)])
