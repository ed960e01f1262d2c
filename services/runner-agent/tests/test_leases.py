"""Leases over a real SQLite log: one claim wins an attempt, and the agent claims, renews and lets go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from conveyor_events import (
    Conclusion,
    Envelope,
    Event,
    JobAssigned,
    JobCompleted,
    JobLost,
    JobPlanned,
    JobQueued,
    JobStarted,
    JobTimedOut,
    LeaseRenewed,
    LogLine,
    RunRequested,
    StepLogged,
)
from conveyor_runner_agent import RunnerAgent
from conveyor_runtime import ANY_LABEL, LEASE_PERIOD, SqliteEventLog, claim, covers, renew
from conveyor_workflow import Job

RUN = "run-1"
E = TypeVar("E", bound=Event)


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[SqliteEventLog]:
    async with SqliteEventLog(tmp_path / "events.db") as opened:
        yield opened


def planned(job_id: str, run: str, labels: list[str]) -> JobPlanned:
    spec = Job.model_validate({"id": job_id, "runs_on": labels, "steps": [{"run": run}]}).model_dump(mode="json")
    return JobPlanned(run_id=RUN, job_id=job_id, workflow="ci.yml", job_key=job_id, name=job_id, runs_on=labels,
                      spec=spec)


async def queue(log: SqliteEventLog, jobs: dict[str, str], labels: list[str] | None = None) -> list[Envelope]:
    """A run whose `jobs` (id → shell command) are planned and queued; their `JobQueued` envelopes."""
    labels = labels or ["linux"]
    events: list[Event] = [RunRequested(run_id=RUN, repository="/nowhere", ref="refs/heads/main", sha="0" * 40)]
    events += [planned(job_id, run, labels) for job_id, run in jobs.items()]
    events += [JobQueued(run_id=RUN, job_id=job_id, labels=labels) for job_id in jobs]
    stored = await log.append([Envelope.wrap(event, stream=RUN) for event in events])
    return [envelope for envelope in stored if envelope.type == "JobQueued"]


async def of_type(log: SqliteEventLog, cls: type[E]) -> list[E]:
    return [e.event for e in await log.read(0, 10_000, types=[cls.event_type()]) if isinstance(e.event, cls)]


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 8.0) -> None:
    async with asyncio.timeout(seconds):
        while not await check():
            await asyncio.sleep(0.02)


def agent(
    log: SqliteEventLog,
    tmp_path: Path,
    runner_id: str,
    *,
    concurrency: int = 4,
    labels: tuple[str, ...] = (ANY_LABEL,),
    lease_period: timedelta = LEASE_PERIOD,
) -> RunnerAgent:
    return RunnerAgent(log, tmp_path / runner_id, runner_id=runner_id, concurrency=concurrency, labels=labels,
                       lease_period=lease_period)


@pytest.mark.parametrize(
    ("runner", "job", "taken"),
    [
        (["Linux", "X64"], ["linux"], True),
        (["self-hosted", "linux"], ["self-hosted", "LINUX"], True),
        (["linux"], ["linux", "gpu"], False),
        (["*"], ["gpu", "windows"], True),
        ([], [], True),
        ([], ["linux"], False),
    ],
)
def test_a_runner_covers_the_jobs_whose_labels_it_has(runner: list[str], job: list[str], taken: bool) -> None:
    assert covers(runner, job) is taken


async def test_of_many_claims_of_one_attempt_at_once_exactly_one_holds_it(log: SqliteEventLog) -> None:
    await queue(log, {"build": "true"})

    async def noise() -> None:  # other jobs of the run keep writing to its stream meanwhile
        for line in range(30):
            logged = StepLogged(run_id=RUN, job_id="other", step_index=0, first_line=line,
                                lines=[LogLine(at=datetime.now(UTC), text="x")])
            await log.append([Envelope.wrap(logged, stream=RUN)])

    results = await asyncio.gather(  # four runners, each polling three times at once
        noise(), *(claim(log, RUN, "build", 1, f"runner-{index % 4}", ["linux"]) for index in range(12))
    )

    leases = [lease for lease in results[1:] if lease is not None]
    assigned = await of_type(log, JobAssigned)
    assert len(leases) == 1
    assert [(event.runner_id, event.lease_id) for event in assigned] == [
        (leases[0].runner_id, leases[0].lease_id)
    ]


async def test_a_claim_needs_the_labels_and_a_free_attempt(log: SqliteEventLog) -> None:
    await queue(log, {"build": "true", "lost": "true"}, labels=["linux", "gpu"])
    await log.append([Envelope.wrap(JobLost(run_id=RUN, job_id="lost", reason="gone"), stream=RUN)])

    assert await claim(log, RUN, "build", 1, "small", ["linux"]) is None
    assert await claim(log, RUN, "build", 2, "any", ["*"]) is None  # no such attempt queued
    assert await claim(log, RUN, "lost", 1, "any", ["*"]) is None
    first = await claim(log, RUN, "build", 1, "big", ["GPU", "Linux"])
    assert first is not None
    assert await claim(log, RUN, "build", 1, "big", ["GPU", "Linux"]) is None  # held already, even by itself
    assert len(await of_type(log, JobAssigned)) == 1


async def test_two_agents_over_one_log_never_both_start_an_attempt(log: SqliteEventLog, tmp_path: Path) -> None:
    jobs = {f"job-{index}": f"echo {index}" for index in range(6)}
    queued = await queue(log, jobs)
    agents = [agent(log, tmp_path, "a", concurrency=2), agent(log, tmp_path, "b", concurrency=2)]

    for envelope in queued:  # both see every JobQueued, as two consumers of one log do
        await asyncio.gather(*(each.on_job_queued(envelope) for each in agents))

    async def all_completed() -> bool:
        return len(await of_type(log, JobCompleted)) >= len(jobs)

    await eventually(all_completed)
    started = [(e.job_id, e.attempt) for e in await of_type(log, JobStarted)]
    holders = {e.job_id: e.runner_id for e in await of_type(log, JobAssigned)}
    runners = {e.job_id: e.runner_id for e in await of_type(log, JobStarted)}
    completed = await of_type(log, JobCompleted)
    assert sorted(started) == sorted((job_id, 1) for job_id in jobs)
    assert runners == holders
    assert {e.conclusion for e in completed} == {Conclusion.SUCCESS}
    assert len(completed) == len(jobs)


async def test_an_agent_leaves_a_job_for_other_labels_alone(log: SqliteEventLog, tmp_path: Path) -> None:
    [queued] = await queue(log, {"train": "true"}, labels=["gpu"])
    linux = agent(log, tmp_path, "linux-box", labels=("linux",))

    await linux.on_job_queued(queued)
    await asyncio.sleep(0.2)

    assert await of_type(log, JobAssigned) == []
    assert await of_type(log, JobStarted) == []


async def test_an_agent_renews_its_lease_while_the_job_runs(log: SqliteEventLog, tmp_path: Path) -> None:
    [queued] = await queue(log, {"build": "sleep 0.7"})
    runner = agent(log, tmp_path, "a", lease_period=timedelta(seconds=0.3))

    await runner.on_job_queued(queued)

    async def completed() -> bool:
        return bool(await of_type(log, JobCompleted))

    await eventually(completed)
    [assigned] = await of_type(log, JobAssigned)
    renewals = await of_type(log, LeaseRenewed)
    assert len(renewals) >= 3  # every 0.1 s through 0.7 s of sleep
    assert {e.lease_id for e in renewals} == {assigned.lease_id}


async def test_an_agent_stops_a_job_whose_lease_was_lost(log: SqliteEventLog, tmp_path: Path) -> None:
    [queued] = await queue(log, {"build": "sleep 30"})
    runner = agent(log, tmp_path, "a")
    await runner.on_job_queued(queued)

    async def started() -> bool:
        return bool(await of_type(log, JobStarted))

    await eventually(started)
    [assigned] = await of_type(log, JobAssigned)
    lost = JobLost(run_id=RUN, job_id="build", runner_id="a", lease_id=assigned.lease_id,
                   reason="the lease expired")
    [stored] = await log.append([Envelope.wrap(lost, stream=RUN)])
    await runner.on_job_lost(stored)

    async def completed() -> bool:
        return bool(await of_type(log, JobCompleted))

    await eventually(completed)
    [done] = await of_type(log, JobCompleted)
    assert done.conclusion == Conclusion.CANCELLED


async def test_a_timed_out_attempt_is_still_renewed_while_its_runner_winds_it_down(log: SqliteEventLog) -> None:
    await queue(log, {"build": "true"})
    lease = await claim(log, RUN, "build", 1, "runner", ["*"])
    assert lease is not None
    timed_out = JobTimedOut(run_id=RUN, job_id="build", phase="running", deadline=datetime.now(UTC),
                            limit_minutes=1)
    await log.append([Envelope.wrap(timed_out, stream=RUN)])

    assert await renew(log, lease) == "timed out"
    await log.append([Envelope.wrap(JobCompleted(run_id=RUN, job_id="build", conclusion=Conclusion.FAILURE),
                                    stream=RUN)])
    assert await renew(log, lease) == "completed"
    assert len(await of_type(log, LeaseRenewed)) == 1  # the second found the attempt over
