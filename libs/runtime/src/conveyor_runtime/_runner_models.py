"""The runners read model: who registered, with which labels, when each was last heard from, its leases.

Whether a lease is still held is not stored: it is read off the jobs read model (the job is at the lease's
attempt, with its runner, and not completed), so the rows here only ever grow and a rebuild gives the same.
"""

from __future__ import annotations

import json

from conveyor_events import Envelope, JobAssigned, LeaseRenewed, RunnerRegistered, RunnerSeen

from conveyor_runtime._projection_store import Db

SCHEMA = """
CREATE TABLE IF NOT EXISTS runners (
    runner_id TEXT PRIMARY KEY, name TEXT NOT NULL, labels TEXT NOT NULL,
    registered_at TEXT NOT NULL, last_seen TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    lease_id TEXT PRIMARY KEY, runner_id TEXT NOT NULL, run_id TEXT NOT NULL, job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL, assigned_at TEXT NOT NULL, renewed_at TEXT NOT NULL
);
"""
TABLES = ("runners", "leases")


def runner_registered(db: Db, envelope: Envelope, event: RunnerRegistered) -> None:
    db.execute(
        "INSERT INTO runners (runner_id, name, labels, registered_at, last_seen) VALUES (?,?,?,?,?)"
        " ON CONFLICT (runner_id) DO UPDATE SET name = excluded.name, labels = excluded.labels,"
        " last_seen = excluded.last_seen",
        (event.runner_id, event.name, json.dumps(event.labels), envelope.occurred_at_text(),
         envelope.occurred_at_text()),
    )


def runner_seen(db: Db, envelope: Envelope, event: RunnerSeen) -> None:
    _seen(db, event.runner_id, envelope.occurred_at_text())


def lease_assigned(db: Db, envelope: Envelope, event: JobAssigned) -> None:
    at = envelope.occurred_at_text()
    db.execute(
        "INSERT INTO leases (lease_id, runner_id, run_id, job_id, attempt, assigned_at, renewed_at)"
        " VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
        (event.lease_id, event.runner_id, event.run_id, event.job_id, event.attempt, at, at),
    )
    _seen(db, event.runner_id, at)


def lease_renewed(db: Db, envelope: Envelope, event: LeaseRenewed) -> None:
    at = envelope.occurred_at_text()
    db.execute("UPDATE leases SET renewed_at = ? WHERE lease_id = ?", (at, event.lease_id))
    row = db.execute("SELECT runner_id FROM leases WHERE lease_id = ?", (event.lease_id,)).fetchone()
    if row is not None:
        _seen(db, row[0], at)


def _seen(db: Db, runner_id: str, at: str) -> None:
    db.execute(
        "UPDATE runners SET last_seen = CASE WHEN last_seen < ? THEN ? ELSE last_seen END WHERE runner_id = ?",
        (at, at, runner_id),
    )
