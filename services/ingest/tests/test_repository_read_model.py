"""The repositories read model: sealed secrets as stored, GitHub names, and read models from before them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conveyor_events import Envelope, RepositoryRegistered
from conveyor_ingest import LocalKeyWrapper, Queries, register_repository, seal_for
from conveyor_runtime import SqliteProjections


def placed(event: RepositoryRegistered, position: int) -> Envelope:
    return Envelope.wrap(event, stream="repositories").placed(position, position)


async def test_a_read_model_from_before_secrets_gains_their_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "projections.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE repositories (name TEXT PRIMARY KEY, url TEXT NOT NULL, default_branch TEXT NOT NULL)")
        db.execute("INSERT INTO repositories VALUES ('app', '/src/app', 'main')")
    db.close()

    store = SqliteProjections(path)

    assert await Queries(store).repositories() == [
        {
            "name": "app",
            "url": "/src/app",
            "default_branch": "main",
            "github": None,
            "has_webhook_secret": False,
            "has_token": False,
        }
    ]


async def test_an_old_registration_named_owner_slash_name_is_found_by_that_github_name(tmp_path: Path) -> None:
    store = SqliteProjections(tmp_path / "projections.db")
    await store.apply([placed(RepositoryRegistered(name="Octo/App", url="/src/app"), 1)])
    assert [row["name"] for row in await Queries(store).github_repositories("octo/app")] == ["Octo/App"]


async def test_registering_again_replaces_github_name_and_secrets(tmp_path: Path) -> None:
    keys = LocalKeyWrapper(bytes(32))
    store = SqliteProjections(tmp_path / "projections.db")
    first = register_repository("app", "/src/app", github="octo/app", token=seal_for("app", "token", "t", keys))
    second = register_repository("app", "/src/app2", github="octo/renamed")
    await store.apply([placed(first, 1), placed(second, 2)])
    queries = Queries(store)
    assert await queries.github_repositories("octo/app") == []
    assert await queries.repository("app") == {
        "name": "app",
        "url": "/src/app2",
        "default_branch": "main",
        "github": "octo/renamed",
        "has_webhook_secret": False,
        "has_token": False,
    }
