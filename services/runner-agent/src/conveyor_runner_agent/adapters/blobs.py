"""Contents kept as Azure's block blobs are written (blocks staged under their ids, then committed in order), and
the SQLite records that describe them."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conveyor_runner_agent.adapters.twirp import ResultsError

MAX_BLOCK_ID = 100
"""The longest block id taken (Azure's: the Base64 of at most 64 bytes, 88 characters)."""
ABANDONED_AFTER = timedelta(minutes=30)
"""An upload not finalized within this long is taken to be abandoned: dropped, its name or key free again."""


@dataclass(frozen=True)
class Committed:
    size: int
    digest: str
    """`sha256:<hex>` of the contents."""


class BlobFolder:
    """Blobs named by number under `root`: `contents/<n>` once committed, `blocks/<n>/` while being written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._guard = threading.Lock()
        self._committing: dict[int, threading.Lock] = {}

    def content(self, number: int) -> Path:
        return self.root / "contents" / str(number)

    def _blocks(self, number: int) -> Path:
        return self.root / "blocks" / str(number)

    def open_block(self, number: int, block_id: str) -> BlockWriter:
        """Where one block is written; kept under its (Base64) id once finished, until the blocks are committed."""
        if not block_id or len(block_id) > MAX_BLOCK_ID:
            raise ResultsError("invalid_argument", f"a block id is 1 to {MAX_BLOCK_ID} characters, not {len(block_id)}")
        folder = self._blocks(number)
        folder.mkdir(parents=True, exist_ok=True)
        return BlockWriter(folder / block_id.encode().hex())

    def stage(self, number: int, block_id: str, chunks: Iterable[bytes]) -> None:
        writer = self.open_block(number, block_id)
        for chunk in chunks:
            writer.write(chunk)
        writer.finish()

    def commit(self, number: int, block_ids: Iterable[str]) -> Committed:
        """The blob's contents: the staged blocks named, in that order; a block not staged is refused.

        One commit of a blob at a time: the same request sent again while the first still copies (a client's
        retry) waits for it, then finds it done.
        """
        with self._guard:
            lock = self._committing.setdefault(number, threading.Lock())
        with lock:
            folder = self._blocks(number)
            target = self.content(number)
            if not folder.exists() and target.exists():  # committed already: the same request again
                return Committed(target.stat().st_size, _digest(target))
            parts = [folder / block_id.encode().hex() for block_id in block_ids]
            missing = [part for part in parts if not part.is_file()]
            if missing:
                block = bytes.fromhex(missing[0].name).decode()
                raise ResultsError("invalid_argument", f"block {block!r} was never staged")
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f"{target.name}.{uuid.uuid4().hex}.partial")
            digest = hashlib.sha256()
            with partial.open("wb") as out:
                for part in parts:
                    for chunk in _chunks(part):
                        digest.update(chunk)
                        out.write(chunk)
            os.replace(partial, target)
            shutil.rmtree(folder, ignore_errors=True)
            return Committed(target.stat().st_size, f"sha256:{digest.hexdigest()}")

    def written_since(self, number: int, moment: datetime) -> bool:
        """Whether a block of the blob was written after `moment`: an upload still going."""
        folder = self._blocks(number)
        stamps = [entry.stat().st_mtime for entry in folder.iterdir()] if folder.is_dir() else []
        return max(stamps, default=0.0) > moment.timestamp()

    def remove(self, number: int) -> None:
        self.content(number).unlink(missing_ok=True)
        shutil.rmtree(self._blocks(number), ignore_errors=True)


class BlockWriter:
    """One block being written: under a name of its own until `finish`, so that a block sent again while the first
    sending still runs (a client's retry) never mixes with it, and an upload cut short leaves nothing staged."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
        self._file = self._partial.open("wb")

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def finish(self) -> None:
        self._file.close()
        os.replace(self._partial, self.path)

    def abandon(self) -> None:
        self._file.close()
        self._partial.unlink(missing_ok=True)


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in _chunks(path):
        digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(size):
            yield chunk


class Records:
    """A SQLite file of records (`<root>/records.db`) beside the blobs they describe, behind one lock.

    Each record of `table` has an `id`, which names its blob, a `size` set once the blob is committed, a
    `created_at` time and a `finalized` flag: blocks are taken only for a record not finalized yet.
    """

    def __init__(self, root: Path, schema: str, table: str) -> None:
        self.root = root
        self.table = table
        self.blobs = BlobFolder(root)
        self._schema = schema
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None
        self._closed = False

    def _db(self) -> sqlite3.Connection:
        if self._closed:
            raise ResultsError("unavailable", "the results service has stopped")
        if self._connection is None:
            self.root.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.root / "records.db", isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(self._schema)
            self._connection = connection
        return self._connection

    def _query(self, statement: str, *parameters: object) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db().execute(statement, parameters).fetchall()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _uploading(self, number: int) -> None:
        if not self._query(f"SELECT 1 FROM {self.table} WHERE id = ? AND finalized = 0", number):
            raise ResultsError("not_found", f"nothing is being uploaded as {self.table} {number}")

    def open_block(self, number: int, block_id: str) -> BlockWriter:
        """Where one block of a record's contents is written (see `BlobFolder.open_block`)."""
        self._uploading(number)
        return self.blobs.open_block(number, block_id)

    def stage(self, number: int, block_id: str, chunks: Iterable[bytes]) -> None:
        self._uploading(number)
        self.blobs.stage(number, block_id, chunks)

    def commit(self, number: int, block_ids: Iterable[str], content_type: str | None = None) -> None:
        """A record's contents: the staged blocks named, in that order; a block not staged is refused."""
        self._uploading(number)
        committed = self.blobs.commit(number, block_ids)
        self._committed(number, committed, content_type)

    def _committed(self, number: int, committed: Committed, content_type: str | None) -> None:
        self._query(f"UPDATE {self.table} SET size = ? WHERE id = ?", committed.size, number)

    def _remove(self, number: int) -> None:
        """Forget a record and what its blob stored."""
        self._query(f"DELETE FROM {self.table} WHERE id = ?", number)
        self.blobs.remove(number)

    def _drop_abandoned(self) -> None:
        """Forget the uploads begun `ABANDONED_AFTER` ago or longer, not finalized and sending nothing since, with
        what they stored."""
        moment = datetime.now(UTC) - ABANDONED_AFTER
        with self._lock:
            unfinished = f"SELECT id FROM {self.table} WHERE finalized = 0 AND created_at < ?"
            begun = self._query(unfinished, moment_text(moment))
            for (number,) in begun:
                if not self.blobs.written_since(number, moment):  # a long upload still sending its blocks stays
                    self._remove(number)


def moment_text(moment: datetime) -> str:
    """A time as the records keep it: ISO 8601 in UTC to the microsecond, so that texts sort as the times do."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
