"""`conveyor webhooks backfill` over a data directory and a fake GitHub: what it redelivers and how it reports."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conveyor_cli.main import app
from typer.testing import CliRunner

if TYPE_CHECKING:
    from tests.fakes.github_api import FakeGitHub

PUBLIC = "http://conveyor.example:8080"


@pytest.fixture
def registered(tmp_path: Path, fake_github: FakeGitHub) -> dict[str, str]:
    """The environment of a data directory with `octo/app` registered with a token, over the fake GitHub."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "init", "-q", "-b", "main", str(clone)], check=True)
    env = {
        "CONVEYOR_DATA_DIR": str(tmp_path / "data"),
        "CONVEYOR_GITHUB_API_URL": fake_github.url,
        "CONVEYOR_PUBLIC_URL": PUBLIC,
        "APP_TOKEN": "ghp_app_token",
    }
    result = CliRunner().invoke(app, ["repo-add", "octo/app", str(clone), "--token-env", "APP_TOKEN"], env=env)
    assert result.exit_code == 0, result.output
    return env


def test_a_missed_delivery_is_redelivered_and_reported(fake_github: FakeGitHub, registered: dict[str, str]) -> None:
    hook = fake_github.add_hook("octo/app", f"{PUBLIC}/webhooks/github")
    fake_github.add_delivery(hook, "guid-missed", delivered_at=datetime.now(UTC) - timedelta(hours=1))
    fake_github.add_delivery(hook, "guid-too-old", delivered_at=datetime.now(UTC) - timedelta(hours=5))

    result = CliRunner().invoke(app, ["webhooks", "backfill", "--since", "2"], env=registered)

    assert result.exit_code == 0, result.output
    assert "guid-missed" in result.output
    assert "guid-too-old" not in result.output
    [redelivery] = fake_github.redeliveries()
    assert redelivery.headers["authorization"] == "Bearer ghp_app_token"


def test_a_repository_github_refuses_makes_the_command_fail(
    fake_github: FakeGitHub, registered: dict[str, str]
) -> None:
    result = CliRunner().invoke(app, ["webhooks", "backfill"], env=registered)  # no hook: GitHub answers 404

    assert result.exit_code == 1
    assert "octo/app" in result.output
    assert "404" in result.output
