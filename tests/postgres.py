"""A real PostgreSQL for the tests that need one: the server of scripts/postgres.sh, and an empty database of the
test's own (the fixtures `postgres_server` and `postgres_url` of the repository's conftest.py use these)."""

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

POSTGRES_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "postgres.sh"
SCRIPT_TIMEOUT = 570
"""On a fresh machine the script installs Debian's postgresql package first."""


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
        done = subprocess.run(command, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"scripts/postgres.sh did not finish within {expired.timeout:.0f}s:\n{expired.stdout!r}")
    if done.returncode != 0:
        pytest.fail(f"scripts/postgres.sh failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def answers_now(server: PostgresServer) -> bool:
    """Whether the server answers, asked from a thread of its own: the caller may be inside a running loop (a
    session fixture first requested by an async fixture)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, server.answers()).result()
