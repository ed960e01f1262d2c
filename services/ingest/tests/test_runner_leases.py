"""Runners over HTTP, against a real log and read models: registering, long-polling for leases, heartbeats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from conveyor_events import (
    Conclusion,
    Envelope,
    Event,
    JobAssigned,
    JobCancelRequested,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobStarted,
    LeaseRenewed,
    RunnerRegistered,
    RunRequested,
    envelope_from_dict,
)
from conveyor_ingest import LocalKeyWrapper, Queries, create_app, issue_token
from conveyor_runtime import SqliteEventLog, SqliteProjections, project, rebuild

E = TypeVar("E", bound=Event)


@dataclass
class Edge:
    http: httpx.AsyncClient
    log: SqliteEventLog
    store: SqliteProjections
    credentials: dict[str, str] = field(default_factory=dict)

    async def runner(self, name: str, labels: list[str]) -> str:
        response = await self.http.post("/api/runners", json={"name": name, "labels": labels})
        assert response.status_code == 201, response.text
        self.credentials[response.json()["id"]] = response.json()["credential"]
        return str(response.json()["id"])

    def as_runner(self, runner_id: str) -> dict[str, str]:
        """A runner authenticates with its own credential; an unknown runner's calls go with the admin token."""
        credential = self.credentials.get(runner_id)
        return {"Authorization": f"Bearer {credential}"} if credential else {}

    async def lease(self, runner_id: str, wait: float = 0) -> httpx.Response:
        return await self.http.post(
            f"/api/runners/{runner_id}/lease", params={"wait": wait}, headers=self.as_runner(runner_id)
        )

    async def heartbeat(self, runner_id: str, lease_id: str) -> httpx.Response:
        return await self.http.post(
            f"/api/runners/{runner_id}/leases/{lease_id}/heartbeat", headers=self.as_runner(runner_id)
        )

    async def queue(self, run_id: str, job_id: str, labels: list[str]) -> Envelope:
        """A run with one job, planned and queued as the planner and the scheduler would; its `JobQueued`."""
        events: list[Event] = [
            RunRequested(run_id=run_id, repository="/nowhere", ref="refs/heads/main", sha="0" * 40),
            JobPlanned(run_id=run_id, job_id=job_id, workflow="ci.yml", job_key=job_id, name=job_id, runs_on=labels),
            JobQueued(run_id=run_id, job_id=job_id, labels=labels),
        ]
        stored = await self.log.append([Envelope.wrap(event, stream=run_id) for event in events])
        await Queries(self.store).caught_up(stored[-1].position)
        return stored[-1]

    async def of_type(self, cls: type[E]) -> list[E]:
        found = await self.log.read(0, 10_000, types=[cls.event_type()])
        return [envelope.event for envelope in found if isinstance(envelope.event, cls)]


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


async def test_a_registered_runner_is_listed_idle_with_its_labels(edge: Edge) -> None:
    runner_id = await edge.runner("build-box", ["self-hosted", "Linux"])

    [listed] = (await edge.http.get("/api/runners")).json()
    [registered] = await edge.of_type(RunnerRegistered)

    assert registered.runner_id == runner_id
    assert (listed["id"], listed["name"], listed["labels"]) == (runner_id, "build-box", ["self-hosted", "Linux"])
    assert (listed["status"], listed["job"]) == ("idle", None)
    assert listed["last_seen"] is not None


async def test_a_lease_answers_at_once_with_everything_a_remote_runner_needs(edge: Edge) -> None:
    queued = await edge.queue("run-1", "build", ["linux"])
    runner_id = await edge.runner("box", ["LINUX"])

    response = await edge.lease(runner_id, wait=30)

    assert response.status_code == 200, response.text
    body = response.json()
    [assigned] = await edge.of_type(JobAssigned)
    assert (body["run_id"], body["job_id"], body["attempt"]) == ("run-1", "build", 1)
    assert (assigned.runner_id, assigned.lease_id) == (runner_id, body["lease_id"])
    assert envelope_from_dict(body["queued"]) == queued
    assert isinstance(envelope_from_dict(body["request"]).event, RunRequested)
    assert envelope_from_dict(body["plan"]).event == JobPlanned(
        run_id="run-1", job_id="build", workflow="ci.yml", job_key="build", name="build", runs_on=["linux"]
    )
    # The lease is answered without waiting for the read models, which follow the log.
    await Queries(edge.store).caught_up(await edge.log.head())
    [listed] = (await edge.http.get("/api/runners")).json()
    assert listed["status"] == "busy"
    held = listed["job"]
    assert (held["run"], held["job"], held["lease_id"]) == ("run-1", "build", body["lease_id"])


async def test_two_runners_long_polling_for_one_job_one_gets_it_the_other_nothing(edge: Edge) -> None:
    first, second = await edge.runner("a", ["linux"]), await edge.runner("b", ["linux", "x64"])

    polls = [asyncio.create_task(edge.lease(runner_id, wait=1.5)) for runner_id in (first, second)]
    await asyncio.sleep(0.2)  # both are waiting by now; the job comes while they do
    await edge.queue("run-1", "build", ["linux"])
    answers = await asyncio.gather(*polls)

    assert sorted(answer.status_code for answer in answers) == [200, 204]
    [winner] = [answer.json() for answer in answers if answer.status_code == 200]
    [assigned] = await edge.of_type(JobAssigned)
    assert assigned.lease_id == winner["lease_id"]


async def test_a_job_no_runner_has_the_labels_for_waits_and_the_queue_says_why(edge: Edge) -> None:
    runner_id = await edge.runner("box", ["linux"])
    await edge.queue("run-1", "train", ["linux", "gpu"])

    refused = await edge.lease(runner_id, wait=0)
    [waiting] = (await edge.http.get("/api/queue")).json()
    [job] = (await edge.http.get("/api/runs/run-1")).json()["jobs"]

    assert refused.status_code == 204
    assert waiting["reason"] == "no runner has the labels: linux, gpu"
    assert job["reason"] == waiting["reason"]
    assert await edge.of_type(JobAssigned) == []

    gpu = await edge.runner("gpu-box", ["linux", "gpu"])
    [waiting] = (await edge.http.get("/api/queue")).json()
    assert waiting["reason"] is None
    assert (await edge.lease(gpu)).status_code == 200


async def test_a_lease_for_an_unknown_runner_is_not_found(edge: Edge) -> None:
    response = await edge.lease("no-such-runner", wait=5)

    assert response.status_code == 404
    assert "no runner 'no-such-runner'" in response.json()["detail"]
    assert "POST /api/runners" in response.json()["detail"]


async def test_a_heartbeat_renews_the_lease_until_the_attempt_is_cancelled_or_over(edge: Edge) -> None:
    await edge.queue("run-1", "build", ["linux"])
    runner_id = await edge.runner("box", ["linux"])
    lease_id = (await edge.lease(runner_id)).json()["lease_id"]

    renewed = await edge.heartbeat(runner_id, lease_id)
    cancel = JobCancelRequested(run_id="run-1", job_id="build", reason="the run was cancelled")
    await edge.log.append([Envelope.wrap(cancel, stream="run-1")])
    stopping = await edge.heartbeat(runner_id, lease_id)
    ended = JobCompleted(run_id="run-1", job_id="build", conclusion=Conclusion.CANCELLED)
    await edge.log.append([Envelope.wrap(ended, stream="run-1")])
    gone = await edge.heartbeat(runner_id, lease_id)

    assert renewed.status_code == 200
    assert (stopping.status_code, gone.status_code) == (410, 410)
    assert "cancelled" in stopping.json()["detail"]
    assert "completed" in gone.json()["detail"]
    # a cancelled attempt still winds down: its lease lives on until it ends
    assert [event.lease_id for event in await edge.of_type(LeaseRenewed)] == [lease_id, lease_id]


async def test_a_heartbeat_of_a_lease_the_runner_does_not_hold_is_not_found(edge: Edge) -> None:
    await edge.queue("run-1", "build", ["linux"])
    holder, other = await edge.runner("a", ["linux"]), await edge.runner("b", ["linux"])
    lease_id = (await edge.lease(holder)).json()["lease_id"]

    assert (await edge.heartbeat(other, lease_id)).status_code == 404
    assert (await edge.heartbeat(holder, "no-such-lease")).status_code == 404
    assert (await edge.heartbeat("no-such-runner", lease_id)).status_code == 404
    assert await edge.of_type(LeaseRenewed) == []


async def test_the_runners_read_model_is_rebuilt_the_same(edge: Edge, tmp_path: Path) -> None:
    await edge.queue("run-1", "build", ["linux"])
    runner_id = await edge.runner("box", ["linux"])
    lease_id = (await edge.lease(runner_id)).json()["lease_id"]
    await edge.heartbeat(runner_id, lease_id)
    await Queries(edge.store).caught_up(await edge.log.head())

    again = SqliteProjections(tmp_path / "rebuilt.db")
    await rebuild(edge.log, again)

    dump: dict[str, Any] = await edge.store.dump()
    assert dump == await again.dump()
    assert len(dump["runners"]) == 1
    assert len(dump["leases"]) == 1


async def test_a_lease_whose_answer_was_lost_is_handed_to_its_runner_again_until_it_starts(edge: Edge) -> None:
    await edge.queue("run-1", "build", ["linux"])
    await edge.queue("run-2", "build", ["linux"])
    runner_id = await edge.runner("box", ["linux"])
    first = (await edge.lease(runner_id)).json()  # the server stored the claim; say the runner never read it

    again = await edge.lease(runner_id)

    assert again.status_code == 200, again.text
    assert (again.json()["lease_id"], again.json()["run_id"]) == (first["lease_id"], "run-1")
    assert len(await edge.of_type(JobAssigned)) == 1
    started = JobStarted(run_id="run-1", job_id="build", runner_id=runner_id)
    [stored] = await edge.log.append([Envelope.wrap(started, stream="run-1")])
    await Queries(edge.store).caught_up(stored.position)
    following = (await edge.lease(runner_id)).json()
    assert (following["run_id"], following["lease_id"]) == ("run-2", (await edge.of_type(JobAssigned))[1].lease_id)
    other = await edge.runner("other", ["linux"])
    assert (await edge.lease(other)).status_code == 204  # a lease is handed again only to the runner holding it


async def test_asking_after_a_lease_answers_its_state_without_renewing_it(edge: Edge) -> None:
    await edge.queue("run-1", "build", ["linux"])
    runner_id = await edge.runner("box", ["linux"])
    lease_id = (await edge.lease(runner_id)).json()["lease_id"]
    path = f"/api/runners/{runner_id}/leases/{lease_id}"

    current = await edge.http.get(path, headers=edge.as_runner(runner_id))
    cancel = JobCancelRequested(run_id="run-1", job_id="build", reason="the run was cancelled")
    await edge.log.append([Envelope.wrap(cancel, stream="run-1")])
    stopping = await edge.http.get(path, headers=edge.as_runner(runner_id))
    stranger = await edge.http.get(path)  # the admin token is no runner's credential

    assert current.json() == {"lease_id": lease_id, "state": "current"}
    assert (stopping.status_code, stopping.headers["conveyor-lease-state"]) == (410, "cancelled")
    assert stranger.status_code == 403
    assert await edge.of_type(LeaseRenewed) == []


def counting_lease_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The lease ids ingest looks up in the read models from now on."""
    asked: list[str] = []
    lease = Queries.lease

    async def counted(self: Queries, lease_id: str) -> dict[str, Any] | None:
        asked.append(lease_id)
        return await lease(self, lease_id)

    monkeypatch.setattr(Queries, "lease", counted)
    return asked


async def test_a_runner_asking_after_its_lease_is_answered_without_the_read_models(
    edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    await edge.queue("run-1", "build", ["linux"])
    runner_id = await edge.runner("box", ["linux"])
    asked = counting_lease_lookups(monkeypatch)
    lease_id = (await edge.lease(runner_id)).json()["lease_id"]

    answers = [(await edge.heartbeat(runner_id, lease_id)).status_code for _ in range(3)]
    cancel = JobCancelRequested(run_id="run-1", job_id="build", reason="the run was cancelled")
    await edge.log.append([Envelope.wrap(cancel, stream="run-1")])
    stopping = await edge.heartbeat(runner_id, lease_id)

    assert answers == [200, 200, 200]
    assert stopping.status_code == 410  # where the lease stands is read from the log each time
    assert asked == []


async def test_a_lease_another_ingest_handed_out_is_looked_up_once(
    edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    await edge.queue("run-1", "build", ["linux"])
    runner_id = await edge.runner("box", ["linux"])
    lease_id = (await edge.lease(runner_id)).json()["lease_id"]
    other = create_app(edge.log, Queries(edge.store), LocalKeyWrapper(bytes(range(32))))
    asked = counting_lease_lookups(monkeypatch)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://conveyor") as http:
        path = f"/api/runners/{runner_id}/leases/{lease_id}/heartbeat"
        first = (await http.post(path, headers=edge.as_runner(runner_id))).status_code
        looked_up = list(asked)
        answers = [(await http.post(path, headers=edge.as_runner(runner_id))).status_code for _ in range(2)]

    assert (first, answers) == (200, [200, 200])
    # Asked again, once the read models caught up, when they did not know the lease yet; then never.
    assert looked_up in ([lease_id], [lease_id, lease_id])
    assert asked == looked_up
