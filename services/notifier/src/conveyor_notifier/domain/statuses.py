"""Commit statuses of a run's jobs: the commit they go on, the context they go under, the state they say."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from conveyor_events import (
    Conclusion,
    Event,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    JobTimedOut,
    RunPlanned,
    RunRequested,
)

State = Literal["pending", "success", "failure", "error"]
DESCRIPTION_LIMIT = 140
"""GitHub refuses a longer status description."""

_CONCLUDED: dict[Conclusion, tuple[State, str]] = {
    Conclusion.SUCCESS: ("success", "Succeeded"),
    Conclusion.FAILURE: ("failure", "Failed"),
    Conclusion.CANCELLED: ("error", "Cancelled"),
    Conclusion.SKIPPED: ("success", "Skipped"),
}


@dataclass(frozen=True)
class JobStatus:
    """The state one event of a job puts its commit status in, with a short description."""

    state: State
    description: str


@dataclass(frozen=True)
class RunTarget:
    """The GitHub commit a run's statuses go on, and the names its workflows and jobs are shown under."""

    repository: str
    """The repository's `owner/name` on GitHub."""
    sha: str
    workflows: Mapping[str, str] = field(default_factory=dict)
    """Workflow file → the workflow's name."""
    jobs: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """Job id → its workflow file and its name."""


def github_repository(request: RunRequested) -> str | None:
    """The GitHub repository (`owner/name`) a run reports to: the one its webhook payload names.

    A run of a working tree (`conveyor run`) reports nowhere: its commit may not be what ran.
    """
    if request.workdir is not None:
        return None
    repository = request.payload.get("repository")
    name = repository.get("full_name") if isinstance(repository, dict) else None
    if isinstance(name, str) and name.count("/") == 1 and all(name.split("/")):
        return name
    return None


def run_target(history: Iterable[Event]) -> RunTarget | None:
    """The target of a run from its events (its request and plans), None when it reports to no GitHub commit."""
    target: RunTarget | None = None
    for event in history:
        match event:
            case RunRequested():
                repository = github_repository(event)
                target = None if repository is None else RunTarget(repository, event.sha)
            case RunPlanned() if target is not None:
                workflows = {**target.workflows, event.workflow: event.workflow_name}
                target = RunTarget(target.repository, target.sha, workflows, target.jobs)
            case JobPlanned() if target is not None:
                jobs = {**target.jobs, event.job_id: (event.workflow, event.name)}
                target = RunTarget(target.repository, target.sha, target.workflows, jobs)
    return target


def context_name(target: RunTarget, job_id: str) -> str:
    """`Conveyor / <workflow name> / <job name>`, as GitHub Actions names its checks; ids stand in for unknown names."""
    workflow, job = target.jobs.get(job_id, ("", job_id))
    return f"Conveyor / {target.workflows.get(workflow, workflow) or 'workflow'} / {job}"


def job_status(event: Event) -> JobStatus | None:
    """The status a job's event sets, None for events that change nothing GitHub shows."""
    match event:
        case JobQueued():
            return JobStatus("pending", "Queued")
        case JobStarted():
            return JobStatus("pending", "In progress")
        case JobCompleted():
            state, description = _CONCLUDED[event.conclusion]
            if event.conclusion == Conclusion.FAILURE and event.error:
                description = event.error
            return JobStatus(state, _shortened(description))
        case JobSkipped():
            return JobStatus("success", "Skipped")
        case JobTimedOut():
            waited = {"running": "Timed out after", "queued": "No runner took it within"}.get(
                event.phase, "No reviewer answered within"
            )
            return JobStatus("failure", f"{waited} {event.limit_minutes:g} minutes")
    return None


def _shortened(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= DESCRIPTION_LIMIT else line[: DESCRIPTION_LIMIT - 1] + "…"
