"""The run's checkout of a repository registered by clone URL (served as a `file://` URL): the commit alone,
from the local cache, in a repository whose history git can read."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conveyor_events import RunRequested
from conveyor_runner_agent.adapters import CheckoutError, checkout
from conveyor_runtime import GitRemotes


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=T", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def test_a_url_is_checked_out_at_the_commit_from_the_cache(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    for text in ("first", "second"):
        (origin / "file.txt").write_text(text)
        git(origin, "add", "-A")
        git(origin, "commit", "-q", "-m", text)
    first = git(origin, "rev-parse", "HEAD~1")
    request = RunRequested(run_id="run-1", repository=origin.as_uri(), ref="refs/heads/main", sha=first)
    workspace = tmp_path / "workspace"
    checkout(request, workspace, remotes=GitRemotes(tmp_path / "cache"))
    assert (workspace / "file.txt").read_text() == "first"
    assert git(workspace, "rev-parse", "HEAD") == first
    assert git(workspace, "log", "--format=%s") == "first"


def test_a_url_without_a_cache_fails_the_checkout_saying_why(tmp_path: Path) -> None:
    url = "https://git.example/o/r.git"
    request = RunRequested(run_id="run-1", repository=url, ref="refs/heads/main", sha="a" * 40)
    with pytest.raises(CheckoutError, match="needs a cache directory"):
        checkout(request, tmp_path / "workspace")
