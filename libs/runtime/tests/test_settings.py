"""The runtime's settings: read from `CONVEYOR_*` variables, with every path under the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from conveyor_runtime import RuntimeSettings, describe_projections
from pydantic import ValidationError


def test_defaults_keep_everything_under_dot_conveyor_on_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONVEYOR_DATA_DIR", "CONVEYOR_HOST", "CONVEYOR_PORT", "CONVEYOR_LOG_SYNC"):
        monkeypatch.delenv(name, raising=False)

    settings = RuntimeSettings()

    assert (settings.host, settings.port, settings.log_sync) == ("127.0.0.1", 8080, "NORMAL")
    assert settings.log_path == Path(".conveyor/events.db")
    assert settings.projections_path == Path(".conveyor/projections.db")
    assert settings.work_dir == Path(".conveyor/work")


def test_settings_come_from_prefixed_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONVEYOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONVEYOR_PORT", "9090")
    monkeypatch.setenv("CONVEYOR_LOG_SYNC", "FULL")
    monkeypatch.setenv("PORT", "1")

    settings = RuntimeSettings()

    assert settings.port == 9090
    assert settings.log_sync == "FULL"
    assert settings.log_path == tmp_path / "events.db"


@pytest.mark.parametrize(
    ("name", "value"),
    [("CONVEYOR_PORT", "70000"), ("CONVEYOR_LOG_SYNC", "SOMETIMES"), ("CONVEYOR_RUNNER_CONCURRENCY", "0")],
)
def test_out_of_range_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match=name.removeprefix("CONVEYOR_").lower()):
        RuntimeSettings()


@pytest.mark.parametrize(
    "url",
    ["postgresql://ci:pw@db.internal:5432/conveyor", "postgres://ci:pw@db.internal:5432/conveyor",
     "postgresql+psycopg://ci:pw@db.internal:5432/conveyor"],
)
def test_a_database_url_is_postgresql_run_through_asyncpg(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", url)

    settings = RuntimeSettings()

    assert settings.database_url == "postgresql+asyncpg://ci:pw@db.internal:5432/conveyor"
    assert describe_projections(settings) == "postgresql://ci@db.internal:5432/conveyor"  # never the password


@pytest.mark.parametrize("url", ["mysql://ci@db/conveyor", "db.internal:5432/conveyor"])
def test_a_database_url_of_another_kind_is_refused_with_an_example(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", url)

    with pytest.raises(ValidationError, match=r"CONVEYOR_DATABASE_URL must be a PostgreSQL URL such as postgresql://"):
        RuntimeSettings()


def test_without_a_database_url_the_read_models_are_the_data_directorys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEYOR_DATABASE_URL", raising=False)
    monkeypatch.setenv("CONVEYOR_DATA_DIR", "/srv/conveyor")

    assert describe_projections(RuntimeSettings()) == "/srv/conveyor/projections.db"
