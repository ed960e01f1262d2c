"""Resolving a ref of a git repository, local or by clone URL, to its commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conveyor_runtime import RemoteGitError, is_remote, ls_remote


class GitError(Exception):
    """The repository or the ref cannot be resolved; the message says which."""


def resolve_ref(location: Path | str, ref: str, *, token: str | None = None) -> tuple[str, str]:
    """`(full ref, commit sha)` for `ref` (a branch, a tag, a full ref or a sha) in the repository at `location`,
    a path or a clone URL (asked with `git ls-remote`, with `token` when given).

    `HEAD` resolves to the branch it points at, as a push of that branch would.
    """
    if isinstance(location, str) and is_remote(location):
        try:
            return ls_remote(location, ref, token)
        except RemoteGitError as error:
            raise GitError(str(error)) from error
    repository = Path(location)
    if ref == "HEAD":
        branch = _git(repository, "symbolic-ref", "-q", "HEAD", check=False)
        ref = branch or "HEAD"
    full = _git(repository, "rev-parse", "--symbolic-full-name", ref, check=False) or ref
    sha = _git(repository, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if not sha:
        raise GitError(f"{repository}: no commit for ref '{ref}'")
    return full, sha


def _git(repository: Path, *args: str, check: bool) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repository), *args], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GitError(f"{repository}: git failed: {error}") from error
    if done.returncode != 0:
        if not check:
            return ""
        raise GitError(f"{repository}: {done.stderr.strip() or 'git failed'}")
    return done.stdout.strip()
