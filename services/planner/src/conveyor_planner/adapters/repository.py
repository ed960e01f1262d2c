"""Reading the workflow files of a repository: from a working tree, or from a commit with git (of a local
repository, or of one fetched by clone URL into a cache)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from conveyor_events import RunRequested
from conveyor_runtime import GitRemotes, RemoteGitError, workflow_blobs

from conveyor_planner.domain.planning import WORKFLOWS_DIR

MAX_WORKFLOW_BYTES = 1_000_000
MAX_CHANGED_FILES = 300
"""GitHub compares path filters with the first 300 files of a diff only."""
_NO_COMMIT = "0" * 40


@dataclass(frozen=True)
class Changes:
    """The files a push or pull request changed (None: not known, so path filters count as met) and, for a pull
    request, its head commit's message (the skip markers are read from it)."""

    files: list[str] | None = None
    head_commit_message: str | None = None


class RepositoryError(Exception):
    """The repository or the commit cannot be read; the message says which and why."""


class RepositorySource(Protocol):
    def workflow_files(self, request: RunRequested) -> dict[str, str]:
        """The workflow files of the request's repository (path relative to its root → text)."""

    def changes(self, request: RunRequested) -> Changes:
        """What the triggering push or pull request changed, as path filters and skip markers read it."""
        ...


class LocalRepositorySource:
    """The working tree when the request names one, else the commit: of a repository on this machine, or of one
    by clone URL, fetched through `remotes`."""

    def __init__(self, remotes: GitRemotes | None = None) -> None:
        self.remotes = remotes or GitRemotes()

    def changes(self, request: RunRequested) -> Changes:
        if request.workdir is not None:
            return changes_in(Path(request.workdir), request)
        try:
            repository = self.remotes.local_commit(request.repository, request.sha)
        except RemoteGitError:
            return Changes()
        return changes_in(repository, request)

    def workflow_files(self, request: RunRequested) -> dict[str, str]:
        if request.workdir is not None:
            return _from_tree(Path(request.workdir), request.workflows)
        try:
            repository = self.remotes.local_commit(request.repository, request.sha)
        except RemoteGitError as error:
            raise RepositoryError(str(error)) from error
        return workflows_at_commit(repository, request.sha)


def _from_tree(root: Path, named: list[str]) -> dict[str, str]:
    """The workflow files of a working tree: those in .github/workflows and the named ones (paths from the root).

    The folder is read even when files are named: a named workflow may call a reusable workflow kept there.
    """
    if not root.is_dir():
        raise RepositoryError(f"{root}: no such directory")
    missing = [name for name in named if not (root / name).is_file()]
    if missing:
        raise RepositoryError(f"{root / missing[0]}: no such workflow file")
    folder = root / WORKFLOWS_DIR
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]) if folder.is_dir() else []
    found: dict[str, str] = {}
    for file in files:
        try:
            found[f"{WORKFLOWS_DIR}/{file.name}"] = _decode(file.name, file.read_bytes())
        except RepositoryError:
            if not named:
                raise
    return {**found, **{name: _decode(name, (root / name).read_bytes()) for name in named}}


def changes_in(repository: Path, request: RunRequested) -> Changes:
    """What the request's push or pull request changed in the local `repository`, as GitHub compares them: a push
    to a branch from the commit before it (a new branch from the parent of the first commit pushed), a pull
    request from where its head left its base (a three-dot diff). A commit the repository lacks leaves the
    files unknown."""
    payload = request.payload
    head_message: str | None = None
    if request.event_name in ("pull_request", "pull_request_target"):
        pull = _mapping(payload.get("pull_request"))
        base, head = _mapping(pull.get("base")).get("sha"), _mapping(pull.get("head")).get("sha")
        if isinstance(head, str):
            head_message = _text(repository, "log", "-1", "--format=%B", head, "--")
        compared = f"{base}...{head}" if isinstance(base, str) and isinstance(head, str) else None
    elif request.event_name == "push":
        compared = _pushed(payload, request.sha)
    else:
        compared = None
    if compared is None:
        return Changes(head_commit_message=head_message)
    listed = _text(repository, "diff", "--name-only", "--no-renames", "-z", compared, "--")
    files = None if listed is None else [name for name in listed.split("\0") if name][:MAX_CHANGED_FILES]
    return Changes(files, head_message)


def _pushed(payload: dict[str, Any], sha: str) -> str | None:
    before = payload.get("before")
    if not isinstance(before, str) or not before:
        return None
    if before != _NO_COMMIT:
        return f"{before}..{sha}"
    commits = payload.get("commits")
    first = _mapping(commits[0]).get("id") if isinstance(commits, list) and commits else None
    return f"{first}^..{sha}" if isinstance(first, str) else None


def _text(repository: Path, *args: str) -> str | None:
    """What git prints for `args`, or None when it cannot say (a commit the repository does not hold)."""
    try:
        return _git(repository, *args).decode(errors="replace")
    except RepositoryError:
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def workflows_at_commit(repository: Path, sha: str) -> dict[str, str]:
    """The workflow files of a local repository at commit `sha`, by path from its root."""
    try:
        blobs = workflow_blobs(repository, sha)
    except RemoteGitError as error:
        raise RepositoryError(str(error)) from error
    return {path: _decode(path, data) for path, data in blobs.items()}


def _decode(name: str, data: bytes) -> str:
    if len(data) > MAX_WORKFLOW_BYTES:
        # Left to the loader to report with its position; a truncated text still says "too large".
        return data[: MAX_WORKFLOW_BYTES + 1].decode("utf-8", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RepositoryError(f"{name}: not UTF-8 text ({error.reason} at byte {error.start})") from error


def _git(repository: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repository), *args], capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RepositoryError(f"{repository}: git failed: {error}") from error
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise RepositoryError(f"{repository}: {message[-1] if message else 'git failed'}")
    return done.stdout
