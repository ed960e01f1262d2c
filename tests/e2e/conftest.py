"""Fixtures of the end-to-end tests that drive a running embedded system through its API, and of those that run
the services apart: the Kafka broker and topics of the test's own (PostgreSQL's are the repository's fixtures),
and `processes`: `conveyor` processes started with their output in files, all stopped at the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conveyor_cli.system import EmbeddedSystem
from conveyor_runtime import RuntimeSettings

from tests.e2e.distributed import KAFKA_BOOTSTRAP, own_topics, start_kafka
from tests.e2e.processes import Processes

RunCheck = Callable[[dict[str, Any]], bool]
Until = Callable[[httpx.AsyncClient, str, RunCheck], Awaitable[dict[str, Any]]]


@pytest.fixture
def settings(tmp_path: Path) -> RuntimeSettings:
    """The system's settings; a test module overrides this fixture to change them."""
    return RuntimeSettings(data_dir=tmp_path / "data")


@pytest.fixture
async def client(settings: RuntimeSettings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the API of every service running in this process, with the admin token it issued."""
    system = EmbeddedSystem(settings)
    async with system.running():
        transport = httpx.ASGITransport(app=system.api())
        headers = admin_headers(settings)
        async with httpx.AsyncClient(transport=transport, base_url="http://conveyor", headers=headers) as http:
            yield http


def admin_headers(settings: RuntimeSettings) -> dict[str, str]:
    """Authorization with the admin token a system writes into its data directory when it first serves the API."""
    return {"Authorization": f"Bearer {(settings.data_dir / 'admin-token').read_text()}"}


async def _until(client: httpx.AsyncClient, run_id: str, ready: RunCheck) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            response = await client.get(f"/api/runs/{run_id}")
            if response.status_code == 200 and ready(body := response.json()):
                return body  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)


@pytest.fixture
def until() -> Until:
    """Wait (30 s at most) until the API shows the run as `ready` says; the run as it was then."""
    return _until


@pytest.fixture(scope="module")
def kafka_broker() -> str:
    """The bootstrap address of the broker scripts/kafka.sh runs, started when it does not answer."""
    start_kafka()
    return KAFKA_BOOTSTRAP


@pytest.fixture
def topic_prefix(kafka_broker: str) -> Iterator[str]:
    """Topics of the test's own, made by `conveyor kafka init` and deleted afterwards."""
    with own_topics(kafka_broker) as prefix:
        yield prefix


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop()
