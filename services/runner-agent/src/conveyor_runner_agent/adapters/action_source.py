"""Remote actions (`owner/repo[/path]@ref`) as local directories: from an offline cache, else cloned with git.

The methods block (they run git and touch the disk): the runner calls them in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conveyor_runtime import RefCache

from conveyor_runner_agent.domain.actions import ActionError, RemoteAction

METADATA_FILES = ("action.yml", "action.yaml")
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "", "GCM_INTERACTIVE": "never"}


def find_metadata(directory: Path) -> Path:
    """The action's `action.yml`, else its `action.yaml` (the order GitHub's runner looks in)."""
    for name in METADATA_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise ActionError(f"Can't find 'action.yml' or 'action.yaml' under '{directory}'.")


class ActionSource:
    """Fetches remote actions. Offline copies are looked up as `<offline_dir>/<owner>/<repo>/<ref>/`; others are
    cloned from `<base_url>/<owner>/<repo>` (an https URL, a file:// URL or a local path) into a `RefCache` in
    `cache_dir` (the user's cache when None) and reused from there.
    """

    def __init__(
        self,
        cache_dir: Path | None = None,
        *,
        offline_dir: Path | None = None,
        base_url: str = "https://github.com",
        timeout: float = 300,
    ) -> None:
        self.cache = RefCache(cache_dir, "actions")
        self.offline_dir = offline_dir
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def roots(self) -> list[Path]:
        """Every folder a fetched action's files can be in (the cache, created now, and the offline copies): what
        a job container mounts, so that the job's JavaScript actions run in it."""
        self.cache.root.mkdir(parents=True, exist_ok=True)
        offline = [self.offline_dir] if self.offline_dir is not None and self.offline_dir.is_dir() else []
        return [self.cache.root.resolve(), *(path.resolve() for path in offline)]

    def fetch(self, action: RemoteAction) -> Path:
        """The directory of `action` (its repository root, or `path` within it), holding its metadata file."""
        if self.offline_dir is not None:
            offline = self.offline_dir / action.owner / action.repo / action.ref
            if offline.is_dir():
                return self._action_dir(offline, action)
        copy = self.cache.copy(action.owner, action.repo, action.ref, lambda work: self._clone(action, work))
        return self._action_dir(copy, action)

    def _action_dir(self, root: Path, action: RemoteAction) -> Path:
        directory = root / action.path if action.path else root
        if not directory.is_dir():
            raise ActionError(f"'{action}': the repository {action.repository} has no directory '{action.path}'")
        try:
            find_metadata(directory)
        except ActionError:
            where = f"'{action.path}' of " if action.path else ""
            raise ActionError(
                f"'{action}': there is no action.yml or action.yaml in {where}{action.repository} at '{action.ref}'"
            ) from None
        return directory

    def _clone(self, action: RemoteAction, work: Path) -> None:
        """The action's repository at its ref, checked out into the empty folder `work`."""
        url = f"{self.base_url}/{action.owner}/{action.repo}"
        self._git(action, work, "init", "--quiet")
        fetched = self._git(action, work, "fetch", "--quiet", "--depth=1", "--", url, action.ref, check=False)
        if fetched.returncode != 0:
            self._fetch_everything(action, work, url, fetched.stderr)
        self._git(action, work, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", "FETCH_HEAD")
        shutil.rmtree(work / ".git")  # like GitHub's download: the action's files, not its history

    def _fetch_everything(self, action: RemoteAction, work: Path, url: str, stderr: str) -> None:
        """A ref that a shallow fetch cannot name (a commit SHA on a server that refuses unadvertised ones)."""
        reachable = self._git(action, work, "ls-remote", "--", url, "HEAD", check=False)
        if reachable.returncode != 0:
            raise ActionError(f"'{action}': cannot reach {url}: {_last_line(reachable.stderr)}")
        self._git(action, work, "fetch", "--quiet", "--tags", "--", url, "+refs/heads/*:refs/remotes/origin/*")
        found = self._git(action, work, "rev-parse", "--verify", "--quiet", f"{action.ref}^{{commit}}", check=False)
        if found.returncode != 0:
            raise ActionError(
                f"'{action}': the ref '{action.ref}' is not a branch, tag or commit of {url} ({_last_line(stderr)})"
            )
        self._git(action, work, "update-ref", "FETCH_HEAD", found.stdout.strip())

    def _git(
        self, action: RemoteAction, work: Path, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=work,
                capture_output=True,
                text=True,
                check=False,
                timeout=self.timeout,
                env={**os.environ, **_GIT_ENV},
            )
        except subprocess.TimeoutExpired:
            raise ActionError(f"'{action}': git {args[0]} took longer than {self.timeout:g} seconds") from None
        except OSError as error:
            raise ActionError(f"'{action}': cannot run git: {error}") from error
        if check and done.returncode != 0:
            raise ActionError(f"'{action}': git {args[0]} failed: {_last_line(done.stderr)}")
        return done


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no message"
