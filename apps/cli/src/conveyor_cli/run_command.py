"""`conveyor run`: run a repository's workflows once, through every service, and show them as they go."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor_events import (
    Conclusion,
    Envelope,
    EventDeadLettered,
    JobCompleted,
    JobPlanned,
    JobSkipped,
    RunCompleted,
    RunRejected,
    StepCompleted,
    StepLogged,
    StepStarted,
)
from conveyor_ingest import request_run
from conveyor_ingest.adapters import GitError, resolve_ref
from conveyor_runtime import RuntimeSettings
from conveyor_workflow import Workflow, WorkflowError, dispatch_inputs, load_workflow
from rich.console import Console
from rich.table import Table
from rich.text import Text

from conveyor_cli.system import EmbeddedSystem

WORKFLOWS = ".github/workflows"
_SHOWN = [cls.event_type() for cls in (JobPlanned, StepStarted, StepLogged, StepCompleted, JobCompleted,
                                        JobSkipped, RunRejected, RunCompleted)]
_STALLING = {"planner", "scheduler", "runner-agent", "projector"}
"""Services whose failure to handle an event of the run means the run cannot go on (the notifier's does not)."""
_MARKS = {Conclusion.SUCCESS: "✅", Conclusion.FAILURE: "❌", Conclusion.SKIPPED: "⏭", Conclusion.CANCELLED: "🚫"}


class RunError(Exception):
    """The run cannot start; the message is one line that names the file or folder at fault."""


@dataclass
class RunReport:
    """What the run showed: job names, job conclusions, problems, and the run's conclusion."""

    run_id: str = ""
    names: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, tuple[Conclusion, str | None]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    conclusion: Conclusion | None = None


@dataclass(frozen=True)
class RunOptions:
    """What `conveyor run` was asked for beyond the repository, as act's flags say it."""

    event_name: str = "push"
    data_dir: Path | None = None
    workflows: tuple[Path, ...] = ()
    event_path: Path | None = None
    jobs: tuple[str, ...] = ()
    secrets: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    platforms: dict[str, str] = field(default_factory=dict)
    container_socket: str | None = None


def find_repository(directory: Path, workflows: tuple[Path, ...] = ()) -> tuple[Path, str, str, list[str]]:
    """The repository's root, its HEAD's ref and commit, and the chosen workflow files relative to the root.

    Without `workflows` the files are those of .github/workflows; a `RunError` says when there are none.
    """
    if not directory.is_dir():
        raise RunError(f"{directory}: no such directory")
    root = directory.resolve()
    if workflows:
        chosen = _workflow_files(root, workflows)
    else:
        folder = directory / WORKFLOWS
        if not folder.is_dir() or not [*folder.glob("*.yml"), *folder.glob("*.yaml")]:
            raise RunError(f"{folder}: no workflow files (*.yml, *.yaml) found")
        chosen = []
    try:
        ref, sha = resolve_ref(directory, "HEAD")
    except GitError as error:
        raise RunError(f"{directory}: not a git repository with a commit ({error})") from error
    return root, ref, sha, chosen


def _listening(root: Path, chosen: list[str], event_name: str) -> list[Workflow]:
    """The workflows (the chosen ones, else those of .github/workflows) that load and listen for `event_name`."""
    paths = chosen or sorted(
        f"{WORKFLOWS}/{file.name}" for pattern in ("*.yml", "*.yaml") for file in (root / WORKFLOWS).glob(pattern)
    )
    found = []
    for path in paths:
        try:
            workflow = load_workflow((root / path).read_text(), path)
        except (OSError, UnicodeDecodeError, WorkflowError):
            continue  # the planner reports it
        if event_name in workflow.on:
            found.append(workflow)
    return found


def _scheduled(root: Path, chosen: list[str], payload: dict[str, Any] | None) -> dict[str, Any] | None:
    """A `schedule` payload naming the cron that fired (`github.event.schedule`), as GitHub's does: the first
    schedule of the first scheduled workflow, unless the payload given names one."""
    if payload is not None and "schedule" in payload:
        return payload
    for workflow in _listening(root, chosen, "schedule"):
        crons = workflow.on.get("schedule")
        if isinstance(crons, list) and crons and isinstance(crons[0], dict) and crons[0].get("cron"):
            return {**(payload or {}), "schedule": crons[0]["cron"]}
    return payload


def _dispatched(
    root: Path, chosen: list[str], given: dict[str, Any], payload: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The inputs of a `workflow_dispatch`, typed and defaulted as the one workflow it dispatches declares them
    (a `RunError` saying why GitHub would refuse them), and the payload with `inputs` as GitHub sends them. With
    several dispatchable workflows, which one is meant is not known: the inputs go as given."""
    dispatchable = _listening(root, chosen, "workflow_dispatch")
    if len(dispatchable) != 1:
        return given, payload
    checked = dispatch_inputs(dispatchable[0], given)
    if checked.problems:
        raise RunError(f"{dispatchable[0].path}: {'; '.join(checked.problems)}")
    body = dict(payload or {})
    body.setdefault("inputs", checked.event_inputs)
    body.setdefault("workflow", dispatchable[0].path)
    return checked.inputs, body


_PULL_REQUEST_EVENTS = ("pull_request", "pull_request_review", "pull_request_review_comment")
_DEFAULT_BRANCH_EVENTS = (
    "delete", "issue_comment", "issues", "schedule", "workflow_run", "repository_dispatch", "pull_request_target",
    "discussion", "discussion_comment", "label", "milestone", "watch", "fork", "gollum", "public", "status",
    "check_run", "check_suite", "page_build", "branch_protection_rule", "registry_package",
)
"""Events whose runs GitHub gives the default branch's ref ("Last commit on default branch")."""


def event_ref(event_name: str, payload: dict[str, Any], head_ref: str) -> str:
    """The ref a run of `event_name` gets, as GitHub sets GITHUB_REF for it from the payload.

    A pull request's merge ref (the base branch once it was merged); a created branch or tag; a merge group's
    ref; a release's tag; the default branch (`repository.default_branch`) for the events that run there; the
    ref a push or dispatch names. The repository's checked-out branch when the payload does not say.
    """
    found = payload.get("pull_request")
    pull: dict[str, Any] = found if isinstance(found, dict) else {}
    number = payload.get("number", pull.get("number"))
    default = _dig(payload, "repository", "default_branch")
    if event_name in _PULL_REQUEST_EVENTS:
        base = _dig(payload, "pull_request", "base", "ref")
        if payload.get("action") == "closed" and pull.get("merged") is True and isinstance(base, str):
            return f"refs/heads/{base}"
        if isinstance(number, int):
            return f"refs/pull/{number}/merge"
    if event_name == "create" and isinstance(payload.get("ref"), str) and payload["ref"]:
        kind = "tags" if payload.get("ref_type") == "tag" else "heads"
        return f"refs/{kind}/{payload['ref']}"
    if event_name == "merge_group" and isinstance(head := _dig(payload, "merge_group", "head_ref"), str):
        return head
    if event_name == "release" and isinstance(tag := _dig(payload, "release", "tag_name"), str):
        return f"refs/tags/{tag}"
    if event_name in _DEFAULT_BRANCH_EVENTS:
        return f"refs/heads/{default}" if isinstance(default, str) and default else head_ref
    if isinstance(payload.get("ref"), str) and payload["ref"]:
        ref = str(payload["ref"])
        return ref if ref.startswith("refs/") else f"refs/heads/{ref}"
    return head_ref


def _sender(payload: dict[str, Any]) -> str:
    """Who triggered the event the payload describes (`sender.login`), as `github.actor` reads it."""
    login = _dig(payload, "sender", "login")
    return login if isinstance(login, str) and login else "conveyor"


def _dig(payload: dict[str, Any], *keys: str) -> Any:
    value: Any = payload
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


_REMOTE_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://[^/]+/|[^@/:]+@[^/:]+:)(?:.*/)?([^/]+)/([^/]+?)(?:\.git)?/?$")
"""A remote's URL (`https://host/owner/name.git`, `git@host:owner/name.git`): its last two parts."""


def repository_name(root: Path) -> str | None:
    """The repository as `github.repository` names it: `owner/name` from the URL of its `origin` remote, as act
    reads it; None for a repository with no remote, or one cloned from a path (its path stands for it)."""
    done = subprocess.run(
        ["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True, text=True, check=False, timeout=30
    )
    found = _REMOTE_URL.match(done.stdout.strip()) if done.returncode == 0 else None
    return f"{found[1]}/{found[2]}" if found else None


def _workflow_files(root: Path, workflows: tuple[Path, ...]) -> list[str]:
    found: list[str] = []
    for given in workflows:
        path = given if given.is_absolute() else Path.cwd() / given
        if not path.exists() and not given.is_absolute():
            path = root / given
        if not path.exists():
            raise RunError(f"{given}: no such workflow file or directory")
        files = sorted([*path.glob("*.yml"), *path.glob("*.yaml")]) if path.is_dir() else [path]
        if not files:
            raise RunError(f"{given}: no workflow files (*.yml, *.yaml) found")
        for file in files:
            try:
                found.append(file.resolve().relative_to(root).as_posix())
            except ValueError:
                raise RunError(f"{file}: a workflow file must lie inside the repository {root}") from None
    return found


def _payload(options: RunOptions) -> dict[str, Any] | None:
    if options.event_path is None:
        return None
    try:
        payload = json.loads(options.event_path.read_text())
    except (OSError, ValueError) as error:
        raise RunError(f"{options.event_path}: not a readable JSON event payload ({error})") from error
    if not isinstance(payload, dict):
        raise RunError(f"{options.event_path}: the event payload must be a JSON object")
    return payload


async def run_once(directory: Path, options: RunOptions, console: Console) -> RunReport:
    """Dispatch one run of the workflows in `directory`, print it live, and return what it showed."""
    root, ref, sha, workflows = find_repository(directory, options.workflows)
    payload = _payload(options)
    inputs: dict[str, Any] = dict(options.inputs)
    if options.event_name == "workflow_dispatch":
        inputs, payload = _dispatched(root, workflows, inputs, payload)
    elif options.event_name == "schedule":
        payload = _scheduled(root, workflows, payload)
    with tempfile.TemporaryDirectory(prefix="conveyor-run-") as scratch:
        # Its own SQLite log and read models, whatever CONVEYOR_EVENT_LOG and CONVEYOR_DATABASE_URL name: a run of
        # a working tree is nobody else's.
        settings = RuntimeSettings(data_dir=options.data_dir or Path(scratch), event_log="sqlite", database_url=None)
        settings = settings.model_copy(
            update={
                "platforms": {**settings.platforms, **options.platforms},
                "container_socket": options.container_socket or settings.container_socket,
            }
        )
        system = EmbeddedSystem(settings, secrets=options.secrets)
        async with system.running():
            request = request_run(
                repository=str(root),
                repository_name=repository_name(root),
                ref=event_ref(options.event_name, payload or {}, ref),
                sha=sha,
                event_name=options.event_name,
                payload=payload,
                workdir=str(root),
                workflows=workflows,
                inputs=inputs,
                variables=options.variables,
                env=options.env,
                jobs=list(options.jobs),
                actor=_sender(payload or {}),
            )
            start = await system.log.head()
            await system.log.append([Envelope.wrap(request, stream=request.run_id)])
            report = RunReport(run_id=request.run_id)
            async for envelope in system.log.subscribe(start, types=[*_SHOWN, EventDeadLettered.event_type()]):
                if isinstance(dead := envelope.event, EventDeadLettered):
                    if envelope.correlation_id == request.run_id and dead.consumer in _STALLING:
                        report.problems.append(
                            f"the {dead.consumer} could not handle {dead.failed_type} at position {dead.position}, "
                            f"so the run cannot go on: {dead.reason}"
                        )
                        break
                elif envelope.stream == request.run_id and _show(envelope, report, console):
                    await system.projected(envelope.position)
                    break
    return report


def _show(envelope: Envelope, report: RunReport, console: Console) -> bool:
    """Print one event of the run; True when the run has ended."""
    event = envelope.event
    match event:
        case JobPlanned():
            report.names[event.job_id] = event.name
        case StepStarted():
            console.print(
                Text(f"[{report.names.get(event.job_id, event.job_id)}] ⭐ {event.name}", style="bold"), soft_wrap=True
            )
        case StepLogged():
            name = report.names.get(event.job_id, event.job_id)
            for line in event.lines:
                console.print(Text(f"[{name}]   | {line.text}"), soft_wrap=True)
        case StepCompleted() if event.conclusion != Conclusion.SKIPPED:
            mark = _MARKS[event.conclusion]
            console.print(f"[{report.names.get(event.job_id, event.job_id)}]   {mark} {event.outcome.value}",
                          markup=False)
        case JobSkipped():
            report.jobs[event.job_id] = (Conclusion.SKIPPED, event.reason)
        case JobCompleted():
            report.jobs[event.job_id] = (event.conclusion, event.error)
        case RunRejected():
            report.problems.extend(str(problem) for problem in event.problems or [])
            if not event.problems:
                report.problems.append(event.reason)
        case RunCompleted():
            report.conclusion = event.conclusion
            return True
    return False


def print_summary(report: RunReport, console: Console) -> None:
    for problem in report.problems:
        console.print(Text(f"error: {problem}", style="red"), soft_wrap=True)
    if report.jobs:
        table = Table(title="Jobs")
        table.add_column("job")
        table.add_column("conclusion")
        table.add_column("note")
        for job_id, (conclusion, note) in report.jobs.items():
            table.add_row(report.names.get(job_id, job_id), f"{_MARKS[conclusion]} {conclusion.value}", note or "")
        console.print(table)
    if report.conclusion is not None:
        console.print(f"run {report.run_id}: {report.conclusion.value}", markup=False)


def run_command(directory: Path, options: RunOptions) -> int:
    console = Console(highlight=False)
    try:
        report = asyncio.run(run_once(directory, options, console))
    except RunError as error:
        Console(stderr=True, highlight=False).print(Text(f"error: {error}", style="red"), soft_wrap=True)
        return 2
    print_summary(report, console)
    return 0 if report.conclusion == Conclusion.SUCCESS else 1
