"""A real PostgreSQL for the tests that need one: the server of scripts/postgres.sh, and an empty database of the
test's own. The fixtures are found by name, so another test tree uses them by importing them into its conftest.py:

    from libs.runtime.tests.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures, used by name)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

POSTGRES_SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "postgres.sh"
POSTGRES_SETUP_TIMEOUT = 600
"""On a fresh machine Debian's postgresql package is installed in the setup of the first test that needs it."""


@dataclass(frozen=True)
class PostgresServer:
    """The server of scripts/postgres.sh: 127.0.0.1, the role `conveyor` trusted without a password."""

    port: int = 15432
    host: str = "127.0.0.1"
    user: str = "conveyor"

    @classmethod
    def from_environment(cls) -> PostgresServer:
        return cls(port=int(os.environ.get("CONVEYOR_POSTGRES_PORT", "15432")))

    def url(self, database: str = "conveyor") -> str:
        """The SQLAlchemy URL of one of its databases."""
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    async def connect(self, database: str = "conveyor") -> asyncpg.Connection:
        """An asyncpg connection to one of its databases; the caller closes it."""
        return await asyncpg.connect(host=self.host, port=self.port, user=self.user, database=database, timeout=10)

    async def execute(self, statement: str) -> None:
        """Run one statement in the database `conveyor`, outside a transaction (as CREATE DATABASE must be)."""
        connection = await self.connect()
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    async def answers(self) -> bool:
        try:
            await self.execute("SELECT 1")
        except (OSError, TimeoutError, asyncpg.PostgresError):
            return False
        return True


@asynccontextmanager
async def fresh_database(server: PostgresServer) -> AsyncIterator[str]:
    """The SQLAlchemy URL of an empty database with a name of its own, dropped on leaving even if still in use."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    await server.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.url(name)
    finally:
        await server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_postgres() -> None:
    """Run scripts/postgres.sh; fail the test (never skip it) when the script fails."""
    command = ["bash", str(POSTGRES_SCRIPT)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=POSTGRES_SETUP_TIMEOUT - 30, check=False)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"scripts/postgres.sh did not finish within {expired.timeout:.0f}s:\n{expired.stdout!r}")
    if done.returncode != 0:
        pytest.fail(f"scripts/postgres.sh failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _answers(server: PostgresServer) -> bool:
    """Whether the server answers, asked from a thread of its own: the caller may be inside a running loop (a
    session fixture first requested by an async fixture)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, server.answers()).result()


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The server, started by scripts/postgres.sh when none answers; the tests fail (never skip) without one."""
    server = PostgresServer.from_environment()
    if not _answers(server):
        start_postgres()
        if not _answers(server):
            pytest.fail(f"scripts/postgres.sh succeeded, yet {server.url()} does not answer")
    return server


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """The SQLAlchemy URL of an empty database of the test's own, dropped after it."""
    async with fresh_database(postgres_server) as url:
        yield url
