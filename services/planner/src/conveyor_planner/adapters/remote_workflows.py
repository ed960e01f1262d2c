"""The workflow files of other repositories (`owner/repo` at a ref), for calls of remote reusable workflows.

Follows the runner's remote actions: the same base URL (`actions_base_url`), the same offline layout
(`<offline_dir>/<owner>/<repo>/<ref>/`) and a cache of fetched refs. The methods block (they run git and touch
the disk): the planner calls them from a thread.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

from conveyor_runtime import RemoteGitError, local_commit, ls_remote

from conveyor_planner.adapters.repository import RepositoryError, workflows_at_commit
from conveyor_planner.domain.calls import RemoteWorkflowError
from conveyor_planner.domain.planning import WORKFLOWS_DIR

MAX_WORKFLOW_BYTES = 1_000_000
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "conveyor" / "workflows"


class RemoteWorkflowSource:
    """Reads `.github/workflows/*.yml|yaml` of `owner/repo` at a ref. Offline copies are looked up as
    `<offline_dir>/<owner>/<repo>/<ref>/`; others are fetched from `<base_url>/<owner>/<repo>` (an https URL, a
    file:// URL or a local path) and their workflow files kept in `<cache_dir>/<owner>/<repo>/<ref, %-encoded>/`.

    A fetch is written in a temporary sibling folder and renamed into place, so concurrent fetches of the same
    ref, in this process or another sharing `cache_dir`, never see half of it. Like the runner's action cache,
    a cached ref is not fetched again: a moving branch is read as it was first fetched.
    """

    def __init__(
        self,
        cache_dir: Path | None = None,
        *,
        offline_dir: Path | None = None,
        base_url: str = "https://github.com",
    ) -> None:
        self.cache_dir = cache_dir
        self.offline_dir = offline_dir
        self.base_url = base_url.rstrip("/")
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()

    def workflow_files(self, repository: str, ref: str) -> dict[str, str]:
        owner, _, repo = repository.partition("/")
        if not all(_NAME.fullmatch(part) and part not in {".", ".."} for part in (owner, repo)):
            raise RemoteWorkflowError(f"'{repository}' is not an owner/repository name")
        if not ref or ref.startswith("-"):
            raise RemoteWorkflowError(f"'{ref}' is not a ref")
        if self.offline_dir is not None:
            offline = self.offline_dir / owner / repo / ref
            if offline.is_dir():
                return _read(offline)
        target = (self.cache_dir or _default_cache()) / owner / repo / quote(ref, safe="")
        if not target.is_dir():
            with self._lock(target):
                if not target.is_dir():
                    self._fetch(f"{self.base_url}/{owner}/{repo}", ref, target)
        return _read(target)

    def _lock(self, target: Path) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(target, threading.Lock())

    def _fetch(self, url: str, ref: str, target: Path) -> None:
        """The workflow files of `url` at `ref`, fetched through the shared git cache, written to `target`."""
        try:
            _, sha = ls_remote(url, ref)
            files = workflows_at_commit(local_commit(url, sha, self._git_cache), sha)
        except (RemoteGitError, RepositoryError) as error:
            raise RemoteWorkflowError(str(error)) from error
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            tree = work / "tree"
            (tree / WORKFLOWS_DIR).mkdir(parents=True)
            for path, text in files.items():
                (tree / path).write_text(text)
            try:
                tree.rename(target)
            except OSError:
                if not target.is_dir():  # another fetch renamed first: its copy is as good as ours
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @property
    def _git_cache(self) -> Path:
        return (self.cache_dir or _default_cache()) / ".git-cache"


def _read(root: Path) -> dict[str, str]:
    """The workflow files under `root` (a repository's copy at a ref), by path from its root."""
    folder = root / WORKFLOWS_DIR
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]) if folder.is_dir() else []
    found: dict[str, str] = {}
    for file in files:
        data = file.read_bytes()
        if len(data) > MAX_WORKFLOW_BYTES:  # left to the loader to report as too large, with its position
            found[f"{WORKFLOWS_DIR}/{file.name}"] = data[: MAX_WORKFLOW_BYTES + 1].decode(errors="replace")
            continue
        try:
            found[f"{WORKFLOWS_DIR}/{file.name}"] = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RemoteWorkflowError(f"{WORKFLOWS_DIR}/{file.name} is not UTF-8 text ({error.reason})") from error
    return found
