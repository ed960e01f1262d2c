"""Path filters and skip markers read what a push or pull request changed, from the repository itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conveyor_events import Envelope, RunPlanned, RunRejected, RunRequested
from conveyor_planner import Planner
from conveyor_planner.adapters import Changes, LocalRepositorySource
from conveyor_planner.domain import plan_run

DOCS_ONLY = """
on:
  push:
    paths: ['docs/**']
  pull_request:
    paths: ['docs/**']
jobs:
  docs:
    runs-on: x
    steps: [{run: echo}]
"""
NO_COMMIT = "0" * 40


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=T", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def make_repository(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def commit(repository: Path, path: str, message: str = "change") -> str:
    (repository / path).parent.mkdir(parents=True, exist_ok=True)
    (repository / path).write_text(f"{path} {message}\n")
    git(repository, "add", "-A")
    git(repository, "commit", "-q", "-m", message)
    return git(repository, "rev-parse", "HEAD")


def push(repository: Path, before: str, after: str, commits: list[str] | None = None) -> RunRequested:
    pushed = [{"id": sha} for sha in commits or []]
    payload = {"ref": "refs/heads/main", "before": before, "after": after, "commits": pushed}
    return RunRequested(run_id="r", repository=str(repository), ref="refs/heads/main", sha=after, payload=payload)


def pull_request(repository: Path, base: str, head: str) -> RunRequested:
    sides = {"base": {"ref": "main", "sha": base}, "head": {"ref": "feature", "sha": head}}
    payload = {"action": "opened", "number": 3, "pull_request": sides}
    return RunRequested(
        run_id="r", repository=str(repository), ref="refs/pull/3/merge", sha=head, event_name="pull_request",
        payload=payload,
    )


def planned(request: RunRequested) -> bool:
    """Whether the workflow is triggered by `request`, given what the repository says it changed."""
    source = LocalRepositorySource()
    changes = source.changes(request)
    events = plan_run(
        request,
        source.workflow_files(request),
        changed_files=changes.files,
        head_commit_message=changes.head_commit_message,
    )
    assert all(isinstance(event, RunPlanned | RunRejected) or event.event_type() == "JobPlanned" for event in events)
    return any(isinstance(event, RunPlanned) for event in events)


def test_a_push_runs_only_when_it_changed_a_matching_path(tmp_path: Path) -> None:
    repository = make_repository(tmp_path / "repo", {".github/workflows/docs.yml": DOCS_ONLY})
    first = git(repository, "rev-parse", "HEAD")
    source_change = commit(repository, "src/app.py")
    docs_change = commit(repository, "docs/guide.md")

    assert not planned(push(repository, first, source_change))
    assert planned(push(repository, source_change, docs_change))
    assert planned(push(repository, first, docs_change))  # two commits pushed at once: either may match


def test_a_new_branch_is_compared_from_the_parent_of_its_first_commit(tmp_path: Path) -> None:
    repository = make_repository(tmp_path / "repo", {".github/workflows/docs.yml": DOCS_ONLY})
    source_change = commit(repository, "src/app.py")
    docs_change = commit(repository, "docs/guide.md")

    assert planned(push(repository, NO_COMMIT, docs_change, [source_change, docs_change]))
    assert not planned(push(repository, NO_COMMIT, source_change, [source_change]))


def test_a_pull_request_is_compared_from_where_it_left_its_base(tmp_path: Path) -> None:
    repository = make_repository(tmp_path / "repo", {".github/workflows/docs.yml": DOCS_ONLY})
    fork_point = git(repository, "rev-parse", "HEAD")
    git(repository, "checkout", "-q", "-b", "feature")
    feature = commit(repository, "src/app.py")
    git(repository, "checkout", "-q", "main")
    base = commit(repository, "docs/guide.md")  # the base's own change is not the pull request's

    assert git(repository, "merge-base", base, feature) == fork_point
    assert not planned(pull_request(repository, base, feature))


def test_a_pull_request_whose_head_commit_says_skip_ci_does_not_run(tmp_path: Path) -> None:
    repository = make_repository(tmp_path / "repo", {".github/workflows/docs.yml": DOCS_ONLY})
    base = git(repository, "rev-parse", "HEAD")
    git(repository, "checkout", "-q", "-b", "feature")
    commit(repository, "docs/a.md")
    skipped = commit(repository, "docs/b.md", "wip [skip ci]")

    assert planned(pull_request(repository, base, git(repository, "rev-parse", "HEAD~1")))
    assert not planned(pull_request(repository, base, skipped))


def test_changes_the_repository_cannot_tell_leave_path_filters_met(tmp_path: Path) -> None:
    repository = make_repository(tmp_path / "repo", {".github/workflows/docs.yml": DOCS_ONLY})
    head = git(repository, "rev-parse", "HEAD")

    unknown = push(repository, "f" * 40, head)
    assert LocalRepositorySource().changes(unknown) == Changes()
    assert planned(unknown)


async def test_the_planner_reads_the_changes_of_the_run_it_plans(tmp_path: Path) -> None:
    repository = make_repository(tmp_path / "repo", {".github/workflows/docs.yml": DOCS_ONLY})
    first = git(repository, "rev-parse", "HEAD")
    source_change = commit(repository, "src/app.py")
    request = push(repository, first, source_change)

    envelopes = await Planner(LocalRepositorySource()).on_run_requested(Envelope.wrap(request, stream="r"))
    [rejected] = [envelope.event for envelope in envelopes]
    assert isinstance(rejected, RunRejected)
    assert rejected.reason == "no workflow is triggered by 'push'"
