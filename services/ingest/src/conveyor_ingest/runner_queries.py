"""Answering questions about runners from the read models: who is registered, what each holds, what waits."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from conveyor_runtime import LEASE_PERIOD, Row, Rows, covers

OFFLINE_AFTER = LEASE_PERIOD
"""A runner not heard from (a poll, a claim, a heartbeat) for this long is shown offline."""

_HELD = (
    "SELECT l.lease_id, l.runner_id, l.run_id, l.job_id, l.attempt, l.assigned_at, l.renewed_at FROM leases l"
    " JOIN jobs j ON j.run_id = l.run_id AND j.job_id = l.job_id AND j.attempt = l.attempt"
    " AND j.runner_id = l.runner_id AND j.status != 'completed'"
)


def runners(rows: Rows, now: datetime) -> list[dict[str, Any]]:
    held: dict[str, list[dict[str, Any]]] = {}
    for lease in rows(f"{_HELD} ORDER BY l.assigned_at"):
        held.setdefault(lease["runner_id"], []).append(_lease(lease))
    return [_runner(row, held.get(row["runner_id"], []), now) for row in rows("SELECT * FROM runners ORDER BY name")]


def runner(rows: Rows, runner_id: str, now: datetime) -> dict[str, Any] | None:
    found = rows("SELECT * FROM runners WHERE runner_id = ?", runner_id)
    if not found:
        return None
    held = [_lease(lease) for lease in rows(f"{_HELD} WHERE l.runner_id = ? ORDER BY l.assigned_at", runner_id)]
    return _runner(found[0], held, now)


def lease(rows: Rows, lease_id: str) -> dict[str, Any] | None:
    """A lease by id, held or not (whether it still is, the log says)."""
    found = rows("SELECT * FROM leases WHERE lease_id = ?", lease_id)
    return {**_lease(found[0]), "runner": found[0]["runner_id"]} if found else None


def unstarted(rows: Rows, runner_id: str) -> list[dict[str, Any]]:
    """Leases the runner holds on attempts it has not started, oldest first."""
    held = rows(f"{_HELD} WHERE l.runner_id = ? AND j.status = 'queued' ORDER BY l.assigned_at", runner_id)
    return [_lease(lease) for lease in held]


def queued(rows: Rows, labels: Iterable[str]) -> list[tuple[str, str, int]]:
    """Queued attempts no runner holds whose labels `labels` covers, oldest first: (run, job, attempt)."""
    offered = list(labels)
    candidates = rows(
        "SELECT run_id, job_id, attempt, labels FROM jobs WHERE status = 'queued' AND runner_id IS NULL"
        " ORDER BY queued_at, run_id, ordinal"
    )
    return [
        (row["run_id"], row["job_id"], row["attempt"])
        for row in candidates
        if covers(offered, json.loads(row["labels"] or "[]"))
    ]


def waiting_reason(rows: Rows, job: Row, *, embedded_runner: bool) -> str | None:
    """Why a queued job no runner holds waits, when it is because no registered runner has its labels."""
    if job["status"] != "queued" or job["runner_id"] is not None or job["reason"] or embedded_runner:
        return job["reason"]  # type: ignore[no-any-return]
    wanted = json.loads(job["labels"] or "[]")
    offered = [json.loads(row["labels"]) for row in rows("SELECT labels FROM runners")]
    if any(covers(labels, wanted) for labels in offered):
        return None
    if not offered:
        return "no runner is registered"
    return f"no runner has the labels: {', '.join(wanted)}"


def _lease(row: Row) -> dict[str, Any]:
    return {
        "lease_id": row["lease_id"],
        "run": row["run_id"],
        "job": row["job_id"],
        "attempt": row["attempt"],
        "assigned_at": row["assigned_at"],
        "renewed_at": row["renewed_at"],
    }


def _runner(row: Row, held: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    last_seen = datetime.fromisoformat(row["last_seen"].replace("Z", "+00:00"))
    status = "busy" if held else "offline" if now - last_seen > OFFLINE_AFTER else "idle"
    return {
        "id": row["runner_id"],
        "name": row["name"],
        "labels": json.loads(row["labels"]),
        "status": status,
        "registered_at": row["registered_at"],
        "last_seen": row["last_seen"],
        "job": held[0] if held else None,
        "leases": held,
    }
