"""Checking a call of a reusable workflow (`jobs.<id>.uses`) against the workflow it calls, before expanding it.

A call names a workflow of the same repository (`./.github/workflows/x.yml`, relative to the repository of the
calling workflow) or of another one (`owner/repo/.github/workflows/x.yml@ref`, read through the
`RemoteWorkflows` port). What GitHub refuses when the run starts is refused here, naming the calling job: a
remote repository or ref that cannot be read, a file that is missing, invalid or has no `on: workflow_call`, a
call cycle, nesting deeper than GitHub's limit, more unique workflows called than it allows, an unknown or
missing input, an input literal of the wrong type, an unknown or missing secret, a called job asking for more
GITHUB_TOKEN permissions than its caller has.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from conveyor_events import Problem
from conveyor_workflow import Job, Workflow, WorkflowError, elevated, granted

MAX_LEVELS = 10
"""GitHub connects at most ten levels of workflows: the top-level caller and nine levels of reusable workflows."""
MAX_UNIQUE = 50
"""GitHub calls at most 50 unique reusable workflows from one workflow file, the nested ones included."""
LOCAL_PREFIX = "./"
REMOTE_CALL = re.compile(r"(?P<owner>[^/@\s]+)/(?P<repo>[^/@\s]+)/(?P<path>\.github/workflows/[^/@\s]+)@(?P<ref>\S+)")
"""`{owner}/{repo}/.github/workflows/{filename}@{ref}`, the only form GitHub accepts for another repository."""

Loader = Callable[[str, str], Workflow]


class CallError(Exception):
    """A call that cannot run; `problems` say where and why, the first naming the calling job."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems[0].message)
        self.problems = problems


class RemoteWorkflowError(Exception):
    """The workflow files of another repository cannot be read at a ref; the message says why (unreachable,
    no such ref)."""


class RemoteWorkflows(Protocol):
    """Where the workflows of other repositories come from (a git server, a cache, an offline copy)."""

    def workflow_files(self, repository: str, ref: str) -> Mapping[str, str]:
        """The workflow files (path from the repository root → text) of `repository` (`owner/repo`) at `ref` (a
        commit SHA, tag or branch); `RemoteWorkflowError` when they cannot be read."""
        ...


@dataclass(frozen=True)
class Origin:
    """The repository a workflow file was read from: the run's own (no `repository`), or `owner/repo` at `ref`."""

    repository: str | None = None
    ref: str = ""

    def entry(self, path: str) -> str:
        """How a file of this repository appears in a call chain: its path, or `owner/repo@ref:path`."""
        return path if self.repository is None else f"{self.repository}@{self.ref}:{path}"

    def name(self, path: str) -> str:
        """How a file of this repository is named as a called workflow: its path, or as GitHub writes
        `job_workflow_ref` (`owner/repo/path@ref`)."""
        return path if self.repository is None else f"{self.repository}/{path}@{self.ref}"


@dataclass
class RemoteFiles:
    """The `RemoteWorkflows` port as one planning sees it: each repository and ref is read once, failures too, so
    that the calls of a matrix or of several jobs agree."""

    source: RemoteWorkflows | None
    _read: dict[tuple[str, str], Mapping[str, str] | RemoteWorkflowError] = field(default_factory=dict)

    def workflow_files(self, repository: str, ref: str) -> Mapping[str, str]:
        if self.source is None:
            raise RemoteWorkflowError("the planner has no source of remote workflows")
        key = (repository, ref)
        if key not in self._read:
            try:
                self._read[key] = self.source.workflow_files(repository, ref)
            except RemoteWorkflowError as error:
                self._read[key] = error
        found = self._read[key]
        if isinstance(found, RemoteWorkflowError):
            raise found
        return found


@dataclass(frozen=True)
class Called:
    """A checked call: the called workflow, the files of its repository (for its own `./` calls) and where from."""

    workflow: Workflow
    files: Mapping[str, str]
    origin: Origin
    path: str

    @property
    def entry(self) -> str:
        return self.origin.entry(self.path)


def called_workflow(
    caller: Workflow,
    job: Job,
    files: Mapping[str, str],
    origin: Origin,
    chain: tuple[str, ...],
    load: Loader,
    remote: RemoteFiles,
) -> Called:
    """The workflow `job` of `caller` (a file of `files`, read from `origin`) calls, checked; `chain` holds the
    workflow files from the top-level caller down, as `Origin.entry` names them."""
    uses = job.uses or ""
    if uses.startswith(LOCAL_PREFIX):
        path, called_origin, called_files = uses.removeprefix(LOCAL_PREFIX), origin, files
    else:
        path, repository, ref = _remote_target(caller, job, uses)
        if remote.source is None:
            raise _error(caller, job, f"remote reusable workflows are not supported yet: {uses}")
        called_origin = Origin(repository=repository, ref=ref)
        try:
            called_files = remote.workflow_files(repository, ref)
        except RemoteWorkflowError as error:
            raise _error(caller, job, f"cannot read {uses}: {error}") from error
    entry = called_origin.entry(path)
    if entry in chain:
        raise _error(caller, job, f"reusable workflows call each other in a cycle: {' → '.join((*chain, entry))}")
    if len(chain) >= MAX_LEVELS:
        levels = " → ".join((*chain, entry))
        raise _error(caller, job, f"reusable workflows nest deeper than {MAX_LEVELS} levels: {levels}")
    text = called_files.get(path)
    if text is None:
        where = "" if called_origin.repository is None else f" in {called_origin.repository} at '{called_origin.ref}'"
        raise _error(caller, job, f"calls {uses}, which does not exist{where}")
    name = called_origin.name(path)
    try:
        called = load(text, name)
    except WorkflowError as error:
        first = _problem(caller, job, f"calls {uses}, which is not a valid workflow")
        rest = [Problem(path=d.path, line=d.line, column=d.column, message=d.message) for d in error.diagnostics]
        raise CallError([first, *rest]) from error
    if "workflow_call" not in called.on:
        raise _error(caller, job, f"calls {uses}, which is not a reusable workflow (it has no `on: workflow_call`)")
    _check_inputs(caller, job, call_spec(called).get("inputs") or {})
    _check_secrets(caller, job, call_spec(called).get("secrets") or {})
    return Called(workflow=called, files=called_files, origin=called_origin, path=path)


def _remote_target(caller: Workflow, job: Job, uses: str) -> tuple[str, str, str]:
    """The file, repository and ref of `owner/repo/.github/workflows/x.yml@ref`."""
    match = REMOTE_CALL.fullmatch(uses)
    if match is None or {match["owner"], match["repo"]} & {".", ".."}:
        raise _error(
            caller,
            job,
            f"calls {uses}, which is not a reusable workflow reference: write ./.github/workflows/<file> for one of "
            "this repository, or <owner>/<repo>/.github/workflows/<file>@<ref> for one of another repository",
        )
    return match["path"], f"{match['owner']}/{match['repo']}", match["ref"]


def count_unique(caller: Workflow, job: Job, called: Called, unique: set[str]) -> None:
    """Add the workflow `job` calls to the `unique` ones the triggered workflow's tree of calls has called;
    raises `CallError` past `MAX_UNIQUE`."""
    unique.add(called.entry)
    if len(unique) > MAX_UNIQUE:
        raise _error(caller, job, f"calls {job.uses}, one more than the {MAX_UNIQUE} unique reusable workflows "
                                  "a workflow may call (its nested calls included)")


def check_permissions(
    caller: Workflow, job: Job, called: Called, inherited: Mapping[str, str] | None
) -> dict[str, str] | None:
    """The GITHUB_TOKEN permissions the calling `job` passes on (its own `permissions:`, else its workflow's,
    else `inherited`: None when only the repository's default is known); raises `CallError` when a job of the
    called workflow asks for more, which GitHub refuses (a called workflow may only lower them)."""
    allowed = granted(job.permissions) or granted(caller.permissions) or inherited
    if allowed is None:
        return None
    problems = []
    for name, called_job in called.workflow.jobs.items():
        requested = granted(called_job.permissions) or granted(called.workflow.permissions) or {}
        problems += [
            _problem(caller, job, f"calls {job.uses}, whose job '{name}' is requesting '{scope}: {level}', but is "
                                  f"only allowed '{scope}: {limit}'")
            for scope, level, limit in elevated(requested, allowed)
        ]
    if problems:
        raise CallError(problems)
    return dict(allowed)


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
    # secret names are not case-sensitive
    declared, given = {name.lower() for name in secrets}, {name.lower() for name in passed}
    problems = [
        _problem(caller, job, f"secret '{name}' is not defined by {job.uses}")
        for name in passed
        if name.lower() not in declared
    ]
    problems += [
        _problem(caller, job, f"secret '{name}' is required by {job.uses} but not passed")
        for name, spec in secrets.items()
        if isinstance(spec, Mapping) and spec.get("required") and name.lower() not in given
    ]
    if problems:
        raise CallError(problems)


def _problem(caller: Workflow, job: Job, message: str) -> Problem:
    return Problem(path=caller.path, message=f"job '{job.id}': {message}")


def _error(caller: Workflow, job: Job, message: str) -> CallError:
    return CallError([_problem(caller, job, message)])
