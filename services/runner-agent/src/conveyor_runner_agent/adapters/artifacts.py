"""The artifacts of workflow runs, kept in a folder: their records in a SQLite file, their contents beside it.

An artifact is created, filled (in blocks, as Azure's block blobs are: staged, then committed in order), and
finalized; only finalized artifacts are listed and can be downloaded. Its name is unique within its run, as on
GitHub, but a job's later attempt replaces what an earlier attempt of the same job uploaded, so that a re-run
does not fail on its own earlier artifact.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS artifacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    name TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    size INTEGER,
    digest TEXT,
    finalized INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS artifacts_by_run ON artifacts (run_id, name);
"""
_FIELDS = "id, run_id, job_id, attempt, name, mime_type, created_at, expires_at, size, digest, finalized"


class ArtifactError(Exception):
    """What was asked of an artifact cannot be done; `code` is Twirp's name for why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Artifact:
    id: int
    run_id: str
    job_id: str
    attempt: int
    name: str
    mime_type: str
    created_at: datetime
    expires_at: datetime | None
    size: int | None
    digest: str | None
    """`sha256:<hex>` of the contents, once committed."""
    finalized: bool


@dataclass(frozen=True)
class Uploader:
    """Who creates an artifact: a job's attempt in a run."""

    run_id: str
    job_id: str
    attempt: int


class ArtifactStore:
    """Artifacts under `root`: `artifacts.db`, a folder of contents and one of staged blocks."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.root.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.root / "artifacts.db", isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)
            self._connection = connection
        return self._connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _rows(self, where: str, *parameters: object) -> list[Artifact]:
        with self._lock:
            rows = self._db().execute(f"SELECT {_FIELDS} FROM artifacts WHERE {where} ORDER BY id", parameters)
            return [_artifact(row) for row in rows]

    def content(self, artifact_id: int) -> Path:
        return self.root / "contents" / str(artifact_id)

    def _blocks(self, artifact_id: int) -> Path:
        return self.root / "blocks" / str(artifact_id)

    def _remove(self, artifact: Artifact) -> None:
        self._db().execute("DELETE FROM artifacts WHERE id = ?", (artifact.id,))
        self.content(artifact.id).unlink(missing_ok=True)
        shutil.rmtree(self._blocks(artifact.id), ignore_errors=True)

    # -- the upload ------------------------------------------------------------------------------------------

    def create(self, uploader: Uploader, name: str, mime_type: str, expires_at: datetime | None) -> Artifact:
        """A new artifact, not yet filled; `already_exists` when the run holds one of that name."""
        with self._lock:
            for earlier in self._rows("run_id = ? AND name = ?", uploader.run_id, name):
                replaceable = not earlier.finalized or (
                    earlier.job_id == uploader.job_id and earlier.attempt < uploader.attempt
                )
                if not replaceable:
                    raise ArtifactError(
                        "already_exists", f"an artifact with the name '{name}' already exists on the workflow run"
                    )
                self._remove(earlier)
            cursor = self._db().execute(
                "INSERT INTO artifacts (run_id, job_id, attempt, name, mime_type, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    uploader.run_id, uploader.job_id, uploader.attempt, name, mime_type,
                    _text(datetime.now(UTC)), _text(expires_at) if expires_at else None,
                ),
            )
            assert cursor.lastrowid is not None
            return self._rows("id = ?", cursor.lastrowid)[0]

    def pending(self, artifact_id: int) -> Artifact:
        """The artifact being uploaded under this id; `not_found` when there is none (or it was finalized)."""
        found = self._rows("id = ? AND finalized = 0", artifact_id)
        if not found:
            raise ArtifactError("not_found", f"no artifact upload {artifact_id} is in progress")
        return found[0]

    def stage(self, artifact_id: int, block_id: str, chunks: Iterable[bytes]) -> None:
        """Keep one block of an artifact's contents under its (Base64) id until the blocks are committed."""
        self.pending(artifact_id)
        folder = self._blocks(artifact_id)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / block_id.encode().hex()).open("wb") as file:
            for chunk in chunks:
                file.write(chunk)

    def commit(self, artifact_id: int, block_ids: Iterable[str], content_type: str | None = None) -> None:
        """The artifact's contents: the staged blocks named, in that order; a block not staged is refused."""
        self.pending(artifact_id)
        folder = self._blocks(artifact_id)
        parts = [folder / block_id.encode().hex() for block_id in block_ids]
        missing = [part for part in parts if not part.is_file()]
        if missing:
            block = bytes.fromhex(missing[0].name).decode()
            raise ArtifactError("invalid_argument", f"block {block!r} was never staged")
        target = self.content(artifact_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with target.open("wb") as out:
            for part in parts:
                for chunk in _chunks(part):
                    digest.update(chunk)
                    out.write(chunk)
        shutil.rmtree(folder, ignore_errors=True)
        with self._lock:
            self._db().execute(
                "UPDATE artifacts SET size = ?, digest = ?, mime_type = COALESCE(?, mime_type) WHERE id = ?",
                (target.stat().st_size, f"sha256:{digest.hexdigest()}", content_type, artifact_id),
            )

    def finalize(self, run_id: str, name: str, size: int, digest: str | None) -> Artifact:
        """Make the uploaded artifact visible, once its size (and digest, when given) match what was committed."""
        with self._lock:
            found = self._rows("run_id = ? AND name = ? AND finalized = 0", run_id, name)
            if not found:
                raise ArtifactError("not_found", f"no upload of an artifact named '{name}' is in progress")
            artifact = found[-1]
            if artifact.size is None:
                raise ArtifactError("failed_precondition", f"the contents of artifact '{name}' were never uploaded")
            if artifact.size != size:
                raise ArtifactError(
                    "invalid_argument", f"artifact '{name}' holds {artifact.size} bytes, not the {size} reported"
                )
            if digest and digest.lower() != artifact.digest:
                raise ArtifactError(
                    "invalid_argument", f"artifact '{name}' has the digest {artifact.digest}, not {digest}"
                )
            self._db().execute("UPDATE artifacts SET finalized = 1 WHERE id = ?", (artifact.id,))
            return self._rows("id = ?", artifact.id)[0]

    # -- afterwards ------------------------------------------------------------------------------------------

    def list(self, run_id: str, *, name: str | None = None, artifact_id: int | None = None) -> list[Artifact]:
        """The run's finalized artifacts, of that name or id when given."""
        where, parameters = "run_id = ? AND finalized = 1", [run_id]
        if name is not None:
            where, parameters = f"{where} AND name = ?", [*parameters, name]
        if artifact_id is not None:
            where, parameters = f"{where} AND id = ?", [*parameters, str(artifact_id)]
        return self._rows(where, *parameters)

    def finalized(self, artifact_id: int) -> Artifact:
        found = self._rows("id = ? AND finalized = 1", artifact_id)
        if not found:
            raise ArtifactError("not_found", f"there is no artifact {artifact_id}")
        return found[0]

    def delete(self, run_id: str, name: str) -> Artifact:
        with self._lock:
            found = self._rows("run_id = ? AND name = ? AND finalized = 1", run_id, name)
            if not found:
                raise ArtifactError("not_found", f"the run has no artifact named '{name}'")
            self._remove(found[-1])
            return found[-1]


def _chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(size):
            yield chunk


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _artifact(row: tuple[object, ...]) -> Artifact:
    (id_, run_id, job_id, attempt, name, mime_type, created_at, expires_at, size, digest, finalized) = row
    return Artifact(
        id=int(str(id_)),
        run_id=str(run_id),
        job_id=str(job_id),
        attempt=int(str(attempt)),
        name=str(name),
        mime_type=str(mime_type),
        created_at=datetime.fromisoformat(str(created_at)),
        expires_at=datetime.fromisoformat(str(expires_at)) if expires_at else None,
        size=int(str(size)) if size is not None else None,
        digest=str(digest) if digest is not None else None,
        finalized=bool(finalized),
    )
