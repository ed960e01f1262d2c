"""PostgreSQL's store applies a batch through a scratch SQLite database: the rows its events name are loaded, the
projector's functions run on them, the changes are written back. These cases are where that could part from
applying each statement in place; each compares PostgreSQL's rows with those of SQLite's store."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conveyor_events import (
    Envelope,
    Event,
    JobAssigned,
    JobCompleted,
    JobLost,
    JobPlanned,
    JobQueued,
    JobStarted,
    LeaseRenewed,
    LogLine,
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
    StepCompleted,
    StepLogged,
    StepStarted,
)
from conveyor_runtime import (
    PROJECTOR,
    PostgresProjections,
    ProjectionStore,
    SqliteEventLog,
    SqliteProjections,
    _postgres_batch,
    rebuild,
)
from conveyor_runtime._projection_batch import Loaded, apply_in_scratch

RUN = "run-7"
T0 = datetime(2024, 5, 17, 9, 0, tzinfo=UTC)


def text(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def placed(*events: Event) -> list[Envelope]:
    """The events as the log stores them, from position 1 on, each at as many seconds past T0."""
    return [
        Envelope.wrap(
            event, stream=getattr(event, "run_id", "runners"), occurred_at=T0 + timedelta(seconds=number)
        ).placed(number, number)
        for number, event in enumerate(events, 1)
    ]


def requested(run_id: str = RUN) -> RunRequested:
    return RunRequested(run_id=run_id, repository="acme/app", ref="refs/heads/main", sha="0" * 40)


def planned(job_id: str, run_id: str = RUN) -> JobPlanned:
    return JobPlanned(run_id=run_id, job_id=job_id, workflow="ci.yml", job_key=job_id, name=job_id)


def run_events(number: int) -> list[Event]:
    """A run's events, with what varies between runs: a matrix expanded, a job lost and retried, a cancel."""
    run_id = f"run-{number}"
    runner = f"runner-{number % 3}"
    jobs = ["build", "test"]
    events: list[Event] = [requested(run_id), *(planned(job, run_id) for job in jobs)]
    if number % 3 == 0:
        jobs = ["build", "test-a", "test-b"]
        events += [
            MatrixExpanded(run_id=run_id, job_id="test", legs=jobs[1:]),
            *(planned(job, run_id) for job in jobs[1:]),
        ]
    events.append(RunPlanned(run_id=run_id, workflow="ci.yml", workflow_name="CI", index=0, count=1, jobs=jobs))
    for job in jobs:
        lease = f"{run_id}-{job}"
        events += [
            JobQueued(run_id=run_id, job_id=job, labels=["linux"]),
            JobAssigned(run_id=run_id, job_id=job, runner_id=runner, lease_id=lease),
            JobStarted(run_id=run_id, job_id=job, runner_id=runner),
        ]
        if number % 4 == 1 and job == "build":
            lost = JobLost(run_id=run_id, job_id=job, runner_id=runner, lease_id=lease, reason="gone")
            events += [lost, JobQueued(run_id=run_id, job_id=job, attempt=2)]
        for step in range(2):
            lines = [LogLine(at=T0, text=f"{run_id} {job} {step} {line}") for line in range(2)]
            events += [
                StepStarted(run_id=run_id, job_id=job, step_index=step, name=f"step {step}"),
                StepLogged(run_id=run_id, job_id=job, step_index=step, first_line=step * 2 + 1, lines=lines),
                LeaseRenewed(run_id=run_id, job_id=job, lease_id=lease),
                StepCompleted(run_id=run_id, job_id=job, step_index=step, outcome="success", conclusion="success"),
            ]
        events.append(JobCompleted(run_id=run_id, job_id=job, conclusion="success", outputs={"n": str(number)}))
    if number % 5 == 2:
        events.append(RunCancelRequested(run_id=run_id, reason="stop"))
    return [*events, RunCompleted(run_id=run_id, conclusion="success")]


def a_long_log(runs: int) -> list[Envelope]:
    """The events of `runs` runs, four at a time interleaved, with runners and repositories registered between."""
    events: list[Event] = [RunnerRegistered(runner_id=f"runner-{number}", name=f"r{number}") for number in range(3)]
    for first in range(0, runs, 4):
        together = [run_events(number) for number in range(first, min(first + 4, runs))]
        events += [event for group in itertools.zip_longest(*together) for event in group if event is not None]
        events += [
            RunnerSeen(runner_id=f"runner-{first % 3}"),
            RunnerRegistered(runner_id=f"runner-{first % 3}", name=f"again {first}", labels=["linux"]),
            RepositoryRegistered(name=f"acme/app-{first % 2}", url=f"/src/{first}"),
        ]
    return placed(*events)


@pytest.fixture(params=["copied", "inserted"])
async def postgres(
    postgres_url: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[PostgresProjections]:
    """The store, with rows added written back either way: copied in (even one), or inserted (even many)."""
    monkeypatch.setattr(_postgres_batch, "COPIED", 1 if request.param == "copied" else 1_000_000)
    store = await PostgresProjections(postgres_url).open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def sqlite(tmp_path: Path) -> SqliteProjections:
    return SqliteProjections(tmp_path / "projections.db")


async def apply_each(batches: Sequence[Sequence[Envelope]], *stores: ProjectionStore) -> None:
    for batch in batches:
        for store in stores:
            await store.apply(batch)


async def rows(store: ProjectionStore, query: str) -> list[dict[str, Any]]:
    return await store.read(lambda found: [dict(row) for row in found(query)])


async def test_a_batch_of_many_runs_at_every_stage_gives_sqlites_rows(
    postgres: PostgresProjections, sqlite: SqliteProjections
) -> None:
    runs = [run_events(number) for number in range(12)]
    batch = placed(*(event for group in itertools.zip_longest(*runs) for event in group if event is not None))

    await apply_each([batch[:200], batch[200:]], postgres, sqlite)

    assert await postgres.dump() == await sqlite.dump()
    assert len((await postgres.dump())["runs"]) == 12
    assert await postgres.position() == len(batch)


async def test_a_run_requested_in_an_earlier_batch_is_loaded_not_made_again(
    postgres: PostgresProjections, sqlite: SqliteProjections
) -> None:
    envelopes = placed(
        requested(),
        planned("build"),
        RunPlanned(run_id=RUN, workflow="ci.yml", workflow_name="CI", index=0, count=2, jobs=["build"]),
        planned("test"),
        RunPlanned(run_id=RUN, workflow="test.yml", workflow_name="Test", index=1, count=2, jobs=["test"]),
        RunNumbered(run_id=RUN, workflow="test.yml", repository="acme/app", number=7),
        RunRejected(run_id=RUN, workflow="bad.yml", reason="invalid"),
    )

    await apply_each([envelopes[:1], envelopes[1:3], envelopes[3:]], postgres, sqlite)

    [run] = await rows(postgres, "SELECT created_at, updated_at, status, workflows, problems FROM runs")
    assert (run["created_at"], run["updated_at"], run["status"]) == (text(1), text(7), "in_progress")
    assert [(w["name"], w.get("number")) for w in json.loads(run["workflows"])] == [("CI", None), ("Test", 7)]
    assert await rows(postgres, "SELECT job_id, ordinal FROM jobs ORDER BY ordinal") == [
        {"job_id": "build", "ordinal": 0},
        {"job_id": "test", "ordinal": 1},
    ]
    assert await postgres.dump() == await sqlite.dump()


async def test_a_matrix_expanded_in_a_later_batch_deletes_the_job_as_planned(
    postgres: PostgresProjections, sqlite: SqliteProjections
) -> None:
    envelopes = placed(
        requested(),
        planned("build"),
        planned("test"),
        MatrixExpanded(run_id=RUN, job_id="build", legs=["build-a", "build-b"]),
        planned("build-a"),
        planned("build-b"),
        JobQueued(run_id=RUN, job_id="build-a"),
    )

    await apply_each([envelopes[:3], envelopes[3:]], postgres, sqlite)

    assert await rows(postgres, "SELECT job_id, status FROM jobs ORDER BY job_id") == [
        {"job_id": "build-a", "status": "queued"},
        {"job_id": "build-b", "status": "pending"},
        {"job_id": "test", "status": "pending"},
    ]
    assert await postgres.dump() == await sqlite.dump()


async def test_a_lease_renewed_in_a_later_batch_marks_its_runner_seen(
    postgres: PostgresProjections, sqlite: SqliteProjections
) -> None:
    envelopes = placed(
        RunnerRegistered(runner_id="runner-1", name="one", labels=["linux"]),
        requested(),
        planned("build"),
        JobAssigned(run_id=RUN, job_id="build", runner_id="runner-1", lease_id="lease-1"),
        LeaseRenewed(run_id=RUN, job_id="build", lease_id="lease-1"),
    )

    await apply_each([envelopes[:4], envelopes[4:]], postgres, sqlite)

    [lease] = await rows(postgres, "SELECT runner_id, assigned_at, renewed_at FROM leases")
    assert lease == {"runner_id": "runner-1", "assigned_at": text(4), "renewed_at": text(5)}
    [runner] = await rows(postgres, "SELECT registered_at, last_seen FROM runners")
    assert runner == {"registered_at": text(1), "last_seen": text(5)}
    assert await postgres.dump() == await sqlite.dump()


async def test_a_runner_registered_again_keeps_when_it_first_registered(
    postgres: PostgresProjections, sqlite: SqliteProjections
) -> None:
    envelopes = placed(
        RunnerRegistered(runner_id="runner-1", name="one", labels=["linux"]),
        RunnerRegistered(runner_id="runner-2", name="two"),
        RunnerRegistered(runner_id="runner-1", name="uno", labels=["linux", "gpu"]),
    )

    await apply_each([envelopes[:2], envelopes[2:]], postgres, sqlite)

    assert await rows(postgres, "SELECT * FROM runners ORDER BY runner_id") == [
        {
            "runner_id": "runner-1",
            "name": "uno",
            "labels": '["linux", "gpu"]',
            "registered_at": text(1),
            "last_seen": text(3),
        },
        {"runner_id": "runner-2", "name": "two", "labels": "[]", "registered_at": text(2), "last_seen": text(2)},
    ]
    assert await postgres.dump() == await sqlite.dump()


async def test_a_log_line_stored_already_is_kept(postgres: PostgresProjections, sqlite: SqliteProjections) -> None:
    def logged(first: int, *lines: str) -> StepLogged:
        said = [LogLine(at=T0, text=line) for line in lines]
        return StepLogged(run_id=RUN, job_id="build", step_index=0, first_line=first, lines=said)

    envelopes = placed(requested(), logged(1, "one", "two"), logged(2, "TWO", "three"), logged(3, "THREE", "four"))

    await apply_each([envelopes[:2], envelopes[2:]], postgres, sqlite)

    assert await rows(postgres, "SELECT line, text FROM log_lines ORDER BY line") == [
        {"line": 1, "text": "one"},
        {"line": 2, "text": "two"},
        {"line": 3, "text": "three"},
        {"line": 4, "text": "four"},
    ]
    assert await postgres.dump() == await sqlite.dump()


async def test_events_of_a_run_never_requested_are_passed_over_among_others(
    postgres: PostgresProjections, sqlite: SqliteProjections
) -> None:
    envelopes = placed(
        requested(),
        RunnerRegistered(runner_id="runner-1", name="one"),
        planned("build", run_id="run-stray"),
        JobAssigned(run_id="run-stray", job_id="build", runner_id="runner-1", lease_id="lease-stray"),
        planned("build"),
    )

    await apply_each([envelopes], postgres, sqlite)

    dump = await postgres.dump()
    assert [row[0] for row in dump["runs"]] == [RUN]
    assert [row[:2] for row in dump["jobs"]] == [(RUN, "build")]
    assert dump["leases"] == []
    assert [row[-1] for row in dump["runners"]] == [text(2)]
    assert dump == await sqlite.dump()


async def test_batches_applied_again_change_nothing_and_the_new_part_of_one_is_applied(
    postgres: PostgresProjections, sqlite: SqliteProjections
) -> None:
    envelopes = a_long_log(2)
    first, second = envelopes[:50], envelopes[50:]
    await apply_each([first, second[:20]], postgres, sqlite)
    once = await postgres.dump()

    assert await postgres.apply(first) == 0
    assert await postgres.apply(second[:20]) == 0
    assert await postgres.dump() == once

    assert await postgres.apply(second) == second[-1].position
    await sqlite.apply(second)
    assert await postgres.dump() == await sqlite.dump()
    assert await postgres.position() == second[-1].position


async def test_a_long_log_rebuilt_in_small_batches_gives_the_rows_of_large_ones(
    postgres: PostgresProjections, sqlite: SqliteProjections, log: SqliteEventLog
) -> None:
    for envelope in a_long_log(30):
        await log.append([envelope])
    await postgres.apply(placed(requested("run-not-in-the-log"), planned("build", "run-not-in-the-log")))

    assert await rebuild(log, postgres, batch=7) == await rebuild(log, sqlite, batch=1000) == await log.head()

    assert await postgres.dump() == await sqlite.dump()
    assert len((await postgres.dump())["runs"]) == 30


def test_a_batch_that_writes_a_row_it_did_not_load_fails_rather_than_overwrite_it() -> None:
    loaded = {"projector_position": Loaded(frozenset({PROJECTOR}), [])}

    with pytest.raises(RuntimeError, match=r"rows of runs with run_id in \['run-7'\], which it did not load"):
        apply_in_scratch(loaded, placed(requested()))
