"""Answering questions from the read models: runs, their jobs and steps, logs, repositories, runners."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any, NamedTuple

from conveyor_runtime import ProjectionStore, Row, Rows

from conveyor_ingest import runner_queries


class JobLogs(NamedTuple):
    """A job's log lines of one attempt, read with its id (None: the run has no such job)."""

    job_id: str | None
    attempt: int
    lines: list[dict[str, Any]]


class Queries:
    """Read-only questions over the read models of a projection store; each is answered from one view of them."""

    def __init__(self, store: ProjectionStore, *, embedded_runner: bool = False) -> None:
        self._store = store
        # An embedded runner takes jobs of any labels: no job then waits for want of a registered runner.
        self._embedded_runner = embedded_runner

    async def caught_up(self, position: int, *, timeout: float = 5.0) -> None:
        """Wait until the read models include the event at `position` (read-your-writes for the caller)."""
        async with asyncio.timeout(timeout):
            while await self._store.position() < position:
                await asyncio.sleep(0.005)

    async def runs(self, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        def ask(rows: Rows) -> list[dict[str, Any]]:
            found = rows("SELECT * FROM runs ORDER BY created_at DESC, run_id LIMIT ? OFFSET ?", limit, offset)
            return [_run(row) for row in found]

        return await self._store.read(ask)

    async def run(self, run_id: str) -> dict[str, Any] | None:
        return await self._store.read(lambda rows: self._run_with_jobs(rows, run_id))

    def _run_with_jobs(self, rows: Rows, run_id: str) -> dict[str, Any] | None:
        found = rows("SELECT * FROM runs WHERE run_id = ?", run_id)
        if not found:
            return None
        run = _run(found[0])
        steps: dict[str, list[dict[str, Any]]] = {}
        for row in rows("SELECT * FROM steps WHERE run_id = ? ORDER BY job_id, step_index", run_id):
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
                "reason": self._reason(rows, row),
                "queued_at": row["queued_at"],
                "started_at": row["started_at"],
                "completed_at": row["completed_at"],
                "steps": steps.get(row["job_id"], []),
            }
            for row in rows("SELECT * FROM jobs WHERE run_id = ? ORDER BY ordinal", run_id)
        ]
        return run

    async def job_id(self, run_id: str, job: str) -> str | None:
        """The job's id from its id or, when that is unambiguous in the run, its key."""
        return await self._store.read(lambda rows: _job(rows, run_id, job)[0])

    async def job_logs(
        self, run_id: str, job: str, *, after: int = 0, limit: int = 10_000, attempt: int | None = None
    ) -> JobLogs | None:
        """The job's log lines after line `after` of its latest attempt (or of `attempt`), with its id as
        `job_id` finds it, in one read (a client polls for lines): None when there is no such run."""

        def ask(rows: Rows) -> JobLogs | None:
            if not rows("SELECT 1 FROM runs WHERE run_id = ?", run_id):
                return None
            job_id, latest = _job(rows, run_id, job)
            chosen = attempt or latest
            lines = [] if job_id is None else _log_lines(rows, run_id, job_id, chosen, after, limit)
            return JobLogs(job_id, chosen, lines)

        return await self._store.read(ask)

    async def queue(self, now: datetime) -> list[dict[str, Any]]:
        """Jobs queued or waiting (approval, wait timer, concurrency), oldest first, with how long they wait."""

        def ask(rows: Rows) -> list[dict[str, Any]]:
            found = rows(
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
                    "reason": self._reason(rows, row),
                    "queued_at": row["queued_at"],
                    "waiting_seconds": _seconds_since(row["queued_at"], now),
                }
                for row in found
            ]

        return await self._store.read(ask)

    def _reason(self, rows: Rows, job: Row) -> str | None:
        return runner_queries.waiting_reason(rows, job, embedded_runner=self._embedded_runner)

    async def runners(self, now: datetime) -> list[dict[str, Any]]:
        """Registered runners with their labels, last sighting, the leases they hold and idle/busy/offline."""
        return await self._store.read(lambda rows: runner_queries.runners(rows, now))

    async def runner(self, runner_id: str, now: datetime) -> dict[str, Any] | None:
        return await self._store.read(lambda rows: runner_queries.runner(rows, runner_id, now))

    async def lease(self, lease_id: str) -> dict[str, Any] | None:
        return await self._store.read(lambda rows: runner_queries.lease(rows, lease_id))

    async def unstarted_leases(self, runner_id: str) -> list[dict[str, Any]]:
        """Leases the runner holds on attempts it has not started, oldest first."""
        return await self._store.read(lambda rows: runner_queries.unstarted(rows, runner_id))

    async def queued_for(self, labels: list[str]) -> list[tuple[str, str, int]]:
        """Queued attempts no runner holds that a runner with `labels` may take, oldest first."""
        return await self._store.read(lambda rows: runner_queries.queued(rows, labels))

    async def repositories(self) -> list[dict[str, Any]]:
        return await self._store.read(
            lambda rows: [_repository(row) for row in rows("SELECT * FROM repositories ORDER BY name")]
        )

    async def repository(self, name: str) -> dict[str, Any] | None:
        def ask(rows: Rows) -> dict[str, Any] | None:
            found = rows("SELECT * FROM repositories WHERE name = ?", name)
            return _repository(found[0]) if found else None

        return await self._store.read(ask)

    async def github_repositories(self, full_name: str) -> list[dict[str, Any]]:
        """The repositories registered for GitHub's `owner/name` (case-insensitive), with their sealed secrets.

        For checking deliveries only: these rows hold ciphertext, which no answer of the API includes.
        """
        query = "SELECT * FROM repositories WHERE lower(github) = lower(CAST(? AS TEXT)) ORDER BY name"
        return await self._store.read(lambda rows: [dict(row) for row in rows(query, full_name)])


def _job(rows: Rows, run_id: str, job: str) -> tuple[str | None, int]:
    """The job's id (None when there is no such job) and its latest attempt (at least 1)."""
    found = rows(
        "SELECT job_id, attempt FROM jobs WHERE run_id = ? AND (job_id = ? OR job_key = ?) ORDER BY job_id != ?",
        run_id, job, job, job,
    )
    if not found or (len(found) > 1 and found[0]["job_id"] != job):
        return None, 1
    return str(found[0]["job_id"]), max(int(found[0]["attempt"]), 1)


def _log_lines(rows: Rows, run_id: str, job_id: str, attempt: int, after: int, limit: int) -> list[dict[str, Any]]:
    found = rows(
        "SELECT line, step_index, at, text FROM log_lines WHERE run_id = ? AND job_id = ? AND attempt = ?"
        " AND line > ? ORDER BY line LIMIT ?",
        run_id, job_id, attempt, after, limit,
    )
    return [{"line": r["line"], "step": r["step_index"] + 1, "at": r["at"], "text": r["text"]} for r in found]


def _seconds_since(moment: str | None, now: datetime) -> float | None:
    if moment is None:
        return None
    return round((now - datetime.fromisoformat(moment.replace("Z", "+00:00"))).total_seconds(), 3)


def _repository(row: Row) -> dict[str, Any]:
    """A repository as the API shows it: whether it has secrets, never the secrets (not even sealed)."""
    return {
        "name": row["name"],
        "url": row["url"],
        "default_branch": row["default_branch"],
        "github": row["github"],
        "has_webhook_secret": row["webhook_secret"] is not None,
        "has_token": row["token"] is not None,
    }


def _run(row: Row) -> dict[str, Any]:
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
        "artifacts": json.loads(row["artifacts"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
