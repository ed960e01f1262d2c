"""The read models: a run's events projected into runs, jobs, steps and log lines, rebuilt and re-applied."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conveyor_events import (
    ApprovalRejected,
    ApprovalRequested,
    ArtifactDeleted,
    ArtifactUploaded,
    ConcurrencyAcquired,
    ConcurrencyCancelled,
    ConcurrencyWaited,
    Envelope,
    Event,
    JobAssigned,
    JobCancelRequested,
    JobCompleted,
    JobLost,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    JobTimedOut,
    LogLine,
    Problem,
    RepositoryRegistered,
    RunCancelRequested,
    RunCompleted,
    RunPlanned,
    RunRejected,
    RunRequested,
    StepCompleted,
    StepLogged,
    StepStarted,
)
from conveyor_runtime import PostgresProjections, ProjectionStore, SqliteEventLog, SqliteProjections, project, rebuild

WaitFor = Callable[[Callable[[], Awaitable[bool]]], Awaitable[None]]

RUN = "run-7"
BUILD = "job-build"
TEST = "job-test"
WORKFLOW = ".github/workflows/ci.yml"
T0 = datetime(2024, 5, 17, 9, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def text(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def run_events(run_id: str = RUN) -> list[Event]:
    """A small run: `build` runs two steps and succeeds, `test` (which needs it) is skipped."""
    return [
        RunRequested(run_id=run_id, repository="acme/app", ref="refs/heads/main", sha="9" * 40, actor="alice"),
        JobPlanned(run_id=run_id, job_id=BUILD, workflow=WORKFLOW, job_key="build", name="Build"),
        JobPlanned(run_id=run_id, job_id=TEST, workflow=WORKFLOW, job_key="test", name="Test", needs=["build"]),
        RunPlanned(run_id=run_id, workflow=WORKFLOW, workflow_name="CI", index=0, count=1, jobs=["build", "test"]),
        JobQueued(run_id=run_id, job_id=BUILD, labels=["ubuntu-latest"]),
        JobAssigned(run_id=run_id, job_id=BUILD, runner_id="runner-1", lease_id="lease-1"),
        JobStarted(run_id=run_id, job_id=BUILD, runner_id="runner-1"),
        StepStarted(run_id=run_id, job_id=BUILD, step_index=0, step_id="checkout", name="Checkout"),
        StepLogged(
            run_id=run_id,
            job_id=BUILD,
            step_index=0,
            first_line=1,
            lines=[LogLine(at=at(100), text="cloning"), LogLine(at=at(101), text="done")],
        ),
        StepCompleted(
            run_id=run_id, job_id=BUILD, step_index=0, outcome="success", conclusion="success", step_id="checkout"
        ),
        StepStarted(run_id=run_id, job_id=BUILD, step_index=1, name="Lint"),
        StepLogged(run_id=run_id, job_id=BUILD, step_index=1, first_line=3, lines=[LogLine(at=at(102), text="warn")]),
        StepCompleted(
            run_id=run_id, job_id=BUILD, step_index=1, outcome="failure", conclusion="success", outputs={"n": "1"}
        ),
        JobCompleted(run_id=run_id, job_id=BUILD, conclusion="success", outputs={"artifact": "app.whl"}),
        JobSkipped(run_id=run_id, job_id=TEST, reason="needs a job that did not succeed"),
        RunCompleted(run_id=run_id, conclusion="success"),
    ]


def envelopes_of(events: list[Event], *, start: int = 0) -> list[Envelope]:
    """Each event in an envelope of its run's stream, one second after the one before."""
    return [
        Envelope.wrap(
            event,
            stream=getattr(event, "run_id", "repositories"),
            event_id=f"event-{start + number}",
            occurred_at=at(start + number),
        )
        for number, event in enumerate(events)
    ]


async def append_each(log: SqliteEventLog, envelopes: list[Envelope]) -> list[Envelope]:
    return [(await log.append([envelope]))[0] for envelope in envelopes]


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str:
    """Where the store lives: SQLite's file, or an empty PostgreSQL database of the test's own."""
    return "sqlite" if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(database: str, tmp_path: Path) -> AsyncIterator[ProjectionStore]:
    """Each test runs against both stores; the rows either one writes are compared with SQLite's where two meet."""
    opened: ProjectionStore
    if database == "sqlite":
        opened = SqliteProjections(tmp_path / "projections.db")
    else:
        opened = await PostgresProjections(database).open()
    try:
        yield opened
    finally:
        await opened.close()


async def rows(store: ProjectionStore, query: str, *parameters: object) -> list[dict[str, Any]]:
    return await store.read(lambda found: [dict(row) for row in found(query, *parameters)])


@contextlib.asynccontextmanager
async def projecting(log: SqliteEventLog, store: ProjectionStore) -> AsyncIterator[None]:
    task = asyncio.create_task(project(log, store, batch=5))
    try:
        yield
    finally:
        task.cancel()
        [outcome] = await asyncio.gather(task, return_exceptions=True)
    if isinstance(outcome, Exception):
        raise outcome


async def caught_up(log: SqliteEventLog, store: ProjectionStore, wait_for: WaitFor) -> None:
    head = await log.head()

    async def there() -> bool:
        return await store.position() >= head

    await wait_for(there)


async def test_a_new_store_is_empty_at_position_0(store: ProjectionStore) -> None:
    assert await store.position() == 0
    assert await store.dump() == {
        "runs": [], "jobs": [], "steps": [], "log_lines": [], "repositories": [], "runners": [], "leases": []
    }


async def test_project_writes_a_run_its_jobs_steps_and_log_lines(
    log: SqliteEventLog, store: ProjectionStore, wait_for: WaitFor
) -> None:
    stored = await append_each(log, envelopes_of(run_events()))

    async with projecting(log, store):
        await caught_up(log, store, wait_for)

    assert await store.position() == stored[-1].position == 16
    [run] = await rows(store, "SELECT * FROM runs")
    assert run == {
        "run_id": RUN,
        "repository": "acme/app",
        "ref": "refs/heads/main",
        "sha": "9" * 40,
        "event_name": "push",
        "actor": "alice",
        "status": "completed",
        "conclusion": "success",
        "workflows": json.dumps([{"path": WORKFLOW, "name": "CI"}]),
        "problems": "[]",
        "created_at": text(at(0)),
        "updated_at": text(at(15)),
        "last_position": 16,
        "artifacts": "[]",
    }
    build, test = await rows(store, "SELECT * FROM jobs ORDER BY ordinal")
    assert build == {
        "run_id": RUN,
        "job_id": BUILD,
        "workflow": WORKFLOW,
        "job_key": "build",
        "name": "Build",
        "needs": "[]",
        "status": "completed",
        "conclusion": "success",
        "attempt": 1,
        "runner_id": "runner-1",
        "outputs": json.dumps({"artifact": "app.whl"}),
        "error": None,
        "reason": None,
        "queued_at": text(at(4)),
        "started_at": text(at(6)),
        "completed_at": text(at(13)),
        "ordinal": 0,
        "labels": '["ubuntu-latest"]',
    }
    assert (test["job_key"], test["needs"], test["ordinal"]) == ("test", '["build"]', 1)
    assert (test["status"], test["conclusion"], test["reason"]) == (
        "completed",
        "skipped",
        "needs a job that did not succeed",
    )
    assert (test["queued_at"], test["started_at"], test["completed_at"]) == (None, None, text(at(14)))
    steps = await rows(store, "SELECT * FROM steps ORDER BY step_index")
    assert [
        (step["step_index"], step["step_id"], step["name"], step["status"], step["outcome"], step["conclusion"])
        for step in steps
    ] == [
        (0, "checkout", "Checkout", "completed", "success", "success"),
        (1, None, "Lint", "completed", "failure", "success"),
    ]
    assert [(step["started_at"], step["completed_at"], step["outputs"]) for step in steps] == [
        (text(at(7)), text(at(9)), "{}"),
        (text(at(10)), text(at(12)), '{"n": "1"}'),
    ]
    lines = await rows(store, "SELECT line, step_index, at, text FROM log_lines WHERE run_id = ? ORDER BY line", RUN)
    assert lines == [
        {"line": 1, "step_index": 0, "at": text(at(100)), "text": "cloning"},
        {"line": 2, "step_index": 0, "at": text(at(101)), "text": "done"},
        {"line": 3, "step_index": 1, "at": text(at(102)), "text": "warn"},
    ]


async def test_project_resumes_from_its_stored_position(
    log: SqliteEventLog, store: ProjectionStore, wait_for: WaitFor, tmp_path: Path
) -> None:
    envelopes = envelopes_of(run_events())
    await append_each(log, envelopes[:6])
    async with projecting(log, store):
        await caught_up(log, store, wait_for)
    assert await store.position() == 6
    assert await rows(store, "SELECT status FROM runs") == [{"status": "in_progress"}]

    await append_each(log, envelopes[6:])
    async with projecting(log, store):
        await caught_up(log, store, wait_for)

    fresh = SqliteProjections(tmp_path / "fresh.db")
    await rebuild(log, fresh)
    assert await store.dump() == await fresh.dump()
    assert await rows(store, "SELECT status FROM runs") == [{"status": "completed"}]


async def test_project_keeps_up_with_events_appended_while_it_runs(
    log: SqliteEventLog, store: ProjectionStore, wait_for: WaitFor
) -> None:
    envelopes = envelopes_of(run_events())

    async with projecting(log, store):
        for envelope in envelopes:
            await log.append([envelope])
        await caught_up(log, store, wait_for)

    found = await rows(store, "SELECT status, conclusion FROM runs")
    assert found == [{"status": "completed", "conclusion": "success"}]
    assert len(await rows(store, "SELECT * FROM log_lines")) == 3


async def test_rebuild_into_a_fresh_store_gives_the_same_rows(
    log: SqliteEventLog, store: ProjectionStore, wait_for: WaitFor, tmp_path: Path
) -> None:
    await append_each(log, envelopes_of(run_events("run-1")))
    await append_each(log, envelopes_of(run_events("run-2"), start=100))
    await log.append(envelopes_of([RepositoryRegistered(name="app", url="/src/app")], start=200))
    async with projecting(log, store):
        await caught_up(log, store, wait_for)

    fresh = SqliteProjections(tmp_path / "fresh.db")
    last = await rebuild(log, fresh, batch=7)

    assert last == await log.head() == 33
    assert await fresh.position() == 33
    assert await fresh.dump() == await store.dump()
    assert len((await fresh.dump())["runs"]) == 2


async def test_rebuild_forgets_rows_that_are_not_in_the_log(
    log: SqliteEventLog, store: ProjectionStore, tmp_path: Path
) -> None:
    other = SqliteProjections(tmp_path / "other.db")
    await other.apply(envelopes_of(run_events("run-elsewhere")))
    await append_each(log, envelopes_of(run_events()))

    await rebuild(log, other)
    await rebuild(log, store)

    assert await other.dump() == await store.dump()
    assert [row[0] for row in (await other.dump())["runs"]] == [RUN]


async def test_applying_the_same_batch_twice_changes_nothing(store: ProjectionStore) -> None:
    batch = [envelope.placed(number, number) for number, envelope in enumerate(envelopes_of(run_events()), 1)]
    await store.apply(batch)
    once = await store.dump()

    await store.apply(batch)

    assert await store.dump() == once
    assert await store.position() == 16


async def test_a_redelivered_older_event_changes_nothing(store: ProjectionStore) -> None:
    batch = [envelope.placed(number, number) for number, envelope in enumerate(envelopes_of(run_events()), 1)]
    await store.apply(batch)
    once = await store.dump()

    await store.apply([batch[4]])  # JobQueued of `build`, long after the job completed

    assert await store.dump() == once
    assert await store.position() == 16


async def test_events_of_an_unknown_run_are_passed_over(store: ProjectionStore) -> None:
    stray = JobQueued(run_id="run-never-requested", job_id=BUILD)
    placed = [envelope.placed(1, number) for number, envelope in enumerate(envelopes_of([stray]), 41)]

    assert await store.apply(placed) == 41

    assert await store.position() == 41
    assert (await store.dump())["jobs"] == []
    assert (await store.dump())["runs"] == []


async def test_a_batch_gives_the_rows_its_events_give_one_at_a_time(store: ProjectionStore) -> None:
    """Two runs' events interleaved, with one of the second run's before its RunRequested: each run shows the time
    and position of its last event applied, and a batch of all leaves the same rows as a batch per event."""
    first, second = run_events("run-a"), run_events("run-b")
    early = JobQueued(run_id="run-b", job_id=BUILD)
    events = [*first[:5], early, *[event for pair in zip(first[5:], second, strict=False) for event in pair]]
    events += second[len(first) - 5 :]
    batch = [envelope.placed(0, number) for number, envelope in enumerate(envelopes_of(events), 1)]

    await store.apply(batch)
    whole = await store.dump()
    await store.reset()
    for envelope in batch:
        await store.apply([envelope])

    assert await store.dump() == whole
    applied = [envelope for envelope in batch if envelope.event is not early]
    last = {run_id: max(e.position for e in applied if e.stream == run_id) for run_id in ("run-a", "run-b")}
    assert await rows(store, "SELECT run_id, updated_at, last_position FROM runs ORDER BY run_id") == [
        {"run_id": run_id, "updated_at": text(at(position - 1)), "last_position": position}
        for run_id, position in last.items()
    ]


async def test_a_rejected_workflow_is_listed_with_its_problems(store: ProjectionStore) -> None:
    problem = Problem(path="bad.yml", line=2, column=3, message="'jobs' is required")
    events: list[Event] = [
        RunRequested(run_id=RUN, repository="acme/app", ref="refs/heads/main", sha="0" * 40),
        RunRejected(run_id=RUN, workflow="bad.yml", reason="invalid", problems=[problem]),
        RunRejected(run_id=RUN, reason="nothing to run"),
        RunCompleted(run_id=RUN, conclusion="failure"),
    ]
    await store.apply([envelope.placed(n, n) for n, envelope in enumerate(envelopes_of(events), 1)])

    [run] = await rows(store, "SELECT status, conclusion, problems FROM runs")

    assert (run["status"], run["conclusion"]) == ("completed", "failure")
    assert json.loads(run["problems"]) == [
        {"workflow": "bad.yml", "reason": "invalid", "problems": [problem.model_dump()]},
        {"workflow": None, "reason": "nothing to run", "problems": []},
    ]


async def test_a_runs_artifacts_are_listed_each_name_once_and_deleted_ones_go(store: ProjectionStore) -> None:
    events: list[Event] = [
        RunRequested(run_id=RUN, repository="acme/app", ref="refs/heads/main", sha="0" * 40),
        ArtifactUploaded(run_id=RUN, job_id=BUILD, artifact_id=1, name="app", size=10, digest="sha256:aa"),
        ArtifactUploaded(run_id=RUN, job_id=BUILD, artifact_id=2, name="logs", size=3),
        ArtifactUploaded(run_id=RUN, job_id=BUILD, attempt=2, artifact_id=3, name="app", size=12, digest="sha256:bb"),
        ArtifactDeleted(run_id=RUN, job_id="test", artifact_id=2, name="logs"),
    ]
    await store.apply([envelope.placed(n, n) for n, envelope in enumerate(envelopes_of(events), 1)])

    [run] = await rows(store, "SELECT artifacts FROM runs")

    [app] = json.loads(run["artifacts"])
    assert {key: app[key] for key in ("id", "name", "size", "digest", "job_id", "attempt")} == {
        "id": 3, "name": "app", "size": 12, "digest": "sha256:bb", "job_id": BUILD, "attempt": 2
    }


async def test_a_cancel_request_marks_a_running_run_but_not_a_completed_one(store: ProjectionStore) -> None:
    requested = RunRequested(run_id=RUN, repository="acme/app", ref="refs/heads/main", sha="0" * 40)
    other = requested.model_copy(update={"run_id": "run-done"})
    events: list[Event] = [
        requested,
        other,
        RunCompleted(run_id="run-done", conclusion="success"),
        RunCancelRequested(run_id=RUN, reason="stop"),
        RunCancelRequested(run_id="run-done", reason="too late"),
    ]
    await store.apply([envelope.placed(1, n) for n, envelope in enumerate(envelopes_of(events), 1)])

    statuses = {row["run_id"]: row["status"] for row in await rows(store, "SELECT run_id, status FROM runs")}

    assert statuses == {RUN: "cancelling", "run-done": "completed"}


async def test_a_step_completed_without_having_started_gets_a_row(store: ProjectionStore) -> None:
    events: list[Event] = [
        RunRequested(run_id=RUN, repository="acme/app", ref="refs/heads/main", sha="0" * 40),
        StepCompleted(run_id=RUN, job_id=BUILD, step_index=2, outcome="skipped", conclusion="skipped"),
    ]
    await store.apply([envelope.placed(n, n) for n, envelope in enumerate(envelopes_of(events), 1)])

    [step] = await rows(store, "SELECT name, status, started_at, conclusion FROM steps")

    assert step == {"name": "step 3", "status": "completed", "started_at": None, "conclusion": "skipped"}


async def test_a_repository_registered_again_is_updated(store: ProjectionStore) -> None:
    events: list[Event] = [
        RepositoryRegistered(name="app", url="/old"),
        RepositoryRegistered(name="lib", url="/lib"),
        RepositoryRegistered(name="app", url="/new", default_branch="trunk"),
    ]
    await store.apply([envelope.placed(n, n) for n, envelope in enumerate(envelopes_of(events), 1)])

    assert await rows(store, "SELECT name, url, default_branch FROM repositories ORDER BY name") == [
        {"name": "app", "url": "/new", "default_branch": "trunk"},
        {"name": "lib", "url": "/lib", "default_branch": "main"},
    ]


async def test_reset_forgets_rows_and_position(store: ProjectionStore) -> None:
    await store.apply([envelope.placed(n, n) for n, envelope in enumerate(envelopes_of(run_events()), 1)])

    await store.reset()

    assert await store.position() == 0
    assert all(table == [] for table in (await store.dump()).values())


async def test_an_empty_batch_leaves_the_position_alone(store: ProjectionStore) -> None:
    await store.apply([envelope.placed(n, n) for n, envelope in enumerate(envelopes_of(run_events()[:1]), 1)])

    assert await store.apply([]) == 0

    assert await store.position() == 1


def scheduled(*events: Event) -> list[Envelope]:
    """A run with one planned job, then `events`, placed in order."""
    start: list[Event] = [
        RunRequested(run_id=RUN, repository="acme/app", ref="refs/heads/main", sha="0" * 40),
        JobPlanned(run_id=RUN, job_id=BUILD, workflow=WORKFLOW, job_key="build", name="Build"),
        RunPlanned(run_id=RUN, workflow=WORKFLOW, workflow_name="CI", index=1, count=1, jobs=[BUILD]),
    ]
    return [envelope.placed(n, n) for n, envelope in enumerate(envelopes_of([*start, *events]), 1)]


async def job_row(store: ProjectionStore) -> dict[str, Any]:
    [job] = await rows(store, "SELECT status, conclusion, attempt, error, reason FROM jobs")
    return job


async def test_an_approval_gate_shows_who_it_waits_for_and_who_decided(store: ProjectionStore) -> None:
    await store.apply(
        scheduled(ApprovalRequested(run_id=RUN, job_id=BUILD, environment="production", reviewers=["alice"]))
    )
    assert (await job_row(store))["status"] == "waiting"
    assert (await job_row(store))["reason"] == "waiting for alice to approve the environment production"

    await store.apply(
        scheduled(
            ApprovalRequested(run_id=RUN, job_id=BUILD, environment="production", reviewers=["alice"]),
            ApprovalRejected(run_id=RUN, job_id=BUILD, environment="production", approver="alice", comment="no"),
        )[-1:]
    )
    job = await job_row(store)
    assert (job["status"], job["conclusion"], job["error"]) == ("completed", "failure", "rejected by alice: no")


async def test_a_timeout_ends_the_attempt_first_and_a_later_report_does_not_change_it(
    store: ProjectionStore,
) -> None:
    await store.apply(
        scheduled(
            JobQueued(run_id=RUN, job_id=BUILD),
            JobStarted(run_id=RUN, job_id=BUILD, runner_id="r"),
            JobTimedOut(run_id=RUN, job_id=BUILD, deadline=at(600), limit_minutes=10),
            JobCompleted(run_id=RUN, job_id=BUILD, conclusion="cancelled"),
        )
    )
    job = await job_row(store)
    assert (job["status"], job["conclusion"]) == ("completed", "failure")
    assert job["error"] == "timed out while running (limit 10 minutes)"


async def test_a_retry_opens_the_job_again_as_a_new_attempt(store: ProjectionStore) -> None:
    await store.apply(
        scheduled(
            JobQueued(run_id=RUN, job_id=BUILD),
            JobStarted(run_id=RUN, job_id=BUILD, runner_id="r"),
            JobLost(run_id=RUN, job_id=BUILD, runner_id="r", lease_id="l", reason="the lease expired"),
            JobQueued(run_id=RUN, job_id=BUILD, attempt=2),
        )
    )
    job = await job_row(store)
    assert (job["status"], job["conclusion"], job["attempt"], job["error"]) == ("queued", None, 2, None)


async def test_a_calls_place_in_its_group_shows_on_its_jobs(store: ProjectionStore) -> None:
    called = [f"{BUILD}/{key}" for key in ("migrate", "release")]
    planned = [JobPlanned(run_id=RUN, job_id=job_id, workflow=WORKFLOW, job_key=job_id, name=job_id)
               for job_id in called]
    start: list[Event] = [
        RunRequested(run_id=RUN, repository="acme/app", ref="refs/heads/main", sha="0" * 40),
        *planned,
        RunPlanned(run_id=RUN, workflow=WORKFLOW, workflow_name="CI", index=1, count=1, jobs=called),
    ]
    place = {"run_id": RUN, "workflow": WORKFLOW, "job_id": BUILD, "group": "deploy", "call": "caller"}
    envelopes = envelopes_of([
        *start,
        ConcurrencyWaited(**place, since=at(1)),
        ConcurrencyAcquired(**place),
        JobQueued(run_id=RUN, job_id=called[0]),
        ConcurrencyCancelled(**place, reason="cancel-in-progress"),
    ])
    placed = [envelope.placed(n, n) for n, envelope in enumerate(envelopes, 1)]
    query = "SELECT job_id, status, reason FROM jobs ORDER BY job_id"

    await store.apply(placed[:-3])
    waiting = "waiting for the concurrency group deploy"
    assert await rows(store, query) == [
        {"job_id": called[0], "status": "waiting", "reason": waiting},
        {"job_id": called[1], "status": "waiting", "reason": waiting},
    ]
    await store.apply(placed[-3:-1])
    assert await rows(store, query) == [
        {"job_id": called[0], "status": "queued", "reason": None},
        {"job_id": called[1], "status": "pending", "reason": None},
    ]
    await store.apply(placed[-1:])
    gave_way = "cancelled in the concurrency group deploy (cancel-in-progress)"
    assert await rows(store, query) == [
        {"job_id": called[0], "status": "queued", "reason": gave_way},
        {"job_id": called[1], "status": "pending", "reason": gave_way},
    ]


async def test_each_attempt_keeps_its_own_log_lines(store: ProjectionStore) -> None:
    def logged(attempt: int, *texts: str) -> StepLogged:
        lines = [LogLine(at=at(attempt), text=text) for text in texts]
        return StepLogged(run_id=RUN, job_id=BUILD, attempt=attempt, step_index=0, first_line=1, lines=lines)

    await store.apply(scheduled(logged(1, "first try", "failed"), logged(2, "second try")))

    found = await rows(store, "SELECT attempt, line, text FROM log_lines ORDER BY attempt, line")
    assert found == [
        {"attempt": 1, "line": 1, "text": "first try"},
        {"attempt": 1, "line": 2, "text": "failed"},
        {"attempt": 2, "line": 1, "text": "second try"},
    ]


def test_log_lines_stored_before_attempts_were_kept_become_the_first_attempts(tmp_path: Path) -> None:
    path = tmp_path / "projections.db"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE log_lines (run_id TEXT NOT NULL, job_id TEXT NOT NULL, line INTEGER NOT NULL,"
            " step_index INTEGER NOT NULL, at TEXT NOT NULL, text TEXT NOT NULL, PRIMARY KEY (run_id, job_id, line))"
        )
        db.execute("INSERT INTO log_lines VALUES ('r', 'j', 1, 0, 'now', 'kept')")

    SqliteProjections(path)
    SqliteProjections(path)  # opened again: nothing more to do

    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT run_id, job_id, line, attempt, text FROM log_lines").fetchall() == [
            ("r", "j", 1, 1, "kept")
        ]
        db.execute("INSERT INTO log_lines VALUES ('r', 'j', 1, 0, 'now', 'retried', 2)")  # the same line, attempt 2


async def test_cancel_requests_and_concurrency_waits_are_visible(store: ProjectionStore) -> None:
    await store.apply(
        scheduled(
            ConcurrencyWaited(run_id=RUN, workflow=WORKFLOW, group="deploy", since=at(5)),
            JobQueued(run_id=RUN, job_id=BUILD),
            JobCancelRequested(run_id=RUN, job_id=BUILD, reason="fail-fast"),
        )
    )
    [run] = await rows(store, "SELECT status FROM runs")
    assert run["status"] == "waiting"
    job = await job_row(store)
    assert (job["status"], job["reason"]) == ("cancelling", "cancel requested: fail-fast")
