"""The workflow files of other repositories (`owner/repo` at a ref), for calls of remote reusable workflows.

Follows the runner's remote actions: the same base URL (`actions_base_url`), the same offline layout
(`<offline_dir>/<owner>/<repo>/<ref>/`) and a cache of fetched refs. The methods block (they run git and touch
the disk): the planner calls them from a thread.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

from conveyor_planner.domain.calls import RemoteWorkflowError
from conveyor_planner.domain.planning import WORKFLOWS_DIR

MAX_WORKFLOW_BYTES = 1_000_000
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "", "GCM_INTERACTIVE": "never"}


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
        timeout: float = 300,
    ) -> None:
        self.cache_dir = cache_dir
        self.offline_dir = offline_dir
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
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
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            git = work / "git"
            self._git(git.parent, "init", "--quiet", str(git))
            fetched = self._git(git, "fetch", "--quiet", "--depth=1", "--", url, ref, check=False)
            if fetched.returncode != 0:
                self._fetch_everything(git, url, ref, fetched.stderr)
            tree = work / "tree"
            listing = self._git(git, "ls-tree", "--name-only", "FETCH_HEAD", f"{WORKFLOWS_DIR}/").stdout
            for path in listing.decode(errors="replace").splitlines():
                if path.endswith((".yml", ".yaml")):
                    shown = self._git(git, "cat-file", "blob", f"FETCH_HEAD:{path}")
                    (tree / path).parent.mkdir(parents=True, exist_ok=True)
                    (tree / path).write_bytes(shown.stdout)
            (tree / WORKFLOWS_DIR).mkdir(parents=True, exist_ok=True)
            try:
                tree.rename(target)
            except OSError:
                if not target.is_dir():  # another fetch renamed first: its copy is as good as ours
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _fetch_everything(self, git: Path, url: str, ref: str, stderr: bytes) -> None:
        """A ref that a shallow fetch cannot name (a commit SHA on a server that refuses unadvertised ones)."""
        reachable = self._git(git, "ls-remote", "--", url, "HEAD", check=False)
        if reachable.returncode != 0:
            raise RemoteWorkflowError(f"cannot reach {url}: {_last_line(reachable.stderr)}")
        self._git(git, "fetch", "--quiet", "--tags", "--", url, "+refs/heads/*:refs/remotes/origin/*")
        found = self._git(git, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        if found.returncode != 0:
            raise RemoteWorkflowError(f"'{ref}' is not a branch, tag or commit of {url} ({_last_line(stderr)})")
        self._git(git, "update-ref", "FETCH_HEAD", found.stdout.decode().strip())

    def _git(self, cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd,
                capture_output=True,
                check=False,
                timeout=self.timeout,
                env={**os.environ, **_GIT_ENV},
            )
        except subprocess.TimeoutExpired:
            raise RemoteWorkflowError(f"git {args[0]} took longer than {self.timeout:g} seconds") from None
        except OSError as error:
            raise RemoteWorkflowError(f"cannot run git: {error}") from error
        if check and done.returncode != 0:
            raise RemoteWorkflowError(f"git {args[0]} failed: {_last_line(done.stderr)}")
        return done


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


def _last_line(output: bytes) -> str:
    lines = output.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no message"
