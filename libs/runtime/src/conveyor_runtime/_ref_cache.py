"""Copies of other repositories at a ref kept on disk (remote actions, remote reusable workflows).

Each copy lives at `<root>/<owner>/<repo>/<ref, %-encoded>/`, is filled once and then only read: a ref fetched
once is not fetched again, so a moving branch is read as it was first fetched. A copy is filled in a temporary
sibling folder and renamed into place, so concurrent fills of the same ref, in this process or another sharing
the root, never show half of it.

The methods block (they run git and touch the disk): callers run them in a thread.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote


def user_cache(kind: str) -> Path:
    """`$XDG_CACHE_HOME/conveyor/<kind>`, or `~/.cache/conveyor/<kind>` when the variable is not set."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "conveyor" / kind


class RefCache:
    """Copies of repositories at refs under `root` (the user's cache for `kind` when None)."""

    def __init__(self, root: Path | None, kind: str) -> None:
        self.root = root if root is not None else user_cache(kind)
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()

    def copy(self, owner: str, repo: str, ref: str, fill: Callable[[Path], None]) -> Path:
        """The folder of `owner/repo` at `ref`; when there is none yet, `fill` writes it into the empty folder
        it is given, and an error it raises leaves nothing behind."""
        target = self.root / owner / repo / quote(ref, safe="")
        if target.is_dir():
            return target
        with self._lock(target):
            if target.is_dir():
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
            try:
                fill(work)
                try:
                    work.rename(target)
                except OSError:
                    if not target.is_dir():  # another process renamed first: its copy is as good as ours
                        raise
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return target

    def _lock(self, target: Path) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(target, threading.Lock())
