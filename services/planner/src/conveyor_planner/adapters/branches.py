"""Finding the head commit of a branch of a repository, on this machine or by clone URL (a `workflow_run` runs
at the default branch's head, as on GitHub)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from conveyor_runtime import GitRemotes, RemoteGitError, is_remote

from conveyor_planner.adapters.repository import RepositoryError, _git


class BranchHeads(Protocol):
    def head(self, repository: str, branch: str) -> str:
        """The sha of the commit `branch` of `repository` points at; `RepositoryError` when there is none."""
        ...


class LocalBranchHeads:
    """Branches of git repositories on this machine, by path, or asked of their server through `remotes`."""

    def __init__(self, remotes: GitRemotes | None = None) -> None:
        self.remotes = remotes or GitRemotes()

    def head(self, repository: str, branch: str) -> str:
        if is_remote(repository):
            try:
                return self.remotes.ls_remote(repository, f"refs/heads/{branch}")[1]
            except RemoteGitError as error:
                raise RepositoryError(str(error)) from error
        sha = _git(Path(repository), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}")
        if not sha.strip():
            raise RepositoryError(f"{repository}: no branch '{branch}'")
        return sha.decode().strip()
