"""The workflow files of other repositories (`owner/repo` at a ref), for calls of remote reusable workflows.

Follows the runner's remote actions: the same base URL (`actions_base_url`), the same offline layout
(`<offline_dir>/<owner>/<repo>/<ref>/`) and a `RefCache` of fetched refs. The methods block (they run git and
touch the disk): the planner calls them from a thread.
"""

from __future__ import annotations

import re
from pathlib import Path

from conveyor_runtime import RefCache, RemoteGitError, local_commit, ls_remote

from conveyor_planner.adapters.repository import RepositoryError, workflows_at_commit
from conveyor_planner.domain.calls import RemoteWorkflowError
from conveyor_planner.domain.planning import WORKFLOWS_DIR

MAX_WORKFLOW_BYTES = 1_000_000
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class RemoteWorkflowSource:
    """Reads `.github/workflows/*.yml|yaml` of `owner/repo` at a ref. Offline copies are looked up as
    `<offline_dir>/<owner>/<repo>/<ref>/`; others are fetched from `<base_url>/<owner>/<repo>` (an https URL, a
    file:// URL or a local path) and their workflow files kept in a `RefCache` in `cache_dir` (the user's cache
    when None), with the git objects fetched in its `.git-cache`.
    """

    def __init__(
        self,
        cache_dir: Path | None = None,
        *,
        offline_dir: Path | None = None,
        base_url: str = "https://github.com",
    ) -> None:
        self.cache = RefCache(cache_dir, "workflows")
        self.offline_dir = offline_dir
        self.base_url = base_url.rstrip("/")

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
        url = f"{self.base_url}/{owner}/{repo}"
        return _read(self.cache.copy(owner, repo, ref, lambda work: self._fetch(url, ref, work)))

    def _fetch(self, url: str, ref: str, work: Path) -> None:
        """The workflow files of `url` at `ref`, fetched through the shared git cache, written into `work`."""
        try:
            _, sha = ls_remote(url, ref)
            files = workflows_at_commit(local_commit(url, sha, self.cache.root / ".git-cache"), sha)
        except (RemoteGitError, RepositoryError) as error:
            raise RemoteWorkflowError(str(error)) from error
        (work / WORKFLOWS_DIR).mkdir(parents=True)
        for path, text in files.items():
            (work / path).write_text(text)


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
