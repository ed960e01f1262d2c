"""Distributed mode: dispatch to first step output, and recovery after a service is killed.

Every service runs as its own process (`conveyor service NAME`) on Kafka topics and a PostgreSQL database of this
benchmark's own, with one `conveyor agent` running the jobs (tests/e2e/distributed.py's `Cluster` starts them).
Baseline, measured in the same run the same way: `conveyor up` (every service in one process, SQLite, the
embedded runner). Each run is one job of one `run: echo` step, dispatched once the previous one completed.

- Dispatch to first output, from the answer to POST /api/runs. First, over 50 runs, until the run's first
  `StepLogged` is readable on the log, seen by a consumer of the benchmark's own (on SQLite it polls the file
  every 5 ms): the output is stored, as in bench_dispatch, and nothing but that consumer watches. Then, over 30
  runs, until GET /api/runs/{id}/jobs/one/logs, polled back to back, answers with a line: what a user sees, the
  projector's lag included; those runs are separate because the polls load ingest, which the runs go through.
  The consumer's times and the events' own `occurred_at` give the breakdown along a run.
- Recovery: each service in turn is SIGKILLed and started again at once; seconds from the kill until its /readyz
  answers 200, and until a run dispatched right after the kill (asked again while ingest is down) completed, on
  the log and in the API. Twice: with the bytecode the first start wrote to a cache of the benchmark's own, as
  an installed package has, and with every module compiled from source at start.

Needs the broker and PostgreSQL of scripts/kafka.sh and scripts/postgres.sh (run here: they return at once when up).

uv run python -m benchmarks bench_distributed
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from conveyor_runtime import EventLog, KafkaEventLog, KafkaTopics, SqliteEventLog

from benchmarks.bench_dispatch import percentile
from benchmarks.bench_webhooks import conveyor, free_port, started
from tests.e2e.distributed import KAFKA_BOOTSTRAP, SERVICES, Cluster, own_topics, until
from tests.postgres import PostgresServer

WARM_UP, RUNS, POLLED_RUNS = 3, 50, 30
POLL = 0.005
KILLED = ("ingest", *SERVICES)
TARGET_P50, TARGET_P99, TARGET_RECOVERY = 0.150, 0.500, 10.0
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
REPOSITORY = "bench"
WORKFLOW = "on: push\njobs:\n  one:\n    runs-on: self-hosted\n    steps:\n      - run: echo first-output\n"
Recovery = tuple[float, float, float]
"""Seconds from the kill until /readyz answered 200, until the run was completed on the log, and in the API."""


def bytecode(cache: Path, *, written: bool) -> dict[str, str]:
    """The environment of a Python process that reads bytecode from `cache` only, and writes it there if `written`."""
    return {"PYTHONPYCACHEPREFIX": str(cache), "PYTHONDONTWRITEBYTECODE": "" if written else "1"}


@dataclass
class BenchCluster(Cluster):
    """The end-to-end tests' cluster, its services started with `python` in their environment."""

    python: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        return {**super().environment(), **self.python}


class Follower:
    """The first event of each type of each run, as a consumer reads the log: (occurred_at, when it was read)."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, tuple[float, float]]] = {}
        self._came = asyncio.Event()

    async def follow(self, log: EventLog) -> None:
        async for envelope in log.subscribe(await log.head()):
            events = self.runs.setdefault(envelope.stream, {})
            events.setdefault(envelope.type, (envelope.occurred_at.timestamp(), time.time()))
            self._came.set()

    async def seen(self, run_id: str, event_type: str, timeout: float = 60) -> float:
        """When the first `event_type` of the run was read."""
        async with asyncio.timeout(timeout):
            while event_type not in self.runs.get(run_id, {}):
                self._came.clear()
                await self._came.wait()
        return self.runs[run_id][event_type][1]


@dataclass
class Api:
    client: httpx.AsyncClient
    polls: list[float] = field(default_factory=list)
    """Seconds each request to the logs endpoint took."""

    async def dispatch(self, timeout: float = 60) -> str:
        """A run of the repository dispatched, asked again while the API does not take it; its id."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = await self.client.post("/api/runs", json={"repository": REPOSITORY})
                if answer.status_code == 202:
                    return str(answer.json()["id"])
                problem = f"{answer.status_code} {answer.text}"
            except httpx.TransportError as error:
                problem = repr(error)
            if time.monotonic() > deadline:
                raise RuntimeError(f"no dispatch was taken for {timeout:.0f} s; the last answer: {problem}")
            await asyncio.sleep(0.02)

    async def first_line(self, run_id: str, timeout: float = 60) -> float:
        """When the logs endpoint first answered with a line of the run's job."""
        async with asyncio.timeout(timeout):
            while True:
                asked = time.time()
                answer = await self.client.get(f"/api/runs/{run_id}/jobs/one/logs")
                self.polls.append(time.time() - asked)
                if answer.status_code == 200 and answer.json()["lines"]:
                    return time.time()
                await asyncio.sleep(POLL)

    async def completed(self, run_id: str, timeout: float = 120) -> float:
        """When the API first showed the run completed (it must have succeeded)."""
        async with asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    answer = await self.client.get(f"/api/runs/{run_id}")
                    if answer.status_code == 200 and answer.json()["status"] == "completed":
                        assert answer.json()["conclusion"] == "success", answer.text
                        return time.time()
                await asyncio.sleep(0.02)

    async def ready(self, url: str, timeout: float = 120) -> float:
        """When `url`/readyz first answered 200."""
        async with asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await self.client.get(f"{url}/readyz")).status_code == 200:
                        return time.time()
                await asyncio.sleep(0.01)


@dataclass
class Sample:
    """One run: wall-clock times of its POST sent and answered, and of its first line in the API (if polled)."""

    run_id: str
    sent: float
    answered: float
    visible: float | None


@dataclass
class Measured:
    stored: list[Sample]
    shown: list[Sample]
    follower: Follower
    polls: list[float]
    recoveries: dict[str, dict[str, Recovery]] = field(default_factory=dict)
    """Per way of starting Python, per service killed."""

    def until_stored(self) -> list[float]:
        """Seconds from the POST's answer until the run's first `StepLogged` was readable."""
        return [self.follower.runs[s.run_id]["StepLogged"][1] - s.answered for s in self.stored]

    def until_shown(self) -> list[float]:
        """Seconds from the POST's answer until the logs endpoint answered with a line."""
        return [s.visible - s.answered for s in self.shown if s.visible is not None]

    def slowest(self) -> Sample:
        return max(self.stored, key=lambda s: self.follower.runs[s.run_id]["StepLogged"][1] - s.answered)

    def along(self, samples: list[Sample]) -> dict[str, tuple[float, float]]:
        """Per event type, the median seconds after the POST was sent that it occurred and became readable."""
        offsets: dict[str, list[tuple[float, float]]] = {}
        for sample in samples:
            offsets.setdefault("POST answered", []).append((sample.answered - sample.sent,) * 2)
            for event_type, (occurred, seen) in self.follower.runs[sample.run_id].items():
                offsets.setdefault(event_type, []).append((occurred - sample.sent, seen - sample.sent))
            if sample.visible is not None:
                offsets.setdefault("first line in the API", []).append((sample.visible - sample.sent,) * 2)
        return {
            name: (statistics.median(o for o, _ in pairs), statistics.median(s for _, s in pairs))
            for name, pairs in offsets.items()
        }


async def dispatched(api: Api, follower: Follower, count: int, *, polled: bool) -> list[Sample]:
    samples = []
    for _ in range(count):
        sent = time.time()
        run_id = await api.dispatch()
        answered = time.time()
        visible = await api.first_line(run_id) if polled else None
        await follower.seen(run_id, "RunCompleted")
        samples.append(Sample(run_id, sent, answered, visible))
    return samples


async def latencies(client: httpx.AsyncClient, log: EventLog) -> tuple[Api, Measured]:
    api, follower = Api(client), Follower()
    follow = asyncio.create_task(follower.follow(log))
    try:
        await dispatched(api, follower, WARM_UP, polled=False)
        stored = await dispatched(api, follower, RUNS, polled=False)
        shown = await dispatched(api, follower, POLLED_RUNS, polled=True)
        return api, Measured(stored, shown, follower, api.polls)
    finally:
        follow.cancel()
        await asyncio.gather(follow, return_exceptions=True)


async def recovery(cluster: Cluster, api: Api, follower: Follower, name: str) -> Recovery:
    for url in cluster.probes.values():
        await api.ready(url)
    await asyncio.sleep(1)  # the agent back in its long poll
    killed = time.time()
    cluster.kill(name)
    cluster.restart(name)
    ready = asyncio.create_task(api.ready(cluster.probes[name]))
    run_id = await api.dispatch()
    in_api = await api.completed(run_id)
    on_log = await follower.seen(run_id, "RunCompleted")
    return await ready - killed, on_log - killed, in_api - killed


async def measure_distributed(cluster: Cluster, rounds: dict[str, dict[str, str]]) -> Measured:
    topics = KafkaTopics.with_prefix(cluster.topic_prefix)
    async with (
        httpx.AsyncClient(base_url=cluster.base, headers=cluster.headers, timeout=30) as client,
        KafkaEventLog(cluster.kafka_bootstrap, topics) as log,
    ):
        api, measured = await latencies(client, log)
        follower = Follower()
        follow = asyncio.create_task(follower.follow(log))
        try:
            for way, python in rounds.items():
                for name in KILLED:
                    cluster.environments[name].update(python)
                    measured.recoveries.setdefault(way, {})[name] = await recovery(cluster, api, follower, name)
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)
        return measured


async def measure_embedded(base: str, headers: dict[str, str], events: Path) -> Measured:
    async with (
        httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client,
        SqliteEventLog(events, poll_interval=POLL) as log,
    ):
        return (await latencies(client, log))[1]


def register(base: str, headers: dict[str, str], root: Path) -> None:
    answer = httpx.post(f"{base}/api/repositories", json={"name": REPOSITORY, "url": str(root)}, headers=headers)
    answer.raise_for_status()


def admin_headers(base: str, data: Path) -> dict[str, str] | None:
    """The admin token `conveyor up` wrote into its data directory as a header, once the API takes it."""
    token = data / "admin-token"
    if not token.exists() or not token.read_text():
        return None
    headers = {"Authorization": f"Bearer {token.read_text()}"}
    with contextlib.suppress(httpx.TransportError):
        if httpx.get(f"{base}/api/runs", headers=headers).status_code == 200:
            return headers
    return None


def embedded(folder: Path, root: Path, python: dict[str, str]) -> Measured:
    data, port = folder / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    env = {name: value for name, value in os.environ.items() if not name.startswith("CONVEYOR_")}
    env |= {"CONVEYOR_WEBHOOK_BACKFILL_MINUTES": "0", **python}
    with started(conveyor("up", "--port", str(port), "--data-dir", str(data)), env, folder / "up.log"):
        headers = until(lambda: admin_headers(base, data), lambda: "conveyor up did not start", timeout=90)
        register(base, headers, root)
        return asyncio.run(measure_embedded(base, headers, data / "events.db"))


@contextlib.contextmanager
def database(server: PostgresServer) -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(server.execute(f'CREATE DATABASE "{name}"'))
    try:
        yield server.url(name)
    finally:
        asyncio.run(server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def distributed(folder: Path, root: Path, rounds: dict[str, dict[str, str]]) -> Measured:
    for script in ("kafka.sh", "postgres.sh"):
        subprocess.run(["bash", str(SCRIPTS / script)], check=True, capture_output=True, timeout=600)
    with own_topics(KAFKA_BOOTSTRAP) as prefix, database(PostgresServer.from_environment()) as url:
        cluster = BenchCluster(folder, KAFKA_BOOTSTRAP, prefix, url, python=next(iter(rounds.values())))
        try:
            cluster.start_services()
            cluster.start_agent("agent-1")
            for name in cluster.probes:
                cluster.wait_ready(name)
            register(cluster.base, cluster.headers, root)
            return asyncio.run(measure_distributed(cluster, rounds))
        except BaseException:
            for process in cluster.current.values():
                print(f"--- {process.name}:\n{process.text()[-3000:]}")
            raise
        finally:
            cluster.stop()


def repository(root: Path) -> Path:
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    git = ["git", "-C", str(root), "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run([*git, *args], check=True)
    return root


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:6.1f} / {percentile(samples, 0.99) * 1000:6.1f} ms"


def verdict(samples: list[float]) -> str:
    met = statistics.median(samples) <= TARGET_P50 and percentile(samples, 0.99) <= TARGET_P99
    return "met" if met else "NOT met"


def report(base: Measured, dist: Measured, load: tuple[float, float]) -> None:
    print(f"load average over 1 min, at the start / the end: {load[0]:.2f} / {load[1]:.2f} ({os.cpu_count()} CPUs)")
    print(f"runs one at a time after {WARM_UP} warm-up runs (the p99 of so few samples is their largest)")
    target = f"target p50 <= {TARGET_P50 * 1000:.0f} ms, p99 <= {TARGET_P99 * 1000:.0f} ms"
    print(f"  {'from the POST answered to':46} {'conveyor up p50/p99':>19} {'distributed p50/p99':>19}  {target}")
    rows = [
        (f"first StepLogged readable on the log ({RUNS} runs)", base.until_stored(), dist.until_stored(), True),
        (f"first line from the logs endpoint ({POLLED_RUNS} runs)", base.until_shown(), dist.until_shown(), True),
        ("(one request to the logs endpoint)", base.polls, dist.polls, False),
    ]
    for label, embedded_samples, samples, targeted in rows:
        print(f"  {label:46} {ms(embedded_samples):>19} {ms(samples):>19}  {verdict(samples) if targeted else ''}")
    ratio = statistics.median(dist.until_stored()) / statistics.median(base.until_stored())
    print(f"  ratio distributed / conveyor up, p50 until stored: {ratio:.2f}x")

    print("\nalong a run, ms after the POST was sent: when each event occurred / was readable on the log")
    columns = [base.along(base.stored + base.shown), dist.along(dist.stored + dist.shown), dist.along([dist.slowest()])]
    print(f"  {'':24} {'conveyor up (median)':>21} {'distributed (median)':>21} {'distributed (slowest)':>21}")
    for name in sorted(columns[1], key=lambda name: columns[1][name][1]):
        cells = [f"{c[name][0] * 1000:7.1f} / {c[name][1] * 1000:7.1f}" if name in c else "-" for c in columns]
        print(f"  {name:24} {cells[0]:>21} {cells[1]:>21} {cells[2]:>21}")

    print(f"\nrecovery after SIGKILL, started again at once: s after the kill (target <= {TARGET_RECOVERY:.0f} s)")
    for way, recoveries in dist.recoveries.items():
        print(f"  Python {way}\n  {'service':10} {'/readyz 200':>12} {'run done (log)':>15} {'run done (API)':>15}")
        for name, (ready, on_log, in_api) in recoveries.items():
            met = "met" if max(ready, in_api) <= TARGET_RECOVERY else "NOT met"
            print(f"  {name:10} {ready:12.2f} {on_log:15.2f} {in_api:15.2f}  {met}")


def main() -> None:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        root = repository(folder / "repo")
        cached = bytecode(folder / "bytecode", written=True)
        rounds = {"from a bytecode cache": cached, "compiled from source": bytecode(folder / "none", written=False)}
        (folder / "up").mkdir()
        base = embedded(folder / "up", root, cached)
        (folder / "cluster").mkdir()
        dist = distributed(folder / "cluster", root, rounds)
    report(base, dist, (load, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
