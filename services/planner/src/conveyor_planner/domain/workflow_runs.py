"""The `workflow_run` event of Conveyor's own runs, pure: which runs a run's history requests, as GitHub would.

Each planned workflow of a run is one GitHub "workflow run": it is `requested` when it is planned (or re-run)
and `completed` when all its jobs have concluded, or the run completed. Each of those asks for a new run of the
same repository with `event_name="workflow_run"`; the planner's trigger matching then picks the workflows that
listen (`on.workflow_run.workflows/types/branches`). Run and event ids are derived from the source run, its
attempt, the workflow and the action, so a redelivered event asks for nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conveyor_events import (
    Conclusion,
    JobCompleted,
    JobPlanned,
    JobSkipped,
    MatrixExpanded,
    RunCompleted,
    RunEvent,
    RunNumbered,
    RunPlanned,
    RunRequested,
    RunRerunRequested,
    deterministic_id,
)
from conveyor_workflow import WorkflowError, load_workflow, triggered

MAX_CHAIN_DEPTH = 3
"""GitHub chains at most three levels of workflow_run: after A → B → C → D, D's runs trigger nothing."""

HISTORY_TYPES = tuple(
    cls.event_type()
    for cls in (
        RunRequested, JobPlanned, RunPlanned, RunNumbered, MatrixExpanded, JobCompleted, JobSkipped, RunCompleted,
        RunRerunRequested,
    )
)
"""The events of a run that `workflow_run_triggers` reads; others may be left out of the history."""


@dataclass(frozen=True)
class WorkflowRunRequest:
    """A `workflow_run` run to request, appended with `event_id` in the stream of its own run."""

    event_id: str
    request: RunRequested
    default_branch: str | None = None
    """When set, the run belongs at this branch's head commit, which only the caller can look up (GitHub runs
    workflow_run at the default branch); the request itself is at the source run's ref and commit."""


@dataclass(frozen=True)
class ChainLimitReached:
    """A `workflow_run` that GitHub would not start: the source run is already `depth` levels down a chain."""

    workflow: str
    action: str
    depth: int


Decision = WorkflowRunRequest | ChainLimitReached


@dataclass
class _Workflow:
    path: str
    name: str
    jobs: list[str]
    attempt: int
    pending: set[str]
    """Its jobs without a final conclusion yet: the workflow completes when none is left."""
    number: int = 0
    """Its run number, 0 until the scheduler numbered it (`RunNumbered`)."""
    title: str = ""
    """The run's name as GitHub shows it (`RunNumbered.title`)."""


@dataclass
class RunHistory:
    """What the `workflow_run` trigger knows of one run, folded from the run's events in log order.

    Fold every event of the run with `apply`, each once; what it returns is what that event newly requests.
    Decisions an earlier event already made are not made again, so handling each event of a run once requests
    every `workflow_run` once. A run of a local working tree (`RunRequested.workdir`, as `conveyor run` makes)
    triggers nothing: it is not a commit of a repository, and GitHub would never have seen it.
    """

    request: RunRequested | None = None
    attempt: int = 1
    completed: Conclusion | None = None
    workflows: dict[str, _Workflow] = field(default_factory=dict)
    plans: dict[str, JobPlanned] = field(default_factory=dict)
    conclusions: dict[str, Conclusion] = field(default_factory=dict)
    made: set[str] = field(default_factory=set)

    def apply(self, event: RunEvent) -> list[Decision]:
        """Fold in the run's next event; the requests (and refusals) it newly makes."""
        _evolve(self, event)
        decided = [
            d for d in _decide(self, event) if not isinstance(d, WorkflowRunRequest) or d.event_id not in self.made
        ]
        self.made.update(d.event_id for d in decided if isinstance(d, WorkflowRunRequest))
        return decided


def workflow_run_triggers(history: Sequence[RunEvent]) -> list[Decision]:
    """What the last event of `history` (one run's events in log order, that event last) newly requests."""
    run = RunHistory()
    decided: list[Decision] = []
    for event in history:
        decided = run.apply(event)
    return decided


def chain_depth(request: RunRequested) -> int:
    """How many workflow_run levels led to `request`: 0 for any other event, 1 for one Conveyor did not record."""
    if request.event_name != "workflow_run":
        return 0
    recorded = (request.payload.get("conveyor") or {}).get("workflow_run_depth")
    return recorded if isinstance(recorded, int) and recorded > 0 else 1


def wanted(request: RunRequested, files: Mapping[str, str]) -> bool:
    """Whether a valid workflow in `files` (path → text) is triggered by `request`: else there is nothing to run,
    and GitHub shows nothing either. A workflow that does not load is not counted."""
    for path, text in files.items():
        try:
            if triggered(load_workflow(text, path), request.event_name, request.payload):
                return True
        except (WorkflowError, ValueError):
            continue
    return False


def _evolve(run: RunHistory, event: RunEvent) -> None:
    match event:
        case RunRequested():
            run.request = event
        case JobPlanned():
            run.plans[event.job_id] = event
        case RunPlanned():
            pending = {job_id for job_id in event.jobs if not _concluded(run, job_id)}
            run.workflows[event.workflow] = _Workflow(
                event.workflow, event.workflow_name, list(event.jobs), run.attempt, pending
            )
        case RunNumbered() if event.workflow in run.workflows:
            run.workflows[event.workflow].number = event.number
            run.workflows[event.workflow].title = event.title
        case MatrixExpanded():  # the job gives way to its legs, which the workflow now waits for
            for workflow in _workflows_of(run, event.job_id):
                if event.job_id not in workflow.jobs:
                    continue  # replaced already
                at = workflow.jobs.index(event.job_id)
                workflow.jobs = [*workflow.jobs[:at], *event.legs, *workflow.jobs[at + 1 :]]
                workflow.pending.discard(event.job_id)
                workflow.pending.update(leg for leg in event.legs if not _concluded(run, leg))
        case JobCompleted() | JobSkipped():
            run.conclusions[event.job_id] = event.conclusion if isinstance(event, JobCompleted) else Conclusion.SKIPPED
            for workflow in _workflows_of(run, event.job_id):
                if _concluded(run, event.job_id):
                    workflow.pending.discard(event.job_id)
                else:
                    workflow.pending.add(event.job_id)
        case RunCompleted():
            run.completed = event.conclusion
        case RunRerunRequested() if run.completed is not None:
            again = set(run.plans) if event.mode == "all" else _failed_and_dependants(run)
            run.attempt, run.completed = run.attempt + 1, None
            for job_id in again:
                run.conclusions.pop(job_id, None)
            for workflow in run.workflows.values():
                if again.intersection(workflow.jobs):
                    workflow.attempt = run.attempt
                    workflow.pending |= again.intersection(workflow.jobs)


def _decide(run: RunHistory, event: RunEvent) -> list[Decision]:
    if run.request is None or run.request.workdir is not None:
        return []
    match event:
        case RunNumbered() if event.workflow in run.workflows:  # numbered and named: what the payload tells
            workflow = run.workflows[event.workflow]
            return [_requested(run, workflow), *_completed(run, [workflow])]
        case JobCompleted() | JobSkipped():
            return _completed(run, _workflows_of(run, event.job_id))
        case RunCompleted():
            return _completed(run, list(run.workflows.values()))
        case RunRerunRequested():
            return [_requested(run, w) for w in run.workflows.values() if w.attempt == run.attempt > 1]
    return []


def _completed(run: RunHistory, workflows: list[_Workflow]) -> list[Decision]:
    decided: list[Decision] = []
    for workflow in workflows:
        if run.completed is not None or not workflow.pending:
            decided.append(_request(run, workflow, "completed", _conclusion(run, workflow)))
    return decided


def _workflows_of(run: RunHistory, job_id: str) -> list[_Workflow]:
    """The planned workflow the job belongs to (`JobPlanned.workflow` names the triggered workflow)."""
    plan = run.plans.get(job_id)
    workflow = run.workflows.get(plan.workflow) if plan is not None else None
    return [workflow] if workflow is not None else []


def _concluded(run: RunHistory, job_id: str) -> bool:
    """The job has a conclusion the scheduler will not replace with a retry's (a failure under `retry:` may be)."""
    conclusion = run.conclusions.get(job_id)
    if conclusion is None:
        return False
    spec = run.plans[job_id].spec if job_id in run.plans else {}
    conveyor = spec.get("conveyor")
    retries = spec.get("retry") is not None or (isinstance(conveyor, Mapping) and conveyor.get("retry") is not None)
    return conclusion != Conclusion.FAILURE or not retries


def _conclusion(run: RunHistory, workflow: _Workflow) -> Conclusion:
    """GitHub's: failure when a job failed (not counting `continue-on-error: true`), cancelled when one was
    cancelled, success otherwise (skipped jobs fail nothing). A job left without a conclusion by a cancelled
    run counts as cancelled. A `continue-on-error` expression is not evaluated here: such a failure counts."""
    found = set[Conclusion]()
    for job_id in workflow.jobs:
        conclusion = run.conclusions.get(job_id)
        if conclusion is None and run.completed == Conclusion.CANCELLED:
            conclusion = Conclusion.CANCELLED
        if conclusion == Conclusion.FAILURE and job_id in run.plans:
            conclusion = Conclusion.SUCCESS if run.plans[job_id].spec.get("continue_on_error") is True else conclusion
        if conclusion is not None:
            found.add(conclusion)
    if Conclusion.FAILURE in found:
        return Conclusion.FAILURE
    return Conclusion.CANCELLED if Conclusion.CANCELLED in found else Conclusion.SUCCESS


def _requested(run: RunHistory, workflow: _Workflow) -> Decision:
    return _request(run, workflow, "requested", None)


def _request(run: RunHistory, workflow: _Workflow, action: str, conclusion: Conclusion | None) -> Decision:
    source = run.request
    assert source is not None
    depth = chain_depth(source) + 1
    if depth > MAX_CHAIN_DEPTH:
        return ChainLimitReached(workflow=workflow.path, action=action, depth=depth - 1)
    parts = (source.run_id, workflow.attempt, workflow.path, action)
    repository = source.payload.get("repository")
    default_branch = repository.get("default_branch") if isinstance(repository, Mapping) else None
    default_branch = default_branch if isinstance(default_branch, str) and default_branch else None
    payload: dict[str, Any] = {
        "action": action,
        "workflow_run": {
            "id": source.run_id,
            "name": workflow.name,
            "display_title": workflow.title or workflow.name,
            "run_number": workflow.number,
            "path": workflow.path,
            "head_branch": _short(source.ref),
            "head_sha": source.sha,
            "event": source.event_name,
            "status": "completed" if conclusion is not None else "queued",
            "conclusion": conclusion.value if conclusion is not None else None,
            "run_attempt": workflow.attempt,
            "actor": {"login": source.actor},
            "triggering_actor": {"login": source.actor},
        },
        "workflow": {"name": workflow.name, "path": workflow.path},
        **{key: source.payload[key] for key in ("repository", "sender") if key in source.payload},
        "conveyor": {"workflow_run_depth": depth},
    }
    request = RunRequested(
        run_id=deterministic_id("workflow_run", *parts),
        repository=source.repository,
        ref=source.ref,
        sha=source.sha,
        event_name="workflow_run",
        payload=payload,
        actor=source.actor,
        variables=source.variables,
    )
    return WorkflowRunRequest(deterministic_id("workflow_run event", *parts), request, default_branch)


def _short(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref.removeprefix(prefix)
    return ref


def _failed_and_dependants(run: RunHistory) -> set[str]:
    """The jobs a `failed` re-run runs again: those that failed or were cancelled, and every job needing them."""
    chosen = {job_id for job_id, c in run.conclusions.items() if c in (Conclusion.FAILURE, Conclusion.CANCELLED)}
    grown = True
    while grown:
        dependants = {job_id for job_id, plan in run.plans.items() if chosen.intersection(plan.needs)}
        grown = not dependants <= chosen
        chosen |= dependants
    return chosen
