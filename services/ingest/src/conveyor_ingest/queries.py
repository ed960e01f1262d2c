"""Answering questions from the read models: runs, their jobs and steps, logs, repositories, runners."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from datetime import datetime
from typing import Any

from conveyor_runtime import SqliteProjections

from conveyor_ingest import runner_queries


class Queries:
    """Read-only questions over the projections.

    Each thread that asks keeps one connection (opening one costs more than most questions do); in WAL mode
    every question still sees what was committed before it began.
    """

    def __init__(self, store: SqliteProjections, *, embedded_runner: bool = False) -> None:
        self._store = store
        self._local = threading.local()
        # An embedded runner takes jobs of any labels: no job then waits for want of a registered runner.
        self._embedded_runner = embedded_runner

    def _rows(self, sql: str, *parameters: Any) -> list[sqlite3.Row]:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._store.connect()
        return list(db.execute(sql, parameters))

    async def caught_up(self, position: int, *, timeout: float = 5.0) -> None:
        """Wait until the read models include the event at `position` (read-your-writes for the caller)."""
        async with asyncio.timeout(timeout):
            while await asyncio.to_thread(self._store.position) < position:
                await asyncio.sleep(0.005)

    def runs(self, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT * FROM runs ORDER BY created_at DESC, run_id LIMIT ? OFFSET ?", limit, offset
        )
        return [_run(row) for row in rows]

    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM runs WHERE run_id = ?", run_id)
        if not rows:
            return None
        run = _run(rows[0])
        steps: dict[str, list[dict[str, Any]]] = {}
        for row in self._rows("SELECT * FROM steps WHERE run_id = ? ORDER BY job_id, step_index", run_id):
            steps.setdefault(row["job_id"], []).append(
                {
                    "number": row["step_index"] + 1,
                    "id": row["step_id"],
                    "name": row["name"],
                    "status": row["status"],
                    "outcome": row["outcome"],
                    "conclusion": row["conclusion"],
                    "outputs": json.loads(row["outputs"]),
                    "annotations": json.loads(row["annotations"]),
                    "summary": row["summary"],
                    "started_at": row["started_at"],
                    "completed_at": row["completed_at"],
                }
            )
        run["jobs"] = [
            {
                "id": row["job_id"],
                "workflow": row["workflow"],
                "key": row["job_key"],
                "name": row["name"],
                "needs": json.loads(row["needs"]),
                "status": row["status"],
                "conclusion": row["conclusion"],
                "attempt": row["attempt"],
                "runner": row["runner_id"],
                "outputs": json.loads(row["outputs"]),
                "error": row["error"],
                "reason": self._reason(row),
                "queued_at": row["queued_at"],
                "started_at": row["started_at"],
                "completed_at": row["completed_at"],
                "steps": steps.get(row["job_id"], []),
            }
            for row in self._rows("SELECT * FROM jobs WHERE run_id = ? ORDER BY ordinal", run_id)
        ]
        return run

    def job_id(self, run_id: str, job: str) -> str | None:
        """The job's id from its id or, when that is unambiguous in the run, its key."""
        rows = self._rows(
            "SELECT job_id FROM jobs WHERE run_id = ? AND (job_id = ? OR job_key = ?) ORDER BY job_id != ?",
            run_id, job, job, job,
        )
        if not rows or (len(rows) > 1 and rows[0]["job_id"] != job):
            return None
        return str(rows[0]["job_id"])

    def logs(self, run_id: str, job_id: str, *, after: int = 0, limit: int = 10_000) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT line, step_index, at, text FROM log_lines WHERE run_id = ? AND job_id = ? AND line > ?"
            " ORDER BY line LIMIT ?",
            run_id, job_id, after, limit,
        )
        return [{"line": r["line"], "step": r["step_index"] + 1, "at": r["at"], "text": r["text"]} for r in rows]

    def queue(self, now: datetime) -> list[dict[str, Any]]:
        """Jobs queued or waiting (approval, wait timer, concurrency), oldest first, with how long they wait."""
        rows = self._rows(
            "SELECT run_id, job_id, name, status, attempt, reason, queued_at, runner_id, labels FROM jobs"
            " WHERE status IN ('queued', 'waiting') ORDER BY queued_at IS NULL, queued_at, run_id, ordinal"
        )
        return [
            {
                "run": row["run_id"],
                "job": row["job_id"],
                "name": row["name"],
                "status": row["status"],
                "attempt": row["attempt"],
                "reason": self._reason(row),
                "queued_at": row["queued_at"],
                "waiting_seconds": _seconds_since(row["queued_at"], now),
            }
            for row in rows
        ]

    def _reason(self, job: sqlite3.Row) -> str | None:
        return runner_queries.waiting_reason(self._rows, job, embedded_runner=self._embedded_runner)

    def runners(self, now: datetime) -> list[dict[str, Any]]:
        """Registered runners with their labels, last sighting, the leases they hold and idle/busy/offline."""
        return runner_queries.runners(self._rows, now)

    def runner(self, runner_id: str, now: datetime) -> dict[str, Any] | None:
        return runner_queries.runner(self._rows, runner_id, now)

    def lease(self, lease_id: str) -> dict[str, Any] | None:
        return runner_queries.lease(self._rows, lease_id)

    def queued_for(self, labels: list[str]) -> list[tuple[str, str, int]]:
        """Queued attempts no runner holds that a runner with `labels` may take, oldest first."""
        return runner_queries.queued(self._rows, labels)

    def repositories(self) -> list[dict[str, Any]]:
        return [_repository(row) for row in self._rows("SELECT * FROM repositories ORDER BY name")]

    def repository(self, name: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM repositories WHERE name = ?", name)
        return _repository(rows[0]) if rows else None

    def github_repositories(self, full_name: str) -> list[dict[str, Any]]:
        """The repositories registered for GitHub's `owner/name` (case-insensitive), with their sealed secrets.

        For checking deliveries only: these rows hold ciphertext, which no answer of the API includes.
        """
        rows = self._rows("SELECT * FROM repositories WHERE lower(github) = lower(?) ORDER BY name", full_name)
        return [dict(row) for row in rows]


def _seconds_since(moment: str | None, now: datetime) -> float | None:
    if moment is None:
        return None
    return round((now - datetime.fromisoformat(moment.replace("Z", "+00:00"))).total_seconds(), 3)


def _repository(row: sqlite3.Row) -> dict[str, Any]:
    """A repository as the API shows it: whether it has secrets, never the secrets (not even sealed)."""
    return {
        "name": row["name"],
        "url": row["url"],
        "default_branch": row["default_branch"],
        "github": row["github"],
        "has_webhook_secret": row["webhook_secret"] is not None,
        "has_token": row["token"] is not None,
    }


def _run(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["run_id"],
        "repository": row["repository"],
        "ref": row["ref"],
        "sha": row["sha"],
        "event": row["event_name"],
        "actor": row["actor"],
        "status": row["status"],
        "conclusion": row["conclusion"],
        "workflows": json.loads(row["workflows"]),
        "problems": json.loads(row["problems"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
