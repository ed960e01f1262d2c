"""The kill -9 soak: runs go on while the services are killed without warning and started again.

Every service runs as its own process on Kafka and PostgreSQL, and two agents run the jobs. While 100 runs of
five steps each execute, each service process in turn is killed with SIGKILL at a random moment and started
again a moment later. Afterwards every run has reached its conclusion, every job attempt started exactly once,
no log line was lost or stored twice, and read models rebuilt from offset 0 equal the live ones. A second test
restarts the broker and PostgreSQL themselves in the middle of runs.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conveyor_events import JobStarted, RunCompleted, RunRequested, StepLogged
from conveyor_runtime import KafkaEventLog, KafkaTopics, PostgresProjections, rebuild

from tests.e2e.distributed import SERVICES, Cluster, start_kafka, until
from tests.postgres import PostgresServer, fresh_database, start_postgres

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

STEPS = 5
WORKFLOW = "on: push\njobs:\n  soak:\n    runs-on: self-hosted\n    steps:\n" + "".join(
    f'      - run: sleep 0.1; echo "step {number}"\n' for number in range(1, STEPS + 1)
)
KILLED = ("ingest", *SERVICES)


@pytest.fixture
def cluster(tmp_path: Path, kafka_broker: str, topic_prefix: str, postgres_url: str) -> Iterator[Cluster]:
    started = Cluster(tmp_path, kafka_broker, topic_prefix, postgres_url)
    try:
        started.start_services()
        for agent in ("agent-1", "agent-2"):
            started.start_agent(agent, concurrency=4)
        yield started
    finally:
        started.stop()


def dispatch(cluster: Cluster, repository: str) -> str:
    """Dispatch a run, asking again while ingest is down; the run's id.

    A dispatch that ingest stored but could not answer (killed in between) is asked again and makes a second
    run: what is accepted is never lost, and the checks below count every run the log holds.
    """
    deadline = time.monotonic() + 120
    while True:
        try:
            answer = httpx.post(
                f"{cluster.base}/api/runs", json={"repository": repository}, headers=cluster.headers, timeout=30
            )
            if answer.status_code == 202:
                return str(answer.json()["id"])
            problem = f"{answer.status_code} {answer.text}"
        except httpx.TransportError as error:
            problem = repr(error)
        assert time.monotonic() < deadline, f"no dispatch was taken for 120 s; the last answer: {problem}"
        time.sleep(0.2)


def register(cluster: Cluster, root: Path) -> None:
    answer = httpx.post(
        f"{cluster.base}/api/repositories", json={"name": "soak", "url": str(root)}, headers=cluster.headers, timeout=30
    )
    assert answer.status_code == 201, answer.text


class Chaos(threading.Thread):
    """Kills the services one after another, in a shuffled order, each at a random moment, and starts them again
    (the next kill waits until the one started again is ready)."""

    def __init__(self, cluster: Cluster, seed: int) -> None:
        super().__init__(name="chaos", daemon=True)
        self.cluster = cluster
        self.random = random.Random(seed)
        self.stopping = threading.Event()
        self.kills: Counter[str] = Counter()
        self.problem: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                order = list(KILLED)
                self.random.shuffle(order)
                for name in order:
                    if self.stopping.wait(self.random.uniform(0.5, 3.0)):
                        return
                    self.cluster.kill(name)
                    self.kills[name] += 1
                    time.sleep(self.random.uniform(0.0, 1.5))
                    self.cluster.restart(name)
                    self.cluster.wait_ready(name)  # up again before the next kill, so that the runs move on
        except BaseException as error:  # reported by the test, which a thread cannot fail
            self.problem = error

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)
        assert self.problem is None, f"the chaos thread failed: {self.problem!r}"


class Conclusions:
    """Whether every run completed, as the API shows them; what the runs still open look like, when not."""

    def __init__(self, cluster: Cluster, run_ids: list[str]) -> None:
        self.cluster = cluster
        self.run_ids = run_ids
        self.open: dict[str, Any] = {}

    def __call__(self) -> dict[str, Any] | None:
        try:
            runs = {run_id: self.cluster.get(f"/api/runs/{run_id}") for run_id in self.run_ids}
        except httpx.HTTPError:
            return None
        self.open = {run_id: run for run_id, run in runs.items() if run["status"] != "completed"}
        return None if self.open else runs

    def why_not(self) -> str:
        events = self.cluster.events()
        return f"{len(self.open)} runs did not complete: " + "; ".join(
            f"{run_id} ({run['status']}, jobs {[(job['id'], job['status']) for job in run['jobs']]}, events"
            f" {[envelope.type for envelope in events if envelope.stream == run_id]})"
            for run_id, run in list(self.open.items())[:5]
        )


def check_the_log(cluster: Cluster, run_ids: list[str]) -> None:
    """Every run the log holds concluded; each job attempt started once; each log line was stored once."""
    events = cluster.events()
    requested = {envelope.event.run_id for envelope in events if isinstance(envelope.event, RunRequested)}
    concluded = {envelope.event.run_id for envelope in events if isinstance(envelope.event, RunCompleted)}
    assert set(run_ids) <= requested
    assert requested == concluded, f"runs without a conclusion: {sorted(requested - concluded)}"
    starts = Counter(
        (envelope.event.run_id, envelope.event.job_id, envelope.event.attempt)
        for envelope in events
        if isinstance(envelope.event, JobStarted)
    )
    assert starts, "no job started"
    assert [attempt for attempt, count in starts.items() if count != 1] == []
    lines: defaultdict[tuple[str, str], Counter[int]] = defaultdict(Counter)
    texts: defaultdict[tuple[str, str], dict[int, str]] = defaultdict(dict)
    for envelope in events:
        if isinstance(envelope.event, StepLogged):
            key = (envelope.event.run_id, envelope.event.job_id)
            for offset, line in enumerate(envelope.event.lines):
                lines[key][envelope.event.first_line + offset] += 1
                texts[key][envelope.event.first_line + offset] = line.text
    for key, numbers in lines.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), f"lines missing in {key}: {sorted(numbers)}"
        assert set(numbers.values()) == {1}, f"lines stored twice in {key}: {numbers}"
        steps = [texts[key][number] for number in sorted(numbers) if texts[key][number].startswith("step ")]
        assert steps == [f"step {n}" for n in range(1, STEPS + 1)], (key, texts[key])


def check_the_read_models(cluster: Cluster, run_ids: list[str], stored: dict[str, Any]) -> None:
    """The API shows every run's one log, and read models rebuilt from offset 0 equal the live ones."""
    for run_id in run_ids:
        [job] = stored[run_id]["jobs"]
        logs = cluster.get(f"/api/runs/{run_id}/jobs/{job['id']}/logs")["lines"]
        echoed = [line["text"] for line in logs if line["text"].startswith("step ")]
        assert echoed == [f"step {number}" for number in range(1, STEPS + 1)], (run_id, logs)

    async def compare() -> None:
        topics = KafkaTopics.with_prefix(cluster.topic_prefix)
        async with (
            KafkaEventLog(cluster.kafka_bootstrap, topics) as log,
            fresh_database(PostgresServer.from_environment()) as url,
        ):
            live, rebuilt = PostgresProjections(cluster.database_url), PostgresProjections(url)
            try:
                # The agents still poll while this compares, and a runner seen again is an event: the two are
                # compared at one position of the log, taken again when the log moved on meanwhile.
                for _ in range(5):
                    head = await log.head()
                    async with asyncio.timeout(60):
                        while await live.position() < head:
                            await asyncio.sleep(0.1)
                    live_rows = await live.dump()
                    if await live.position() == head and await rebuild(log, rebuilt) == head:
                        break
                else:
                    pytest.fail("the log kept moving while the read models were compared")
                assert await rebuilt.dump() == live_rows
            finally:
                await live.close()
                await rebuilt.close()

    asyncio.run(compare())


@pytest.mark.timeout(900)
def test_runs_conclude_while_every_service_is_killed_and_restarted(
    cluster: Cluster, repository: Callable[..., Path]
) -> None:
    register(cluster, repository({".github/workflows/soak.yml": WORKFLOW}))
    chaos = Chaos(cluster, seed=7)
    chaos.start()
    try:
        run_ids = [dispatch(cluster, "soak") for _ in range(100)]
        deadline = time.monotonic() + 120
        while min(chaos.kills[name] for name in KILLED) < 1 or time.monotonic() < deadline - 110:
            assert time.monotonic() < deadline, f"not every service was killed: {chaos.kills}"
            time.sleep(0.5)
    finally:
        chaos.stop()
    assert min(chaos.kills[name] for name in KILLED) >= 1, chaos.kills

    conclusions = Conclusions(cluster, run_ids)
    stored = until(conclusions, lambda: f"{conclusions.why_not()}; kills: {chaos.kills}", timeout=300)
    assert {run["conclusion"] for run in stored.values()} == {"success"}, stored
    check_the_log(cluster, run_ids)
    check_the_read_models(cluster, run_ids, stored)


def kill_and_wait(pid: int, what: str) -> None:
    subprocess.run(["kill", "-9", str(pid)], check=True)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"{what} did not die"
        time.sleep(0.1)


def restart_postgres() -> None:
    """SIGKILL PostgreSQL's server, then scripts/postgres.sh starts it again (after its crash recovery)."""
    data = Path(os.environ.get("CONVEYOR_POSTGRES_DATA", "/var/lib/conveyor-postgres"))
    kill_and_wait(int((data / "postmaster.pid").read_text().split()[0]), "PostgreSQL")
    start_postgres()


def restart_kafka() -> None:
    """SIGKILL the broker, then scripts/kafka.sh starts it again."""
    data = Path(os.environ.get("CONVEYOR_KAFKA_DATA", "/var/lib/conveyor-kafka"))
    kill_and_wait(int((data / "broker.pid").read_text().split()[0]), "the broker")
    start_kafka()


@pytest.mark.timeout(900)
def test_runs_conclude_across_a_restart_of_the_broker_and_of_postgresql(
    cluster: Cluster, repository: Callable[..., Path]
) -> None:
    register(cluster, repository({".github/workflows/soak.yml": WORKFLOW}))
    run_ids = [dispatch(cluster, "soak") for _ in range(10)]
    restart_postgres()
    run_ids += [dispatch(cluster, "soak") for _ in range(10)]
    restart_kafka()
    run_ids += [dispatch(cluster, "soak") for _ in range(10)]

    conclusions = Conclusions(cluster, run_ids)
    stored = until(conclusions, conclusions.why_not, timeout=300)
    assert {run["conclusion"] for run in stored.values()} == {"success"}, stored
    check_the_log(cluster, run_ids)
    check_the_read_models(cluster, run_ids, stored)
