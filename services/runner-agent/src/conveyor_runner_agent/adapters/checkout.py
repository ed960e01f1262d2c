"""Putting the run's commit (or working tree) into a job's workspace, as `actions/checkout` does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conveyor_events import RunRequested
from conveyor_runtime import GitRemotes, RemoteGitError


class CheckoutError(Exception):
    """The repository could not be put into the workspace; the message says why."""


def checkout(
    request: RunRequested, workspace: Path, *, exclude: Path | None = None, remotes: GitRemotes | None = None
) -> None:
    """Fill `workspace` with the request's working tree, or with a clone of its repository at its commit.

    `exclude` (the data directory, when it lies inside the working tree) is not copied. A repository registered
    by clone URL is cloned (its commit alone, as `actions/checkout` does by default) from the local cache
    `remotes` fetches the commit into.
    """
    if request.workdir is not None:
        source = Path(request.workdir).resolve()
        skip = exclude.resolve() if exclude is not None else None

        def ignore(folder: str, names: list[str]) -> set[str]:
            return {name for name in names if skip is not None and (Path(folder) / name).resolve() == skip}

        shutil.copytree(source, workspace, symlinks=True, dirs_exist_ok=True, ignore=ignore)
        return
    try:
        source = (remotes or GitRemotes()).local_commit(request.repository, request.sha)
    except RemoteGitError as error:
        raise CheckoutError(str(error)) from error
    if source == Path(request.repository):
        _git("clone", "--quiet", "--no-checkout", "--shared", request.repository, str(workspace))
    else:
        _git("init", "--quiet", str(workspace))
        _git("-C", str(workspace), "fetch", "--quiet", "--depth", "1", "--no-tags", str(source), request.sha)
    _git("-C", str(workspace), "checkout", "--quiet", "--detach", request.sha)


def _git(*args: str) -> None:
    done = subprocess.run(["git", *args], capture_output=True, check=False, timeout=300)
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise CheckoutError(lines[-1] if lines else f"git {args[0]} failed")
