"""Settings of the embedded system, read from `CONVEYOR_*` environment variables by the entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RuntimeSettings(BaseSettings):
    """Where the embedded system keeps its data and how it serves it."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="ignore")

    data_dir: Path = Path(".conveyor")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    log_sync: Literal["OFF", "NORMAL", "FULL"] = "NORMAL"
    runner_concurrency: int = Field(default=4, ge=1)
    actions_base_url: str = "https://github.com"
    """Where `uses: owner/repo@ref` actions are cloned from (a URL, or a local folder of owner/repo repositories)."""
    actions_offline_dir: Path | None = None
    """Actions already on disk as <dir>/<owner>/<repo>/<ref>/, looked at before cloning."""
    platforms: dict[str, str] = Field(default_factory=dict)
    """`runs-on` label → container image its jobs run in ('' runs them on the host), as act's `-P`."""
    container_socket: str | None = None
    """The Docker Engine API socket (Docker's or Podman's); found by itself when unset."""
    environments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Deployment environments' protection rules by name: reviewers, required_approval, wait_timer_minutes."""
    job_log_limit: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Bytes of log one job may store; past it a marker line is stored and the rest only counted."""

    @property
    def log_path(self) -> Path:
        return self.data_dir / "events.db"

    @property
    def projections_path(self) -> Path:
        return self.data_dir / "projections.db"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def actions_cache_dir(self) -> Path:
        return self.data_dir / "actions"
