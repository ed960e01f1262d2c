"""The remote agent against a fake Conveyor's runner endpoints (HTTP in memory): leasing, reporting, stopping."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conveyor_events import (
    Conclusion,
    Envelope,
    Event,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobStarted,
    RunRequested,
    StepLogged,
    envelope_from_dict,
)
from conveyor_runner_agent import ConveyorServer, RemoteAgent, default_labels, join
from conveyor_runner_agent.adapters.identity import saved_identity
from conveyor_runner_agent.adapters.outbox import Backoff
from conveyor_workflow import Job

RUNNER, CREDENTIAL, LEASE = "runner-1", "cvr_secret", "lease-1"


@dataclass
class FakeConveyor:
    """The runner endpoints of a Conveyor with one queued job, keeping what the runner reports."""

    steps: list[dict[str, Any]]
    state: str = "current"
    """What the lease's heartbeat answers: `current`, or the state a 410 names."""
    drop_every: int = 0
    """Every n-th report is lost in transit (after the server stored it, when `stored_then_lost`)."""
    stored_then_lost: bool = False
    leased: bool = False
    stored: list[Envelope] = field(default_factory=list)
    reports: int = 0
    leases_asked: int = 0
    renewals: int = 0
    checks: int = 0
    refused_at: float | None = None
    """When a question about the lease was first answered 410 (`time.monotonic()`)."""
    registered: list[dict[str, Any]] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/runners":
            self.registered.append(json.loads(request.content))
            return httpx.Response(201, json={"id": RUNNER, "credential": CREDENTIAL})
        assert request.headers["authorization"] == f"Bearer {CREDENTIAL}"
        if path == f"/api/runners/{RUNNER}/lease":
            return await self.lease(float(request.url.params["wait"]))
        if path in (f"/api/runners/{RUNNER}/leases/{LEASE}/heartbeat", f"/api/runners/{RUNNER}/leases/{LEASE}"):
            if request.method == "GET":
                self.checks += 1
            else:
                self.renewals += 1
            if self.state == "current":
                return httpx.Response(200, json={"lease_id": LEASE, "state": "current"})
            self.refused_at = self.refused_at or time.monotonic()
            return httpx.Response(410, json={"detail": "over"}, headers={"Conveyor-Lease-State": self.state})
        assert path == f"/api/runners/{RUNNER}/leases/{LEASE}/events"
        return self.report(json.loads(request.content)["events"], request)

    async def lease(self, wait: float) -> httpx.Response:
        self.leases_asked += 1
        if self.leased:
            await asyncio.sleep(min(wait, 0.05))
            return httpx.Response(204)
        self.leased = True
        events: list[Event] = [
            RunRequested(run_id="run-1", repository="/nowhere", ref="refs/heads/main", sha="0" * 40),
            JobPlanned(
                run_id="run-1", job_id="build", workflow="ci.yml", job_key="build", name="build", runs_on=[],
                spec=Job.model_validate({"id": "build", "runs_on": ["self-hosted"], "steps": self.steps}).model_dump(
                    mode="json"
                ),
            ),
            JobQueued(run_id="run-1", job_id="build", labels=["self-hosted"]),
        ]
        request, plan, queued = (json.loads(Envelope.wrap(event, stream="run-1").to_json()) for event in events)
        body = {"lease_id": LEASE, "run_id": "run-1", "job_id": "build", "attempt": 1}
        return httpx.Response(200, json={**body, "queued": queued, "request": request, "plan": plan})

    def report(self, documents: list[dict[str, Any]], request: httpx.Request) -> httpx.Response:
        self.reports += 1
        lost = self.drop_every and self.reports % self.drop_every == 0
        if lost and not self.stored_then_lost:
            raise httpx.ConnectError("the network is down", request=request)
        if self.state in ("lost", "completed"):
            return httpx.Response(410, json={"detail": "over"}, headers={"Conveyor-Lease-State": self.state})
        known = {envelope.event_id for envelope in self.stored}
        self.stored.extend(envelope_from_dict(document) for document in documents if document["event_id"] not in known)
        if lost:
            raise httpx.ReadError("the answer was lost", request=request)
        return httpx.Response(200, json={"positions": list(range(len(documents)))})

    def events(self, cls: type[Event] = Event) -> list[Any]:
        return [envelope.event for envelope in self.stored if isinstance(envelope.event, cls)]


@contextlib.asynccontextmanager
async def serving(fake: FakeConveyor) -> AsyncIterator[ConveyorServer]:
    server = ConveyorServer("http://conveyor", transport=fake.transport())
    try:
        yield server
    finally:
        await server.aclose()


@pytest.fixture
async def connect(tmp_path: Path) -> AsyncIterator[Callable[[FakeConveyor], RemoteAgent]]:
    servers: list[ConveyorServer] = []

    def make(fake: FakeConveyor) -> RemoteAgent:
        server = ConveyorServer("http://conveyor", transport=fake.transport())
        servers.append(server)
        return RemoteAgent(
            server,
            tmp_path / "agent",
            lease_period=timedelta(seconds=0.3),
            poll_wait=0.05,
            grace=5,
            backoff=Backoff(first=0.01, longest=0.05),
        )

    yield make
    for server in servers:
        await server.aclose()


async def started(agent: RemoteAgent, fake: FakeConveyor) -> asyncio.Task[None]:
    await join(agent.server, agent.work_dir, "box", default_labels(), "cvy_admin")
    running = asyncio.create_task(agent.run())
    async with asyncio.timeout(10):
        while not fake.events(JobStarted):
            await asyncio.sleep(0.01)
    return running


async def until_completed(fake: FakeConveyor) -> JobCompleted:
    async with asyncio.timeout(15):
        while not fake.events(JobCompleted):
            await asyncio.sleep(0.01)
    [completed] = fake.events(JobCompleted)
    return completed  # type: ignore[no-any-return]


async def test_a_leased_job_reports_every_event_once_in_order_through_lost_requests_and_answers(
    connect: Callable[[FakeConveyor], RemoteAgent],
) -> None:
    steps = [{"run": "for i in 1 2 3; do echo line $i; sleep 0.05; done"}, {"run": "echo last"}]
    fake = FakeConveyor(steps, drop_every=2, stored_then_lost=False)
    agent = connect(fake)
    running = await started(agent, fake)

    completed = await until_completed(fake)
    fake.stored_then_lost = True
    agent.stop()
    await asyncio.wait_for(running, 10)

    assert completed.conclusion == Conclusion.SUCCESS
    kinds = [type(event).__name__ for event in fake.events()]
    assert kinds[0] == "JobStarted"
    assert kinds[-1] == "JobCompleted"
    assert kinds.count("StepStarted") == kinds.count("StepCompleted") == 2
    lines = [line.text for event in fake.events(StepLogged) for line in event.lines]
    assert lines == ["line 1", "line 2", "line 3", "last"]
    numbers = [event.first_line for event in fake.events(StepLogged)]
    assert numbers == sorted(numbers)
    assert len({envelope.event_id for envelope in fake.stored}) == len(fake.stored)
    assert fake.events(JobStarted)[0].runner_id == RUNNER


async def test_an_answer_lost_after_the_server_stored_the_batch_does_not_store_it_twice(
    connect: Callable[[FakeConveyor], RemoteAgent],
) -> None:
    fake = FakeConveyor([{"run": "echo one"}, {"run": "echo two"}], drop_every=2, stored_then_lost=True)
    agent = connect(fake)
    running = await started(agent, fake)

    await until_completed(fake)
    agent.stop()
    await asyncio.wait_for(running, 10)

    assert [line.text for event in fake.events(StepLogged) for line in event.lines] == ["one", "two"]
    assert len(fake.events(JobStarted)) == 1


async def test_a_heartbeat_saying_the_attempt_was_cancelled_stops_the_job_which_still_reports_its_end(
    connect: Callable[[FakeConveyor], RemoteAgent],
) -> None:
    steps = [{"run": "sleep 30"}, {"run": "echo cleaned up", "if_": "always()"}]
    fake = FakeConveyor(steps)
    agent = connect(fake)
    running = await started(agent, fake)

    fake.state = "cancelled"
    completed = await until_completed(fake)
    agent.stop()
    await asyncio.wait_for(running, 10)

    assert completed.conclusion == Conclusion.CANCELLED
    assert "cleaned up" in [line.text for event in fake.events(StepLogged) for line in event.lines]


async def test_a_lost_lease_stops_the_job_and_what_the_server_no_longer_takes_is_dropped(
    connect: Callable[[FakeConveyor], RemoteAgent],
) -> None:
    fake = FakeConveyor([{"run": "sleep 30"}])
    agent = connect(fake)
    running = await started(agent, fake)

    fake.state = "lost"
    async with asyncio.timeout(10):
        while agent._executions:
            await asyncio.sleep(0.02)
    agent.stop()
    await asyncio.wait_for(running, 10)

    assert fake.events(JobCompleted) == []


async def test_a_stopped_agent_lets_its_running_job_finish_and_asks_for_no_new_one(
    connect: Callable[[FakeConveyor], RemoteAgent],
) -> None:
    fake = FakeConveyor([{"run": "sleep 0.5 && echo finished"}])
    agent = connect(fake)
    running = await started(agent, fake)

    agent.stop()
    asked = fake.leases_asked
    await asyncio.wait_for(running, 10)

    [completed] = fake.events(JobCompleted)
    assert completed.conclusion == Conclusion.SUCCESS
    assert "finished" in [line.text for event in fake.events(StepLogged) for line in event.lines]
    assert fake.leases_asked <= asked + 1  # a request for a lease already under way is answered


async def test_a_runner_registers_once_and_a_restart_keeps_its_identity(tmp_path: Path) -> None:
    fake = FakeConveyor([])
    labels = [*default_labels(), "gpu"]
    async with serving(fake) as server:
        first = await join(server, tmp_path, "box", labels, "cvy_admin")
        again = await join(server, tmp_path, "box", labels, None)
        with pytest.raises(ValueError, match="no runner identity is saved"):
            await join(server, tmp_path, "box", ["other"], None)

    assert first == again
    assert fake.registered == [{"name": "box", "labels": labels}]
    assert saved_identity(tmp_path, "http://conveyor/", labels) == first
    assert (tmp_path / "runner.json").stat().st_mode & 0o777 == 0o600


async def test_a_cancel_stops_the_job_within_seconds_although_its_lease_is_renewed_seldom(tmp_path: Path) -> None:
    fake = FakeConveyor([{"run": "sleep 30"}])
    async with serving(fake) as server:
        agent = RemoteAgent(
            server, tmp_path / "agent", lease_period=timedelta(minutes=2), watch_every=0.2, poll_wait=0.05, grace=5
        )
        running = await started(agent, fake)

        fake.state = "cancelled"
        cancelled_at = time.monotonic()
        completed = await until_completed(fake)
        agent.stop()
        await asyncio.wait_for(running, 10)

    assert completed.conclusion == Conclusion.CANCELLED
    assert fake.refused_at is not None
    assert fake.refused_at - cancelled_at < 2  # the next question told it, not the next renewal (40 s on)
    assert fake.checks >= 1
    assert fake.renewals == 0
