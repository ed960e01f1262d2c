"""The planner's repository adapters over a repository registered by clone URL (served as a `file://` URL):
workflow files come from the commit fetched into the cache, branch heads from `git ls-remote`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conveyor_events import RunRequested
from conveyor_planner import LocalBranchHeads, LocalRepositorySource
from conveyor_planner.adapters import RepositoryError
from conveyor_runtime import GitRemotes

CI = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n"


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=T", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    root = tmp_path / "origin"
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "ci.yml").write_text(CI)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def test_workflow_files_are_read_at_the_commit_fetched_from_the_url(origin: Path, tmp_path: Path) -> None:
    sha = git(origin, "rev-parse", "HEAD")
    (origin / ".github" / "workflows" / "ci.yml").write_text("changed after the commit")
    source = LocalRepositorySource(GitRemotes(tmp_path / "cache"))
    request = RunRequested(run_id="run-1", repository=origin.as_uri(), ref="refs/heads/main", sha=sha)
    assert source.workflow_files(request) == {".github/workflows/ci.yml": CI}


def test_a_url_that_cannot_be_read_is_a_repository_error_naming_it(tmp_path: Path) -> None:
    source = LocalRepositorySource(GitRemotes(tmp_path / "cache"))
    url = (tmp_path / "missing").as_uri()
    request = RunRequested(run_id="run-1", repository=url, ref="refs/heads/main", sha="a" * 40)
    with pytest.raises(RepositoryError, match=f"^{url}: "):
        source.workflow_files(request)


def test_the_head_of_a_branch_of_a_url_is_asked_of_its_server(origin: Path) -> None:
    heads = LocalBranchHeads(GitRemotes())
    assert heads.head(origin.as_uri(), "main") == git(origin, "rev-parse", "HEAD")
    with pytest.raises(RepositoryError, match="no commit for ref 'refs/heads/nope'"):
        heads.head(origin.as_uri(), "nope")
