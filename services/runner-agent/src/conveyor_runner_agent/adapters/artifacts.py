"""The artifacts of workflow runs, kept in a folder: their records in a SQLite file, their contents beside it.

An artifact is created, filled (in blocks, as Azure's block blobs are: staged, then committed in order), and
finalized; only finalized artifacts are listed and can be downloaded, until their retention (`retention-days`,
90 days when not given) ends. Its name is unique within its run, as on GitHub, but a job's later attempt
replaces what an earlier attempt of the same job uploaded, so that a re-run does not fail on its own earlier
artifact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conveyor_runner_agent.adapters.blobs import Committed, Records, moment_text
from conveyor_runner_agent.adapters.twirp import ResultsError

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
RETENTION = timedelta(days=90)
"""How long an artifact is kept when its upload names no `retention-days`: GitHub's default."""


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


class ArtifactStore(Records):
    """Artifacts under `root`: their records, their contents, and the blocks of those being uploaded."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, _SCHEMA, "artifacts")

    def _rows(self, where: str, *parameters: object) -> list[Artifact]:
        rows = self._query(f"SELECT {_FIELDS} FROM artifacts WHERE {where} ORDER BY id", *parameters)
        return [_artifact(row) for row in rows]

    def content(self, artifact_id: int) -> Path:
        return self.blobs.content(artifact_id)

    # -- the upload ------------------------------------------------------------------------------------------

    def create(self, uploader: Uploader, name: str, mime_type: str, expires_at: datetime | None) -> Artifact:
        """A new artifact, not yet filled; `already_exists` when the run holds one of that name (but an earlier
        attempt's of the same job, which the new one replaces once finalized), or another job is uploading one (an
        upload abandoned long enough ago gives way). The job's own unfinished upload of it starts over."""
        now = datetime.now(UTC)
        with self._lock:
            self._drop_abandoned()
            self._drop_expired()
            for earlier in self._rows("run_id = ? AND name = ?", uploader.run_id, name):
                same_job = earlier.job_id == uploader.job_id
                if same_job and not earlier.finalized:
                    self._remove(earlier.id)
                elif not (same_job and earlier.attempt < uploader.attempt):
                    raise ResultsError(
                        "already_exists", f"an artifact with the name '{name}' already exists on the workflow run"
                    )
            [(number,)] = self._query(
                "INSERT INTO artifacts (run_id, job_id, attempt, name, mime_type, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                uploader.run_id, uploader.job_id, uploader.attempt, name, mime_type,
                moment_text(now), moment_text(expires_at or now + RETENTION),
            )
            return self._rows("id = ?", number)[0]

    def _committed(self, number: int, committed: Committed, content_type: str | None) -> None:
        # The media type stays the one CreateArtifact gave: older clients send the blob's as a bare 'zip'.
        self._query("UPDATE artifacts SET size = ?, digest = ? WHERE id = ?", committed.size, committed.digest, number)

    def finalize(self, uploader: Uploader, name: str, size: int, digest: str | None) -> Artifact:
        """Make the artifact this job uploaded visible, once its size (and digest, when given) match what was
        committed."""
        with self._lock:
            mine = self._rows(
                "run_id = ? AND job_id = ? AND attempt = ? AND name = ?",
                uploader.run_id, uploader.job_id, uploader.attempt, name,
            )
            if mine and mine[-1].finalized and mine[-1].size == size:
                return mine[-1]  # finalized already: the same request again, its answer lost
            if not mine or mine[-1].finalized:
                raise ResultsError("not_found", f"no upload of an artifact named '{name}' is in progress")
            artifact = mine[-1]
            if artifact.size is None:
                raise ResultsError("failed_precondition", f"the contents of artifact '{name}' were never uploaded")
            if artifact.size != size:
                raise ResultsError(
                    "invalid_argument", f"artifact '{name}' holds {artifact.size} bytes, not the {size} reported"
                )
            if digest and digest.lower() != artifact.digest:
                raise ResultsError(
                    "invalid_argument", f"artifact '{name}' has the digest {artifact.digest}, not {digest}"
                )
            self._query("UPDATE artifacts SET finalized = 1 WHERE id = ?", artifact.id)
            for replaced in self._rows("run_id = ? AND name = ? AND id != ?", uploader.run_id, name, artifact.id):
                self._remove(replaced.id)  # an earlier attempt's of the same job, kept until now
            return self._rows("id = ?", artifact.id)[0]

    # -- afterwards ------------------------------------------------------------------------------------------

    def _drop_expired(self) -> None:
        """Delete the artifacts past their retention, as GitHub does: they are no longer listed or downloaded."""
        with self._lock:
            for expired in self._rows("finalized = 1 AND expires_at < ?", moment_text(datetime.now(UTC))):
                self._remove(expired.id)

    def list(self, run_id: str, *, name: str | None = None, artifact_id: int | None = None) -> list[Artifact]:
        """The run's finalized artifacts, of that name or id when given (those past their retention are gone)."""
        self._drop_expired()
        where, parameters = "run_id = ? AND finalized = 1", [run_id]
        if name is not None:
            where, parameters = f"{where} AND name = ?", [*parameters, name]
        if artifact_id is not None:
            where, parameters = f"{where} AND id = ?", [*parameters, str(artifact_id)]
        return self._rows(where, *parameters)

    def readable(self, artifact_id: int) -> tuple[Path, str]:
        """A finalized artifact's contents and their media type."""
        self._drop_expired()
        found = self._rows("id = ? AND finalized = 1", artifact_id)
        if not found:
            raise ResultsError("not_found", f"there is no artifact {artifact_id}")
        return self.blobs.content(artifact_id), found[0].mime_type

    def delete(self, run_id: str, name: str) -> Artifact:
        with self._lock:
            found = self._rows("run_id = ? AND name = ? AND finalized = 1", run_id, name)
            if not found:
                raise ResultsError("not_found", f"the run has no artifact named '{name}'")
            self._remove(found[-1].id)
            return found[-1]


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
