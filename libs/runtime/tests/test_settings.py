"""The runtime's settings: read from `CONVEYOR_*` variables, with every path under the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from conveyor_runtime import RuntimeSettings
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
