"""Conveyor in distributed mode for the end-to-end tests: each service a process of its own (`conveyor service
NAME`) on Kafka topics and a PostgreSQL database of the test's own, with `conveyor agent` processes running jobs.

A `Cluster` starts them, kills and restarts any of them, and reads what they wrote: the API, and the events
straight off the Kafka topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import pytest
from conveyor_events import Envelope
from conveyor_runtime import KafkaEventLog, KafkaTopics, delete_kafka_topics

from tests.e2e.processes import CONVEYOR
from tests.e2e.test_conveyor_up import free_port

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = ROOT / "scripts" / "kafka.sh"
SERVICES = ("planner", "scheduler", "notifier", "projector")
"""The services besides ingest (the API), each with its health probes on a port of its own."""
T = TypeVar("T")


KAFKA_BOOTSTRAP = "127.0.0.1:19092"


def start_kafka() -> None:
    """The broker scripts/kafka.sh runs, started when it does not answer; the test fails, never skips, without one."""
    try:
        done = subprocess.run(["bash", str(KAFKA_SCRIPT)], capture_output=True, text=True, timeout=420, check=False)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"scripts/kafka.sh did not finish within {expired.timeout:.0f}s")
    if done.returncode != 0:
        pytest.fail(f"scripts/kafka.sh failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@contextlib.contextmanager
def own_topics(kafka_broker: str) -> Iterator[str]:
    """The prefix of topics of a test's own, made by `conveyor kafka init` and deleted afterwards."""
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
    asyncio.run(delete_kafka_topics(kafka_broker, KafkaTopics.with_prefix(prefix)))


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


def until(check: Callable[[], T | None], why_not: Callable[[], str], timeout: float) -> T:
    """What `check` gives once it gives something; fails with `why_not()` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (found := check()) is None:
        assert time.monotonic() < deadline, why_not()
        time.sleep(0.1)
    return found


@dataclass
class Process:
    """One incarnation of a service or an agent: its process and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    output: Path
    file: IO[bytes]

    def text(self) -> str:
        return self.output.read_text(errors="replace")


@dataclass
class Cluster:
    """The services and agents of one test, over its Kafka topics and PostgreSQL database."""

    folder: Path
    kafka_bootstrap: str
    topic_prefix: str
    database_url: str
    port: int = field(default_factory=free_port)
    probes: dict[str, str] = field(default_factory=dict)
    """Each service's base URL for /healthz and /readyz (ingest's is the API's)."""
    current: dict[str, Process] = field(default_factory=dict)
    """The live incarnation of each service and agent, by name."""
    ended: list[tuple[Process, int | None]] = field(default_factory=list)
    """Every incarnation that ended (killed, or stopped), with its exit status (None: it had to be killed)."""
    commands: dict[str, list[str]] = field(default_factory=dict)
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    token: str | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def environment(self) -> dict[str, str]:
        return {
            "CONVEYOR_EVENT_LOG": "kafka",
            "CONVEYOR_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "CONVEYOR_KAFKA_TOPIC_PREFIX": self.topic_prefix,
            "CONVEYOR_DATABASE_URL": self.database_url,
            "CONVEYOR_DATA_DIR": str(self.data),
            "CONVEYOR_EMBEDDED_RUNNER": "false",
            "CONVEYOR_WEBHOOK_BACKFILL_MINUTES": "0",
        }

    def start_services(self) -> None:
        """Ingest and the other services, each its own process; returns once the API takes the admin token and
        every service is ready (a request that waits for the read models must not wait for a projector starting)."""
        self.probes["ingest"] = self.base
        self.add("ingest", ["service", "ingest", "--port", str(self.port)], self.environment())
        for name in SERVICES:
            health_port = free_port()
            self.probes[name] = f"http://127.0.0.1:{health_port}"
            self.add(name, ["service", name, "--health-port", str(health_port)], self.environment())
        headers = until(self._admin, lambda: self.current["ingest"].text(), timeout=90)
        self.token = headers["Authorization"].removeprefix("Bearer ")
        for name in self.probes:
            self.wait_ready(name)

    def start_agent(self, name: str, *, concurrency: int = 1) -> None:
        assert self.token is not None, "start the services first: an agent registers with the admin token"
        options = ["--server", self.base, "--name", name, "--work-dir", str(self.folder / name)]
        command = ["agent", *options, "--concurrency", str(concurrency)]
        self.add(name, command, {"CONVEYOR_AGENT_REGISTRATION_TOKEN": self.token})

    def add(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.commands[name], self.environments[name] = command, env
        self._start(name)

    def _start(self, name: str) -> None:
        incarnation = sum(1 for process, _ in self.ended if process.name == name)
        output = self.folder / f"{name}-{incarnation}.log"
        file = output.open("wb")
        environment = {**os.environ, **self.environments[name]}
        popen = subprocess.Popen(
            [CONVEYOR, *self.commands[name]], stdout=file, stderr=subprocess.STDOUT, env=environment
        )
        self.current[name] = Process(name, popen, output, file)

    def kill(self, name: str) -> None:
        """SIGKILL the live incarnation of `name`: no clean-up, no goodbye."""
        process = self.current[name]
        process.popen.send_signal(signal.SIGKILL)
        self.ended.append((process, process.popen.wait()))
        process.file.close()

    def restart(self, name: str) -> None:
        self._start(name)

    def wait_ready(self, name: str, timeout: float = 90) -> dict[str, object]:
        def why_not() -> str:
            return f"{name} is not ready ({probe(f'{self.probes[name]}/readyz')}):\n{self.current[name].text()[-3000:]}"

        return until(partial(ready, self.probes[name]), why_not, timeout=timeout)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _admin(self) -> dict[str, str] | None:
        """The admin token ingest wrote into the data directory as a header, once the API takes it."""
        token = self.data / "admin-token"
        if not token.exists() or not token.read_text():
            return None
        headers = {"Authorization": f"Bearer {token.read_text()}"}
        try:
            return headers if httpx.get(f"{self.base}/api/runs", headers=headers).status_code == 200 else None
        except httpx.TransportError:
            return None

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.base}{path}", headers=self.headers, timeout=30)
        response.raise_for_status()
        return response.json()

    def stop(self) -> list[tuple[Process, int | None]]:
        """SIGTERM to every live process at once; each one's exit status (None: it had to be killed)."""
        for process in self.current.values():
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        stopped: list[tuple[Process, int | None]] = []
        for process in self.current.values():
            try:
                status: int | None = process.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
                status = None
            process.file.close()
            stopped.append((process, status))
        self.current.clear()
        self.ended.extend(stopped)
        return stopped

    def events(self) -> list[Envelope]:
        """Every event on the cluster's events topic, in order."""
        return asyncio.run(read_everything(self.kafka_bootstrap, KafkaTopics.with_prefix(self.topic_prefix)))


async def read_everything(bootstrap: str, topics: KafkaTopics) -> list[Envelope]:
    found: list[Envelope] = []
    async with KafkaEventLog(bootstrap, topics) as log:
        while batch := await log.read(found[-1].position if found else 0, 5000):
            found.extend(batch)
    return found


def not_completed(url: str, headers: dict[str, str]) -> str:
    return f"the run did not complete: {httpx.get(url, headers=headers).text}"
