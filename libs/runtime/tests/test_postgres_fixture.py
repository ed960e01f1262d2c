"""The `postgres_url` fixture: each test has an empty database of its own on the server of scripts/postgres.sh.

Both tests check that their database is empty, then leave a table in it: whichever runs second would find the
first one's table if the two shared a database."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = pytest.mark.integration

TABLES = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"


async def test_sqlalchemy_opens_an_empty_database_of_the_tests_own(postgres_url: str) -> None:
    engine = create_async_engine(postgres_url)
    try:
        async with engine.begin() as connection:
            assert await connection.scalar(text(TABLES)) == 0
            await connection.execute(text("CREATE TABLE left_behind (id integer)"))
    finally:
        await engine.dispose()


async def test_asyncpg_connects_to_an_empty_database_of_the_tests_own(postgres_url: str) -> None:
    connection = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        assert await connection.fetchval("SELECT current_database()") == postgres_url.rsplit("/", 1)[1]
        assert await connection.fetchval(TABLES) == 0
        await connection.execute("CREATE TABLE left_behind (id integer)")
    finally:
        await connection.close()
