"""Every service as a process of its own over the Kafka log and PostgreSQL, with two `conveyor agent`s running
the jobs.

Ingest (the API), the planner, the scheduler, the notifier and the projector each run as `conveyor service NAME`
with `CONVEYOR_EVENT_LOG=kafka` on topics of this test's own and `CONVEYOR_DATABASE_URL` naming a database of its
own. Runs dispatched through the API complete, and every process answers its health probes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from conveyor_runtime import PostgresProjections

from tests.e2e.distributed import Cluster, not_completed, probe, until
from tests.e2e.processes import CONVEYOR

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

WORKFLOW = """
on: push
jobs:
  build:
    runs-on: self-hosted
    steps:
      - run: sleep 1; echo "built ${{ github.sha }}"
  test:
    runs-on: self-hosted
    needs: build
    steps:
      - run: echo "tested after build"
"""


@pytest.mark.timeout(600)  # starting the broker on a fresh machine takes minutes; the run itself well under one
def test_each_service_runs_as_a_process_of_its_own_on_kafka_and_postgresql(
    tmp_path: Path, repository: Callable[..., Path], kafka_broker: str, topic_prefix: str, postgres_url: str
) -> None:
    root = repository({".github/workflows/ci.yml": WORKFLOW})
    cluster = Cluster(tmp_path, kafka_broker, topic_prefix, postgres_url)
    try:
        cluster.start_services()
        for agent in ("agent-1", "agent-2"):
            cluster.start_agent(agent)
        for name in cluster.probes:
            body = cluster.wait_ready(name)
            loops = {"schedules": "ready"} if name == "ingest" else {name: "ready"}
            assert body == {"status": "ok", "log": "open", "loops": loops}
            assert probe(f"{cluster.probes[name]}/healthz") == (200, body)

        base, admin = cluster.base, cluster.headers
        registered = httpx.post(f"{base}/api/repositories", json={"name": "r", "url": str(root)}, headers=admin)
        assert registered.status_code == 201, registered.text
        run_ids = []
        for _ in range(4):
            dispatched = httpx.post(f"{base}/api/runs", json={"repository": "r"}, headers=admin)
            assert dispatched.status_code == 202, dispatched.text
            run_ids.append(dispatched.json()["id"])

        def completed(run_id: str) -> dict[str, Any] | None:
            run: dict[str, Any] = cluster.get(f"/api/runs/{run_id}")
            return run if run.get("status") == "completed" else None

        runners = set()
        for run_id in run_ids:
            run = until(partial(completed, run_id), partial(not_completed, f"{base}/api/runs/{run_id}", admin), 120)
            assert run["conclusion"] == "success", run
            assert {job["key"]: job["conclusion"] for job in run["jobs"]} == {"build": "success", "test": "success"}
            runners |= {job["runner"] for job in run["jobs"]}
            for job, line in (("build", f"built {run['sha']}"), ("test", "tested after build")):
                logs = cluster.get(f"/api/runs/{run_id}/jobs/{job}/logs")["lines"]
                assert [entry["text"] for entry in logs] == [line]
        assert len(runners) == 2  # each agent took jobs: four builds queued at once, one job at a time each
        until(
            lambda: True if "concluded: success" in cluster.current["notifier"].text() else None,
            lambda: "the notifier did not see the run end",
            timeout=30,
        )
        alive = {name: (probe(f"{url}/healthz") or (None,))[0] for name, url in cluster.probes.items()}
        assert alive == dict.fromkeys(cluster.probes, 200)
    finally:
        ended = cluster.stop()

    assert [status for _, status in ended] == [0] * len(ended), "\n".join(p.text()[-3000:] for p, _ in ended)
    assert not (cluster.data / "events.db").exists()  # every event went through Kafka
    assert not (cluster.data / "projections.db").exists()  # and every read model is PostgreSQL's

    # Replaying a run and rebuilding the read models work on Kafka and PostgreSQL as on the embedded files.
    environment = {**os.environ, **cluster.environment()}
    replayed = subprocess.run(
        [CONVEYOR, "replay", run_ids[0]], capture_output=True, text=True, env=environment, timeout=120, check=False
    )
    assert replayed.returncode == 0, replayed.stderr
    assert "RunRequested" in replayed.stdout
    assert "RunCompleted" in replayed.stdout
    live = asyncio.run(dump(postgres_url))
    rebuilt = subprocess.run(
        [CONVEYOR, "projections", "rebuild"], capture_output=True, text=True, env=environment, timeout=120, check=False
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "read models in postgresql://conveyor@127.0.0.1:" in rebuilt.stdout
    assert asyncio.run(dump(postgres_url)) == live
    assert len(live["runs"]) == 4


async def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    store = PostgresProjections(url)
    try:
        return await store.dump()
    finally:
        await store.close()
