"""A remote runner's events through its lease, against a real log and read models: what is taken, what is refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conveyor_events import (
    Conclusion,
    Envelope,
    Event,
    JobCompleted,
    JobLost,
    JobPlanned,
    JobQueued,
    JobStarted,
    JobTimedOut,
    LeaseRenewed,
    LogLine,
    RunRequested,
    StepCompleted,
    StepLogged,
    StepStarted,
    deterministic_id,
    envelope_from_dict,
)
from conveyor_ingest import LocalKeyWrapper, Queries, create_app, issue_token
from conveyor_runtime import SqliteEventLog, SqliteProjections, project


@dataclass
class Leased:
    runner_id: str
    lease_id: str
    queued: Envelope
    url: str


@dataclass
class Edge:
    http: httpx.AsyncClient
    log: SqliteEventLog
    store: SqliteProjections
    credentials: dict[str, str] = field(default_factory=dict)

    async def runner(self, name: str) -> str:
        response = await self.http.post("/api/runners", json={"name": name, "labels": ["linux"]})
        assert response.status_code == 201, response.text
        self.credentials[response.json()["id"]] = response.json()["credential"]
        return str(response.json()["id"])

    def as_runner(self, runner_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials[runner_id]}"}

    async def leased(self, run_id: str = "run-1") -> Leased:
        """A run with one job queued, as the scheduler leaves it, and a runner holding its lease."""
        events: list[Event] = [
            RunRequested(run_id=run_id, repository="/nowhere", ref="refs/heads/main", sha="0" * 40),
            JobPlanned(run_id=run_id, job_id="build", workflow="ci.yml", job_key="build", name="build", runs_on=[]),
            JobQueued(run_id=run_id, job_id="build", labels=["linux"]),
        ]
        stored = await self.log.append([Envelope.wrap(event, stream=run_id) for event in events])
        await Queries(self.store).caught_up(stored[-1].position)
        runner_id = await self.runner(f"box-{run_id}")
        lease = await self.http.post(f"/api/runners/{runner_id}/lease", headers=self.as_runner(runner_id))
        assert lease.status_code == 200, lease.text
        lease_id = lease.json()["lease_id"]
        url = f"/api/runners/{runner_id}/leases/{lease_id}/events"
        return Leased(runner_id, lease_id, envelope_from_dict(lease.json()["queued"]), url)

    async def post(self, leased: Leased, envelopes: list[Envelope], runner_id: str | None = None) -> httpx.Response:
        body = {"events": [json.loads(envelope.to_json()) for envelope in envelopes]}
        return await self.http.post(leased.url, json=body, headers=self.as_runner(runner_id or leased.runner_id))

    async def run_events(self, run_id: str = "run-1") -> list[Event]:
        return [envelope.event for envelope in await self.log.read_stream(run_id)]


def reported(leased: Leased, *events: Event) -> list[Envelope]:
    """`events` in envelopes as a runner makes them: deterministic ids, caused by the attempt's `JobQueued`."""
    return [
        Envelope.wrap(event, stream="run-1", cause=leased.queued, event_id=deterministic_id("test", index, event))
        for index, event in enumerate(events)
    ]


def job_events(runner_id: str) -> list[Event]:
    line = LogLine.model_validate({"at": "2024-01-01T00:00:00Z", "text": "hello"})
    return [
        JobStarted(run_id="run-1", job_id="build", runner_id=runner_id),
        StepStarted(run_id="run-1", job_id="build", step_index=0, name="greet"),
        StepLogged(run_id="run-1", job_id="build", step_index=0, first_line=1, lines=[line]),
        StepCompleted(
            run_id="run-1", job_id="build", step_index=0, outcome=Conclusion.SUCCESS, conclusion=Conclusion.SUCCESS
        ),
        JobCompleted(run_id="run-1", job_id="build", conclusion=Conclusion.SUCCESS),
    ]


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    log = SqliteEventLog(tmp_path / "events.db")
    store = SqliteProjections(tmp_path / "projections.db")
    await log.open()
    projector = asyncio.create_task(project(log, store))
    app = create_app(log, Queries(store), LocalKeyWrapper(bytes(range(32))))
    admin = await issue_token(log, "admin", {"*": "admin"})
    assert admin is not None
    headers = {"Authorization": f"Bearer {admin[0]}"}
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://conveyor", headers=headers
        ) as http:
            yield Edge(http, log, store)
    finally:
        projector.cancel()
        await asyncio.gather(projector, return_exceptions=True)
        await log.close()


def without_leases(events: list[Event]) -> list[Event]:
    return [event for event in events if not isinstance(event, LeaseRenewed)]


async def test_an_accepted_batch_is_appended_in_order(edge: Edge) -> None:
    leased = await edge.leased()
    events = job_events(leased.runner_id)

    response = await edge.post(leased, reported(leased, *events))

    assert response.status_code == 200, response.text
    stored = await edge.log.read_stream("run-1")
    assert [envelope.event for envelope in stored[-5:]] == events
    assert response.json()["positions"] == [envelope.position for envelope in stored[-5:]]
    assert {envelope.causation_id for envelope in stored[-5:]} == {leased.queued.event_id}


async def test_a_batch_sent_again_is_not_stored_twice_even_after_it_completed_the_attempt(edge: Edge) -> None:
    leased = await edge.leased()
    envelopes = reported(leased, *job_events(leased.runner_id))
    first_half, second_half = envelopes[:3], envelopes[3:]

    answers = [await edge.post(leased, batch) for batch in (first_half, first_half, second_half, second_half)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 200], answers[-1].text
    assert answers[0].json() == answers[1].json()
    assert answers[2].json() == answers[3].json()
    events = await edge.run_events()
    assert sum(isinstance(event, JobStarted) for event in events) == 1
    assert sum(isinstance(event, JobCompleted) for event in events) == 1
    assert len(events) == 4 + 5  # the request, plan, queue and assignment, then the runner's five


async def test_another_runners_credential_is_refused(edge: Edge) -> None:
    leased = await edge.leased()
    rival = await edge.runner("rival")

    response = await edge.post(leased, reported(leased, *job_events(leased.runner_id)[:1]), runner_id=rival)

    assert response.status_code == 403
    assert leased.runner_id in response.json()["detail"]
    assert not any(isinstance(event, JobStarted) for event in await edge.run_events())


@pytest.mark.parametrize(
    ("event", "named"),
    [
        (StepStarted(run_id="run-1", job_id="test", step_index=0, name="x"), "not of the leased job 'build'"),
        (StepStarted(run_id="run-1", job_id="build", attempt=2, name="x", step_index=0), "attempt 2"),
        (StepStarted(run_id="run-2", job_id="build", step_index=0, name="x"), "not of the leased run 'run-1'"),
        (JobStarted(run_id="run-1", job_id="build", runner_id="someone-else"), "names the runner 'someone-else'"),
        (JobTimedOut(run_id="run-1", job_id="build", phase="running", deadline="2024-01-01T00:00:00Z",
                     limit_minutes=1.0), "is not an event a runner appends"),
        (JobLost(run_id="run-1", job_id="build", reason="no"), "is not an event a runner appends"),
    ],
)
async def test_an_event_of_another_run_job_or_attempt_or_of_a_kind_no_runner_makes_is_refused_by_name(
    edge: Edge, event: Event, named: str
) -> None:
    leased = await edge.leased()
    good, bad = reported(leased, job_events(leased.runner_id)[0], event)

    response = await edge.post(leased, [good, bad])

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert f"event 1 ({bad.type}, id {bad.event_id})" in detail
    assert named in detail
    assert not any(isinstance(event, JobStarted) for event in await edge.run_events())


async def test_what_is_not_an_envelope_is_refused_by_name(edge: Edge) -> None:
    leased = await edge.leased()
    body: dict[str, Any] = {"events": [{"type": "JobStarted", "event_id": "e1", "data": {}}]}

    response = await edge.http.post(leased.url, json=body, headers=edge.as_runner(leased.runner_id))

    assert response.status_code == 422
    assert "event 0 (JobStarted, id e1) is not an event envelope" in response.json()["detail"]


async def test_a_stopped_attempt_still_reports_and_a_lost_one_is_gone(edge: Edge) -> None:
    leased = await edge.leased()
    *running, completed = reported(leased, *job_events(leased.runner_id))
    timed_out = JobTimedOut(
        run_id="run-1", job_id="build", phase="running", deadline="2024-01-01T00:00:00Z", limit_minutes=1.0
    )
    await edge.log.append([Envelope.wrap(timed_out, stream="run-1")])
    winding_down = await edge.post(leased, running)
    await edge.log.append([Envelope.wrap(JobLost(run_id="run-1", job_id="build", reason="expired"), stream="run-1")])

    gone = await edge.post(leased, [completed])

    assert winding_down.status_code == 200, winding_down.text
    assert gone.status_code == 410
    assert "lost" in gone.json()["detail"]
    assert gone.headers["conveyor-lease-state"] == "lost"
    assert not any(isinstance(event, JobCompleted) for event in await edge.run_events())


async def test_a_heartbeat_of_a_timed_out_attempt_says_so_and_its_limit(edge: Edge) -> None:
    leased = await edge.leased()
    timed_out = JobTimedOut(
        run_id="run-1", job_id="build", phase="running", deadline="2024-01-01T00:00:00Z", limit_minutes=1.5
    )
    await edge.log.append([Envelope.wrap(timed_out, stream="run-1")])

    beat = await edge.http.post(
        f"/api/runners/{leased.runner_id}/leases/{leased.lease_id}/heartbeat", headers=edge.as_runner(leased.runner_id)
    )

    assert beat.status_code == 410
    assert (beat.headers["conveyor-lease-state"], beat.headers["conveyor-timeout-minutes"]) == ("timed out", "1.5")
    assert isinstance(without_leases(await edge.run_events())[-1], JobTimedOut)
