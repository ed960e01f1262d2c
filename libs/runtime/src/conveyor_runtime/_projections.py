"""Read models of runs, jobs, steps, logs, repositories and runners, written from the log into a projection store.

The projector keeps its position in the same database and transaction as the rows it writes, so after a
crash it resumes exactly where its last committed batch ended. Every value is taken from the events (never
from the clock), so rebuilding from position 0 gives the same rows. The statements are written once, in the
SQL that SQLite and PostgreSQL both accept, and run by either store (`SqliteProjections`, `PostgresProjections`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from conveyor_events import (
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    ArtifactDeleted,
    ArtifactUploaded,
    ConcurrencyAcquired,
    ConcurrencyCancelled,
    ConcurrencyWaited,
    Envelope,
    JobAssigned,
    JobCancelRequested,
    JobCompleted,
    JobLost,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    JobTimedOut,
    LeaseRenewed,
    MatrixExpanded,
    RepositoryRegistered,
    RunCancelRequested,
    RunCompleted,
    RunnerRegistered,
    RunnerSeen,
    RunNumbered,
    RunPlanned,
    RunRejected,
    RunRequested,
    RunRerunRequested,
    StepCompleted,
    StepLogged,
    StepStarted,
    WaitTimerStarted,
    timestamp_text,
)

from conveyor_runtime import _runner_models as runners
from conveyor_runtime._log import EventLog
from conveyor_runtime._projection_store import Db, ProjectionStore

PROJECTOR = "projector"

TABLES = ("runs", "jobs", "steps", "log_lines", "repositories", *runners.TABLES)

Apply = Callable[[Db, Envelope, Any], None]


def _at(envelope: Envelope) -> str:
    return timestamp_text(envelope.occurred_at)


def _json(value: Any) -> str:
    """`json.dumps(value)`, without its work for the empty dict or list most events carry."""
    if not value and type(value) in (dict, list):
        return "{}" if type(value) is dict else "[]"
    return json.dumps(value)


def _run_requested(db: Db, envelope: Envelope, event: RunRequested) -> None:
    db.execute(
        "INSERT INTO runs (run_id, repository, ref, sha, event_name, actor, status, created_at,"
        " updated_at, last_position) VALUES (?,?,?,?,?,?,'requested',?,?,?) ON CONFLICT DO NOTHING",
        (
            event.run_id,
            event.repository,
            event.ref,
            event.sha,
            event.event_name,
            event.actor,
            _at(envelope),
            _at(envelope),
            envelope.position,
        ),
    )


def _run_planned(db: Db, envelope: Envelope, event: RunPlanned) -> None:
    (workflows,) = db.execute("SELECT workflows FROM runs WHERE run_id = ?", (event.run_id,)).fetchone()
    listed = [*json.loads(workflows), {"path": event.workflow, "name": event.workflow_name}]
    db.execute(
        "UPDATE runs SET status = CASE WHEN status = 'requested' THEN 'in_progress' ELSE status END,"
        " workflows = ? WHERE run_id = ?",
        (_json(listed), event.run_id),
    )


def _run_numbered(db: Db, envelope: Envelope, event: RunNumbered) -> None:
    (workflows,) = db.execute("SELECT workflows FROM runs WHERE run_id = ?", (event.run_id,)).fetchone()
    listed = [
        {**workflow, "number": event.number, "title": event.title} if workflow.get("path") == event.workflow
        else workflow
        for workflow in json.loads(workflows)
    ]
    db.execute("UPDATE runs SET workflows = ? WHERE run_id = ?", (_json(listed), event.run_id))


def _run_rejected(db: Db, envelope: Envelope, event: RunRejected) -> None:
    (problems,) = db.execute("SELECT problems FROM runs WHERE run_id = ?", (event.run_id,)).fetchone()
    found = json.loads(problems)
    found.append(
        {
            "workflow": event.workflow,
            "reason": event.reason,
            "problems": [problem.model_dump() for problem in event.problems],
        }
    )
    db.execute("UPDATE runs SET problems = ? WHERE run_id = ?", (_json(found), event.run_id))


def _run_completed(db: Db, envelope: Envelope, event: RunCompleted) -> None:
    db.execute(
        "UPDATE runs SET status = 'completed', conclusion = ? WHERE run_id = ?",
        (event.conclusion.value, event.run_id),
    )


def _artifact_uploaded(db: Db, envelope: Envelope, event: ArtifactUploaded) -> None:
    """A run's artifacts as GitHub lists them: each name once (a re-run job's upload replaces its earlier one)."""
    (artifacts,) = db.execute("SELECT artifacts FROM runs WHERE run_id = ?", (event.run_id,)).fetchone()
    listed = [artifact for artifact in json.loads(artifacts) if artifact["name"] != event.name]
    listed.append(
        {
            "id": event.artifact_id,
            "name": event.name,
            "size": event.size,
            "digest": event.digest,
            "job_id": event.job_id,
            "attempt": event.attempt,
            "created_at": _at(envelope),
        }
    )
    db.execute("UPDATE runs SET artifacts = ? WHERE run_id = ?", (_json(listed), event.run_id))


def _artifact_deleted(db: Db, envelope: Envelope, event: ArtifactDeleted) -> None:
    (artifacts,) = db.execute("SELECT artifacts FROM runs WHERE run_id = ?", (event.run_id,)).fetchone()
    # By name, unique in a run: ids are each runner's own, so two runners' artifacts of one run may share one.
    listed = [artifact for artifact in json.loads(artifacts) if artifact["name"] != event.name]
    db.execute("UPDATE runs SET artifacts = ? WHERE run_id = ?", (_json(listed), event.run_id))


def _run_cancel_requested(db: Db, envelope: Envelope, event: RunCancelRequested) -> None:
    db.execute("UPDATE runs SET status = 'cancelling' WHERE run_id = ? AND status != 'completed'", (event.run_id,))


def _job_planned(db: Db, envelope: Envelope, event: JobPlanned) -> None:
    (ordinal,) = db.execute("SELECT COUNT(*) FROM jobs WHERE run_id = ?", (event.run_id,)).fetchone()
    db.execute(
        "INSERT INTO jobs (run_id, job_id, workflow, job_key, name, needs, status, attempt, ordinal)"
        " VALUES (?,?,?,?,?,?,'pending',1,?) ON CONFLICT DO NOTHING",
        (event.run_id, event.job_id, event.workflow, event.job_key, event.name, _json(event.needs), ordinal),
    )


def _matrix_expanded(db: Db, envelope: Envelope, event: MatrixExpanded) -> None:
    """The job as planned, unexpanded, gives way to its legs (each a `JobPlanned` that follows)."""
    db.execute("DELETE FROM jobs WHERE run_id = ? AND job_id = ?", (event.run_id, event.job_id))


def _job_queued(db: Db, envelope: Envelope, event: JobQueued) -> None:
    db.execute(
        "UPDATE jobs SET status = 'queued', attempt = ?, queued_at = ?, conclusion = NULL, error = NULL,"
        " reason = NULL, runner_id = NULL, started_at = NULL, completed_at = NULL, labels = ?"
        " WHERE run_id = ? AND job_id = ?",
        (event.attempt, _at(envelope), _json(event.labels), event.run_id, event.job_id),
    )


def _job_skipped(db: Db, envelope: Envelope, event: JobSkipped) -> None:
    db.execute(
        "UPDATE jobs SET status = 'completed', conclusion = 'skipped', reason = ?, completed_at = ?"
        " WHERE run_id = ? AND job_id = ?",
        (event.reason, _at(envelope), event.run_id, event.job_id),
    )


def _job_assigned(db: Db, envelope: Envelope, event: JobAssigned) -> None:
    db.execute(
        "UPDATE jobs SET runner_id = ? WHERE run_id = ? AND job_id = ?",
        (event.runner_id, event.run_id, event.job_id),
    )
    runners.lease_assigned(db, envelope, event)


def _job_started(db: Db, envelope: Envelope, event: JobStarted) -> None:
    db.execute(
        "UPDATE jobs SET status = 'in_progress', runner_id = ?, started_at = ? WHERE run_id = ? AND job_id = ?",
        (event.runner_id, _at(envelope), event.run_id, event.job_id),
    )


def _job_completed(db: Db, envelope: Envelope, event: JobCompleted) -> None:
    db.execute(
        "UPDATE jobs SET status = 'completed', conclusion = ?, outputs = ?, error = COALESCE(?, error),"
        " completed_at = ? WHERE run_id = ? AND job_id = ? AND attempt = ? AND status != 'completed'",
        (
            event.conclusion.value,
            _json(event.outputs),
            event.error,
            _at(envelope),
            event.run_id,
            event.job_id,
            event.attempt,
        ),
    )


def _step_started(db: Db, envelope: Envelope, event: StepStarted) -> None:
    db.execute(
        "INSERT INTO steps (run_id, job_id, step_index, step_id, name, status, started_at)"
        " VALUES (?,?,?,?,?,'in_progress',?) ON CONFLICT (run_id, job_id, step_index) DO UPDATE SET"
        " step_id = excluded.step_id, name = excluded.name, status = 'in_progress', outcome = NULL,"
        " conclusion = NULL, outputs = '{}', annotations = '[]', summary = '', started_at = excluded.started_at,"
        " completed_at = NULL",
        (event.run_id, event.job_id, event.step_index, event.step_id, event.name, _at(envelope)),
    )


def _step_completed(db: Db, envelope: Envelope, event: StepCompleted) -> None:
    db.execute(
        "INSERT INTO steps (run_id, job_id, step_index, step_id, name, status, outcome, conclusion, outputs,"
        " annotations, summary, completed_at) VALUES (?,?,?,?,?,'completed',?,?,?,?,?,?)"
        " ON CONFLICT (run_id, job_id, step_index) DO UPDATE SET status = 'completed',"
        " outcome = excluded.outcome, conclusion = excluded.conclusion, outputs = excluded.outputs,"
        " annotations = excluded.annotations, summary = excluded.summary, completed_at = excluded.completed_at",
        (
            event.run_id,
            event.job_id,
            event.step_index,
            event.step_id,
            event.name or f"step {event.step_index + 1}",
            event.outcome.value,
            event.conclusion.value,
            _json(event.outputs),
            _json([annotation.model_dump(exclude_none=True) for annotation in event.annotations]),
            event.summary,
            _at(envelope),
        ),
    )


def _step_logged(db: Db, envelope: Envelope, event: StepLogged) -> None:
    db.executemany(
        "INSERT INTO log_lines (run_id, job_id, line, step_index, at, text, attempt) VALUES (?,?,?,?,?,?,?)"
        " ON CONFLICT DO NOTHING",
        [
            (
                event.run_id,
                event.job_id,
                event.first_line + offset,
                event.step_index,
                timestamp_text(line.at),
                line.text,
                event.attempt,
            )
            for offset, line in enumerate(event.lines)
        ],
    )


def _repository_registered(db: Db, envelope: Envelope, event: RepositoryRegistered) -> None:
    """Secrets are stored as they travel in the event: sealed, never in clear text."""
    # Registrations from before `github` existed map an `owner/name` name to GitHub, as new ones do.
    github = event.github or (event.name if "/" in event.name else None)
    db.execute(
        "INSERT INTO repositories (name, url, default_branch, github, webhook_secret, token) VALUES (?,?,?,?,?,?)"
        " ON CONFLICT (name) DO UPDATE SET url = excluded.url, default_branch = excluded.default_branch,"
        " github = excluded.github, webhook_secret = excluded.webhook_secret, token = excluded.token",
        (
            event.name,
            event.url,
            event.default_branch,
            github,
            event.webhook_secret.model_dump_json() if event.webhook_secret else None,
            event.token.model_dump_json() if event.token else None,
        ),
    )


def _job_note(status: str | None, *, ending: bool = False) -> Apply:
    """A scheduler decision about a job attempt: its status (when still open) and why, in words.

    With `ending` it ends the attempt as a failure, unless the attempt already ended (the first ending wins,
    as the run's conclusion was decided on it).
    """

    def apply(db: Db, envelope: Envelope, event: Any) -> None:
        reason = _reason(event)
        attempt = getattr(event, "attempt", None)  # None: whatever attempt the job is at
        if ending:
            db.execute(
                "UPDATE jobs SET status = 'completed', conclusion = 'failure', error = ?, completed_at = ?"
                " WHERE run_id = ? AND job_id = ? AND (CAST(? AS INTEGER) IS NULL OR attempt = ?)"
                " AND status != 'completed'",
                (reason, _at(envelope), event.run_id, event.job_id, attempt, attempt),
            )
            return
        # A job held before a runner may take it (approval, timer, group) waits from then on, as a queued one.
        waits = status == "waiting"
        db.execute(
            "UPDATE jobs SET status = COALESCE(?, status), reason = ?,"
            " queued_at = CASE WHEN ? = 1 THEN COALESCE(queued_at, ?) ELSE queued_at END"
            " WHERE run_id = ? AND job_id = ? AND (CAST(? AS INTEGER) IS NULL OR attempt <= ?)"
            " AND status != 'completed'",
            (status, reason, int(waits), _at(envelope), event.run_id, event.job_id, attempt, attempt),
        )

    return apply


def _reason(event: Any) -> str:
    match event:
        case JobCancelRequested():
            return f"cancel requested{': ' + event.reason if event.reason else ''}"
        case JobTimedOut():
            return f"timed out while {event.phase} (limit {event.limit_minutes:g} minutes)"
        case JobLost():
            return f"lost: {event.reason or 'the runner stopped answering'}"
        case ApprovalRequested():
            who = ", ".join(event.reviewers) or "a reviewer"
            return f"waiting for {who} to approve the environment {event.environment}"
        case ApprovalGranted():
            return f"approved by {event.approver}"
        case ApprovalRejected():
            return f"rejected by {event.approver}{': ' + event.comment if event.comment else ''}"
        case WaitTimerStarted():
            return f"the environment {event.environment} waits until {event.until.isoformat()}"
        case ConcurrencyWaited():
            return f"waiting for the concurrency group {event.group}"
        case ConcurrencyCancelled():
            return f"cancelled in the concurrency group {event.group} ({event.reason})"
    return ""


def _run_concurrency(db: Db, envelope: Envelope, event: Any) -> None:
    if event.job_id is not None and event.call:
        _call_concurrency(db, envelope, event)
        return
    if isinstance(event, ConcurrencyAcquired):
        return
    if event.job_id is not None:
        status = "waiting" if isinstance(event, ConcurrencyWaited) else None
        _job_note(status)(db, envelope, event)
        return
    if isinstance(event, ConcurrencyWaited):
        db.execute("UPDATE runs SET status = 'waiting' WHERE run_id = ? AND status != 'completed'", (event.run_id,))


def _call_concurrency(db: Db, envelope: Envelope, event: Any) -> None:
    """A call's place in its group, shown on its jobs (`<calling job's leg>/…`): they wait while it waits and
    are no longer waiting for it once it holds the group."""
    prefix = f"{event.job_id}/"
    cursor: Any = db.execute("SELECT job_id, status FROM jobs WHERE run_id = ?", (event.run_id,))
    for job_id, status in cursor.fetchall():
        if not str(job_id).startswith(prefix) or status == "completed":
            continue
        if isinstance(event, ConcurrencyAcquired):
            if status == "waiting":
                db.execute(
                    "UPDATE jobs SET status = 'pending', reason = NULL, queued_at = NULL"
                    " WHERE run_id = ? AND job_id = ?",
                    (event.run_id, job_id),
                )
        elif status == "pending" or not isinstance(event, ConcurrencyWaited):
            status_now = "waiting" if isinstance(event, ConcurrencyWaited) else None
            _job_note(status_now)(db, envelope, event.model_copy(update={"job_id": job_id}))


def _run_rerun_requested(db: Db, envelope: Envelope, event: RunRerunRequested) -> None:
    db.execute(
        "UPDATE runs SET status = 'in_progress', conclusion = NULL WHERE run_id = ?",
        (event.run_id,),
    )


APPLY: dict[str, Apply] = {
    RunRequested.event_type(): _run_requested,
    RunPlanned.event_type(): _run_planned,
    RunNumbered.event_type(): _run_numbered,
    RunRejected.event_type(): _run_rejected,
    RunCompleted.event_type(): _run_completed,
    RunCancelRequested.event_type(): _run_cancel_requested,
    ArtifactUploaded.event_type(): _artifact_uploaded,
    ArtifactDeleted.event_type(): _artifact_deleted,
    JobPlanned.event_type(): _job_planned,
    MatrixExpanded.event_type(): _matrix_expanded,
    JobQueued.event_type(): _job_queued,
    JobSkipped.event_type(): _job_skipped,
    JobAssigned.event_type(): _job_assigned,
    JobStarted.event_type(): _job_started,
    JobCompleted.event_type(): _job_completed,
    StepStarted.event_type(): _step_started,
    StepCompleted.event_type(): _step_completed,
    StepLogged.event_type(): _step_logged,
    RepositoryRegistered.event_type(): _repository_registered,
    JobCancelRequested.event_type(): _job_note("cancelling"),
    JobTimedOut.event_type(): _job_note(None, ending=True),
    JobLost.event_type(): _job_note(None, ending=True),
    ApprovalRequested.event_type(): _job_note("waiting"),
    ApprovalGranted.event_type(): _job_note("pending"),
    ApprovalRejected.event_type(): _job_note(None, ending=True),
    WaitTimerStarted.event_type(): _job_note("waiting"),
    ConcurrencyWaited.event_type(): _run_concurrency,
    ConcurrencyAcquired.event_type(): _run_concurrency,
    ConcurrencyCancelled.event_type(): _run_concurrency,
    RunRerunRequested.event_type(): _run_rerun_requested,
    LeaseRenewed.event_type(): runners.lease_renewed,
    RunnerRegistered.event_type(): runners.runner_registered,
    RunnerSeen.event_type(): runners.runner_seen,
}


def apply_batch(db: Db, envelopes: Iterable[Envelope]) -> int:
    """Apply what follows the stored position and store the new one, in the caller's transaction; returns the
    last position applied (0: none)."""
    done = stored_position(db)
    last = 0
    # Each run's last event applied, whose time and position the run takes. A run here is known to be stored
    # (found, or made by its RunRequested): no apply function deletes one.
    touched: dict[str, Envelope] = {}
    for envelope in envelopes:
        if envelope.position <= done:
            continue  # applied before: a batch delivered again changes nothing
        apply = APPLY.get(envelope.type)
        run_id = getattr(envelope.event, "run_id", None)
        if apply is not None and (run_id is None or run_id in touched or _run_known(db, envelope, run_id)):
            apply(db, envelope, envelope.event)
            if run_id is not None:
                touched[run_id] = envelope
        last = envelope.position
    if touched:
        # Once a batch, not once an event: no apply function reads `updated_at` or `last_position`.
        db.executemany(
            "UPDATE runs SET updated_at = ?, last_position = ? WHERE run_id = ?",
            [(_at(envelope), envelope.position, run_id) for run_id, envelope in touched.items()],
        )
    if last:
        db.execute(
            "INSERT INTO projector_position (name, position) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            (PROJECTOR, last),
        )
    return last


def stored_position(db: Db) -> int:
    row = db.execute("SELECT position FROM projector_position WHERE name = ?", (PROJECTOR,)).fetchone()
    return int(row[0]) if row else 0


def clear(db: Db) -> None:
    """Delete every row and the position."""
    for table in (*TABLES, "projector_position"):
        db.execute(f"DELETE FROM {table}")


def dump_rows(db: Db) -> dict[str, list[tuple[Any, ...]]]:
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for table in TABLES:
        cursor: Any = db.execute(f"SELECT * FROM {table}")
        rows[table] = sorted(tuple(row) for row in cursor.fetchall())
    return rows


def _run_known(db: Db, envelope: Envelope, run_id: str) -> bool:
    if envelope.type == RunRequested.event_type():
        return True
    return db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None


async def project(log: EventLog, store: ProjectionStore, *, batch: int = 1000) -> None:
    """Keep `store` up to date with the log, forever."""
    position = await store.position()
    async for envelopes in log.subscribe_batches(position, limit=batch):
        await store.apply(envelopes)


async def rebuild(log: EventLog, store: ProjectionStore, *, batch: int = 1000) -> int:
    """Empty the read models and replay the whole log into them; returns the last position applied."""
    await store.reset()
    position = 0
    while envelopes := await log.read(position, batch):
        await store.apply(envelopes)
        position = envelopes[-1].position
    return position
