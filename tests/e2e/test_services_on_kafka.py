"""Every service as a process of its own over the Kafka log and PostgreSQL, with two `conveyor agent`s running
the jobs.

Ingest (the API), the planner, the scheduler, the notifier and the projector each run as `conveyor service NAME`
with `CONVEYOR_EVENT_LOG=kafka` on topics of this test's own and `CONVEYOR_DATABASE_URL` naming a database of its
own. Runs dispatched through the API complete, and every process answers its health probes.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from conveyor_runtime import KafkaTopics

from tests.e2e.test_conveyor_up import CONVEYOR, free_port
from tests.e2e.test_remote_agents import Processes

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

KAFKA_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kafka.sh"
SERVICES = ("planner", "scheduler", "notifier", "projector")
T = TypeVar("T")

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


@pytest.fixture(scope="module")
def kafka_broker() -> str:
    """The broker scripts/kafka.sh runs (started if it is not running); the test fails, never skips, without one."""
    try:
        done = subprocess.run(["bash", str(KAFKA_SCRIPT)], capture_output=True, text=True, timeout=420, check=False)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"scripts/kafka.sh did not finish within {expired.timeout:.0f}s")
    if done.returncode != 0:
        pytest.fail(f"scripts/kafka.sh failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return "127.0.0.1:19092"


@pytest.fixture
def topic_prefix(kafka_broker: str) -> Iterator[str]:
    """Topics of this test's own, made by `conveyor kafka init` and deleted afterwards."""
    prefix = f"e2e-{uuid.uuid4().hex[:12]}"
    made = subprocess.run(
        [CONVEYOR, "kafka", "init", "--prefix", prefix, "--bootstrap", kafka_broker],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    yield prefix
    asyncio.run(delete_topics(kafka_broker, KafkaTopics.with_prefix(prefix)))


async def delete_topics(bootstrap: str, topics: KafkaTopics) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topics.events, topics.checkpoints, topics.logs, topics.dead_letter])
    finally:
        await admin.close()


def probe(url: str) -> tuple[int, dict[str, object]] | None:
    """A health probe's status and body, None while nothing answers there."""
    try:
        response = httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None
    return response.status_code, response.json()


def ready(url: str) -> dict[str, object] | None:
    """The body of `<url>/readyz` once it answers 200, None until then."""
    answer = probe(f"{url}/readyz")
    return answer[1] if answer is not None and answer[0] == 200 else None


def admin_headers(base: str, data: Path) -> dict[str, str] | None:
    """The admin token ingest wrote into the data directory as a header, once the API takes it."""
    token = data / "admin-token"
    if not token.exists() or not token.read_text():
        return None
    headers = {"Authorization": f"Bearer {token.read_text()}"}
    try:
        return headers if httpx.get(f"{base}/api/runs", headers=headers).status_code == 200 else None
    except httpx.TransportError:
        return None


def until(check: Callable[[], T | None], why_not: Callable[[], str], timeout: float) -> T:
    """What `check` gives once it gives something; fails with `why_not()` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (found := check()) is None:
        assert time.monotonic() < deadline, why_not()
        time.sleep(0.1)
    return found


def _not_completed(url: str, headers: dict[str, str]) -> str:
    return f"the run did not complete: {httpx.get(url, headers=headers).text}"


@pytest.mark.timeout(600)  # starting the broker on a fresh machine takes minutes; the run itself well under one
def test_each_service_runs_as_a_process_of_its_own_on_kafka_and_postgresql(
    tmp_path: Path, repository: Callable[..., Path], kafka_broker: str, topic_prefix: str, postgres_url: str
) -> None:
    root = repository({".github/workflows/ci.yml": WORKFLOW})
    data, port = tmp_path / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "CONVEYOR_EVENT_LOG": "kafka",
        "CONVEYOR_KAFKA_BOOTSTRAP": kafka_broker,
        "CONVEYOR_KAFKA_TOPIC_PREFIX": topic_prefix,
        "CONVEYOR_DATABASE_URL": postgres_url,
        "CONVEYOR_DATA_DIR": str(data),
        "CONVEYOR_EMBEDDED_RUNNER": "false",
        "CONVEYOR_WEBHOOK_BACKFILL_MINUTES": "0",
    }
    probes = {"ingest": base} | {name: f"http://127.0.0.1:{free_port()}" for name in SERVICES}
    processes = Processes(tmp_path)
    try:
        started = {"ingest": processes.start("ingest", "service", "ingest", "--port", str(port), env=env)}
        for name in SERVICES:
            health_port = probes[name].rsplit(":", 1)[1]
            started[name] = processes.start(name, "service", name, "--health-port", health_port, env=env)
        admin = until(partial(admin_headers, base, data), lambda: processes.output(started["ingest"]), timeout=90)
        token = admin["Authorization"].removeprefix("Bearer ")
        for agent in ("agent-1", "agent-2"):
            options = ["--server", base, "--name", agent, "--work-dir", str(tmp_path / agent), "--concurrency", "1"]
            started[agent] = processes.start(agent, "agent", *options, env={"CONVEYOR_AGENT_REGISTRATION_TOKEN": token})

        for name, url in probes.items():

            def why_not(name: str = name) -> str:
                answer = probe(f"{probes[name]}/readyz")
                return f"{name} is not ready ({answer}):\n{processes.output(started[name])[-3000:]}"

            body = until(partial(ready, url), why_not, timeout=90)
            loops = {"schedules": "ready"} if name == "ingest" else {name: "ready"}
            assert body == {"status": "ok", "log": "open", "loops": loops}
            assert probe(f"{url}/healthz") == (200, body)

        registered = httpx.post(f"{base}/api/repositories", json={"name": "r", "url": str(root)}, headers=admin)
        assert registered.status_code == 201, registered.text
        run_ids = []
        for _ in range(4):
            dispatched = httpx.post(f"{base}/api/runs", json={"repository": "r"}, headers=admin)
            assert dispatched.status_code == 202, dispatched.text
            run_ids.append(dispatched.json()["id"])

        def completed(run_id: str) -> dict[str, Any] | None:
            run: dict[str, Any] = httpx.get(f"{base}/api/runs/{run_id}", headers=admin).json()
            return run if run.get("status") == "completed" else None

        runners = set()
        for run_id in run_ids:
            url = f"{base}/api/runs/{run_id}"
            run = until(partial(completed, run_id), partial(_not_completed, url, admin), 120)
            assert run["conclusion"] == "success", run
            assert {job["key"]: job["conclusion"] for job in run["jobs"]} == {"build": "success", "test": "success"}
            runners |= {job["runner"] for job in run["jobs"]}
            for job, line in (("build", f"built {run['sha']}"), ("test", "tested after build")):
                logs = httpx.get(f"{base}/api/runs/{run_id}/jobs/{job}/logs", headers=admin).json()["lines"]
                assert [entry["text"] for entry in logs] == [line]
        assert len(runners) == 2  # each agent took jobs: four builds queued at once, one job at a time each
        until(
            lambda: True if "concluded: success" in processes.output(started["notifier"]) else None,
            lambda: "the notifier did not see the run end",
            timeout=30,
        )
        alive = {name: (probe(f"{url}/healthz") or (None,))[0] for name, url in probes.items()}
        assert alive == dict.fromkeys(probes, 200)
    finally:
        ended = processes.stop()

    assert [status for status, _ in ended] == [0] * len(ended), "\n".join(output[-3000:] for _, output in ended)
    assert not (data / "events.db").exists()  # every event went through Kafka
    assert not (data / "projections.db").exists()  # and every read model is PostgreSQL's
