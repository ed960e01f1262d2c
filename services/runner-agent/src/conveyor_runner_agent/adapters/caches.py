"""Dependency caches (`actions/cache`), kept per repository and scoped by ref, as GitHub keeps them.

A cache is reserved under its key and version in the scope of the ref its run was for, filled, and finalized; it
never changes afterwards. A run restores from its own ref's scope first, then from its pull request's base
branch and the default branch (the scopes its runtime token names). In each scope it looks for the key, then for
a key beginning with it, then for keys beginning with each restore key in turn; of several that begin so, the
newest wins. Caches unused for `UNUSED_DAYS` are dropped, and the least recently used while a repository holds
more than `limit` bytes, and savings abandoned (`blobs.ABANDONED_AFTER`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conveyor_runner_agent.adapters.blobs import Records, moment_text
from conveyor_runner_agent.adapters.twirp import ResultsError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS caches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repository TEXT NOT NULL,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    size INTEGER,
    created_at TEXT NOT NULL,
    used_at TEXT NOT NULL,
    finalized INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS caches_by_scope ON caches (repository, scope, version);
"""
_FIELDS = "id, repository, scope, key, version, size, created_at, used_at, finalized"
UNUSED_DAYS = 7
LIMIT = 10 * 1024**3
"""What a repository's caches may hold together, as on GitHub (10 GB)."""


@dataclass(frozen=True)
class Cache:
    id: int
    repository: str
    scope: str
    key: str
    version: str
    size: int | None
    created_at: datetime
    used_at: datetime
    finalized: bool


class CacheStore(Records):
    """Caches under `root`: their records, their contents, and the blocks of those being saved."""

    def __init__(self, root: Path, *, limit: int = LIMIT) -> None:
        super().__init__(root, _SCHEMA, "caches")
        self.limit = limit

    def _rows(self, where: str, *parameters: object) -> list[Cache]:
        rows = self._query(f"SELECT {_FIELDS} FROM caches WHERE {where} ORDER BY id", *parameters)
        return [_cache(row) for row in rows]

    def reserve(self, repository: str, scope: str, key: str, version: str) -> Cache:
        """Room for a new cache; `already_exists` when the scope holds that key and version, or another job is
        saving them."""
        now = datetime.now(UTC)
        with self._lock:
            self._drop_abandoned()
            same = self._rows(
                "repository = ? AND scope = ? AND key = ? AND version = ?", repository, scope, key, version
            )
            if same:
                being = "exists" if same[0].finalized else "is being saved by another job"
                raise ResultsError("already_exists", f"a cache with the key '{key}' {being} in {scope}")
            [(number,)] = self._query(
                "INSERT INTO caches (repository, scope, key, version, created_at, used_at) VALUES (?, ?, ?, ?, ?, ?)"
                " RETURNING id",
                repository, scope, key, version, moment_text(now), moment_text(now),
            )
            return self._rows("id = ?", number)[0]

    def finalize(self, repository: str, scope: str, key: str, version: str, size: int) -> Cache:
        """Make the saved cache one to restore, once its size matches; then drop what is over the limits."""
        with self._lock:
            found = self._rows(
                "repository = ? AND scope = ? AND key = ? AND version = ? AND finalized = 0",
                repository, scope, key, version,
            )
            if not found:
                raise ResultsError("not_found", f"no cache with the key '{key}' is being saved in {scope}")
            cache = found[-1]
            if cache.size is None:
                raise ResultsError("failed_precondition", f"the contents of the cache '{key}' were never uploaded")
            if cache.size != size:
                raise ResultsError(
                    "invalid_argument", f"cache '{key}' holds {cache.size} bytes, not the {size} reported"
                )
            now = moment_text(datetime.now(UTC))
            self._query("UPDATE caches SET finalized = 1, used_at = ? WHERE id = ?", now, cache.id)
            saved = self._rows("id = ?", cache.id)[0]
            self.evict(repository, keep=cache.id)
            return saved

    def find(
        self, repository: str, scopes: Sequence[str], key: str, restore_keys: Sequence[str], version: str
    ) -> Cache | None:
        """The cache to restore for `key` and `restore_keys`, looked for in each scope in turn; None when none."""
        self.evict(repository)
        for scope in dict.fromkeys(scopes):
            newest_first = self._rows(
                "repository = ? AND scope = ? AND version = ? AND finalized = 1", repository, scope, version
            )[::-1]
            matches = (
                [cache for cache in newest_first if cache.key == key],
                *([cache for cache in newest_first if cache.key.startswith(prefix)] for prefix in (key, *restore_keys)),
            )
            for found in matches:
                if found:
                    now = moment_text(datetime.now(UTC))
                    self._query("UPDATE caches SET used_at = ? WHERE id = ?", now, found[0].id)
                    return found[0]
        return None

    def readable(self, cache_id: int) -> tuple[Path, str]:
        """A finalized cache's contents (an archive) and their media type."""
        if not self._rows("id = ? AND finalized = 1", cache_id):
            raise ResultsError("not_found", f"there is no cache {cache_id}")
        return self.blobs.content(cache_id), "application/octet-stream"

    def evict(self, repository: str, *, keep: int | None = None) -> None:
        """Drop the repository's caches unused for `UNUSED_DAYS`, then the least recently used over `limit` (but
        `keep`, the one just saved), and the saving abandoned."""
        with self._lock:
            self._drop_abandoned()
            stale = moment_text(datetime.now(UTC) - timedelta(days=UNUSED_DAYS))
            kept = []
            for cache in self._rows("repository = ? AND finalized = 1", repository):
                if moment_text(cache.used_at) < stale:
                    self._remove(cache.id)
                else:
                    kept.append(cache)
            total = sum(cache.size or 0 for cache in kept)
            for cache in sorted(kept, key=lambda cache: cache.used_at):
                if total <= self.limit:
                    break
                if cache.id == keep:
                    continue
                self._remove(cache.id)
                total -= cache.size or 0


def _cache(row: tuple[object, ...]) -> Cache:
    (id_, repository, scope, key, version, size, created_at, used_at, finalized) = row
    return Cache(
        id=int(str(id_)),
        repository=str(repository),
        scope=str(scope),
        key=str(key),
        version=str(version),
        size=int(str(size)) if size is not None else None,
        created_at=datetime.fromisoformat(str(created_at)),
        used_at=datetime.fromisoformat(str(used_at)),
        finalized=bool(finalized),
    )
