"""Runners and their leases through the whole system: remote runners over HTTP, the embedded one, lost leases."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from conveyor_cli.system import EmbeddedSystem
from conveyor_events import JobAssigned, JobLost, JobQueued, JobStarted, LeaseRenewed
from conveyor_runtime import RuntimeSettings, consume

from tests.e2e.conftest import admin_headers

if TYPE_CHECKING:
    from tests.e2e.conftest import Until

pytestmark = pytest.mark.e2e

WORKFLOW = """
on: push
jobs:
  build:
    runs-on: linux
    retry: 2
    steps:
      - run: echo "built on attempt ${{ github.run_attempt }}"
  train:
    runs-on: [linux, gpu]
    steps:
      - run: echo never
"""


@contextlib.asynccontextmanager
async def edge(
    tmp_path: Path, *, embedded_runner: bool, lease_period: timedelta = timedelta(minutes=2)
) -> AsyncIterator[tuple[EmbeddedSystem, httpx.AsyncClient]]:
    settings = RuntimeSettings(data_dir=tmp_path / "data", embedded_runner=embedded_runner)
    system = EmbeddedSystem(settings, lease_period=lease_period)
    async with system.running():
        transport = httpx.ASGITransport(app=system.api())
        headers = admin_headers(settings)
        async with httpx.AsyncClient(transport=transport, base_url="http://conveyor", headers=headers) as http:
            yield system, http


async def dispatch(http: httpx.AsyncClient, root: Path) -> str:
    registered = await http.post("/api/repositories", json={"name": "demo", "url": str(root)})
    assert registered.status_code == 201, registered.text
    dispatched = await http.post("/api/runs", json={"repository": "demo"})
    assert dispatched.status_code == 202, dispatched.text
    return str(dispatched.json()["id"])


async def register(http: httpx.AsyncClient, name: str, labels: list[str]) -> str:
    response = await http.post("/api/runners", json={"name": name, "labels": labels})
    assert response.status_code == 201, response.text
    CREDENTIALS[response.json()["id"]] = {"Authorization": f"Bearer {response.json()['credential']}"}
    return str(response.json()["id"])


CREDENTIALS: dict[str, dict[str, str]] = {}
"""The Authorization header of each runner registered, by its id: only its own credential leases for it."""


async def queue_reason(http: httpx.AsyncClient, job_id: str) -> str | None:
    async with asyncio.timeout(10):
        while True:
            waiting = {row["job"]: row for row in (await http.get("/api/queue")).json()}
            if job_id in waiting:
                return waiting[job_id]["reason"]  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)


async def test_two_remote_runners_polling_for_one_job_exactly_one_gets_it(
    tmp_path: Path, repository: Callable[..., Path]
) -> None:
    root = repository({".github/workflows/ci.yml": WORKFLOW})
    async with edge(tmp_path, embedded_runner=False) as (system, http):
        first, second = await register(http, "a", ["Linux"]), await register(http, "b", ["linux", "x64"])
        polls = [
            asyncio.create_task(
                http.post(f"/api/runners/{runner_id}/lease", params={"wait": 3}, headers=CREDENTIALS[runner_id])
            )
            for runner_id in (first, second)
        ]
        await asyncio.sleep(0.2)
        run_id = await dispatch(http, root)
        answers = await asyncio.gather(*polls)

        assert sorted(answer.status_code for answer in answers) == [200, 204]
        [leased] = [answer.json() for answer in answers if answer.status_code == 200]
        assert (leased["run_id"], leased["job_id"], leased["attempt"]) == (run_id, "ci.build", 1)
        assert await queue_reason(http, "ci.train") == "no runner has the labels: linux, gpu"
        assigned = await system.log.read(0, types=[JobAssigned.event_type()])
        assert [envelope.event.job_id for envelope in assigned] == ["ci.build"]  # type: ignore[attr-defined]
        runners = {runner["id"]: runner for runner in (await http.get("/api/runners")).json()}
        holder = first if answers[0].status_code == 200 else second
        assert runners[holder]["status"] == "busy"
        assert runners[holder]["job"]["job"] == "ci.build"


async def test_a_heartbeat_renews_a_lease_and_after_the_run_is_cancelled_the_lease_is_gone(
    tmp_path: Path, repository: Callable[..., Path], until: Until
) -> None:
    root = repository({".github/workflows/ci.yml": WORKFLOW})
    async with edge(tmp_path, embedded_runner=False) as (system, http):
        runner_id = await register(http, "box", ["linux"])
        run_id = await dispatch(http, root)
        leased = await http.post(f"/api/runners/{runner_id}/lease", params={"wait": 10}, headers=CREDENTIALS[runner_id])
        assert leased.status_code == 200, leased.text
        heartbeat = f"/api/runners/{runner_id}/leases/{leased.json()['lease_id']}/heartbeat"

        renewed = await http.post(heartbeat, headers=CREDENTIALS[runner_id])
        assert renewed.status_code == 200, renewed.text
        renewals = await system.log.read(0, types=[LeaseRenewed.event_type()])
        assert [e.event.lease_id for e in renewals] == [leased.json()["lease_id"]]  # type: ignore[attr-defined]

        assert (await http.post(f"/api/runs/{run_id}/cancel")).status_code == 202
        run = await until(http, run_id, lambda run: run["status"] == "completed")
        gone = await http.post(heartbeat, headers=CREDENTIALS[runner_id])

        assert run["conclusion"] == "cancelled"
        assert gone.status_code == 410
        assert "completed" in gone.json()["detail"]


async def test_a_job_whose_runner_was_killed_is_retried_and_the_run_succeeds(
    tmp_path: Path, repository: Callable[..., Path], until: Until
) -> None:
    workflow = WORKFLOW.split("  train:")[0]
    root = repository({".github/workflows/ci.yml": workflow})
    async with edge(tmp_path, embedded_runner=False, lease_period=timedelta(seconds=1)) as (system, http):
        doomed = await register(http, "doomed", ["linux"])
        run_id = await dispatch(http, root)
        leased = await http.post(f"/api/runners/{doomed}/lease", params={"wait": 10}, headers=CREDENTIALS[doomed])
        assert leased.status_code == 200, leased.text
        # The runner dies here: it never heartbeats. The embedded runner starts only now, so it cannot race it.
        agent = asyncio.create_task(consume(system.log, system.runner.consumer()))
        try:
            run = await until(http, run_id, lambda run: run["status"] == "completed")
        finally:
            agent.cancel()
            await asyncio.gather(agent, return_exceptions=True)

        assert run["conclusion"] == "success"
        [job] = run["jobs"]
        assert (job["attempt"], job["runner"], job["conclusion"]) == (2, "local", "success")
        lost = [e.event for e in await system.log.read(0, types=[JobLost.event_type()])]
        assert [(event.attempt, event.lease_id) for event in lost] == [  # type: ignore[attr-defined]
            (1, leased.json()["lease_id"])
        ]
        logs = (await http.get(f"/api/runs/{run_id}/jobs/build/logs")).json()["lines"]
        assert [line["text"] for line in logs] == ["built on attempt 1"]


async def test_the_embedded_runner_leases_each_attempt_once_and_keeps_a_short_lease_alive(
    tmp_path: Path, repository: Callable[..., Path], until: Until
) -> None:
    workflow = """
on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        leg: [1, 2, 3]
    steps:
      - run: sleep 1.5 && echo "leg ${{ matrix.leg }} done"
"""
    root = repository({".github/workflows/ci.yml": workflow})
    async with edge(tmp_path, embedded_runner=True, lease_period=timedelta(seconds=0.6)) as (system, http):
        run_id = await dispatch(http, root)
        run = await until(http, run_id, lambda run: run["status"] == "completed")

        assert run["conclusion"] == "success"
        events: dict[str, list[Any]] = {}
        for cls in (JobQueued, JobAssigned, JobStarted, LeaseRenewed, JobLost):
            events[cls.__name__] = [e.event for e in await system.log.read(0, types=[cls.event_type()])]
        started = Counter((event.job_id, event.attempt) for event in events["JobStarted"])
        assert len(events["JobQueued"]) == 3
        assert set(started.values()) == {1}
        assert len(started) == 3
        assert {event.runner_id for event in events["JobAssigned"]} == {"local"}
        assert events["JobLost"] == []
        assert len(events["LeaseRenewed"]) >= 3
