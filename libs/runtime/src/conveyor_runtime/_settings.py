"""Settings of the embedded system, read from `CONVEYOR_*` environment variables by the entry point."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RuntimeSettings(BaseSettings):
    """Where the embedded system keeps its data and how it serves it."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="ignore")

    data_dir: Path = Path(".conveyor")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    log_sync: Literal["OFF", "NORMAL", "FULL"] = "NORMAL"
    runner_concurrency: int = Field(default=4, ge=1)
    embedded_runner: bool = True
    """Run jobs in this process (a runner with the label `*`); off, only runners registered over HTTP run them."""
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
    github_api_url: str = "https://api.github.com"
    """GitHub's REST API, where commit statuses of runs of GitHub repositories are reported."""
    github_token: SecretStr | None = None
    """A token allowed to write commit statuses (`repo:status`); without one no status is reported."""
    public_url: str = "http://127.0.0.1:8080"
    """Where people reach this Conveyor: statuses on GitHub link to `<public_url>/api/runs/<run id>`."""
    schedule_catch_up: Literal["once", "all", "skip"] = "once"
    """Cron ticks missed while nothing ran: fire the latest only, all (at most 100 a cron, oldest first), or none."""
    webhook_backfill_minutes: float = Field(default=60.0, ge=0)
    """How often ingest asks GitHub for the deliveries it missed and has them redelivered (0: never)."""
    event_log: Literal["sqlite", "kafka"] = "sqlite"
    """Where the events are: `<data_dir>/events.db`, or the Kafka topics `<kafka_topic_prefix>.*`."""
    kafka_bootstrap: str = "127.0.0.1:19092"
    """The Kafka brokers of the distributed log (the default is the broker scripts/kafka.sh starts)."""
    kafka_topic_prefix: str = Field(default="conveyor", min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    """The names of the log's topics start with this (`conveyor kafka init --prefix` creates them)."""
    database_url: str | None = None
    """Where the read models are: a PostgreSQL database (`postgresql://user[:password]@host[:port]/name`, run
    through asyncpg); unset, the SQLite file `<data_dir>/projections.db`."""
    health_port: int | None = Field(default=None, ge=0, le=65535)
    """Where a service without the API serves /healthz and /readyz (ingest serves them with the API); unset: nowhere."""
    secret_key: SecretStr | None = None
    """The key that encrypts repository secrets at rest: 32 bytes, base64. When unset, the data directory's
    `secret.key` holds one, made on first use."""

    @field_validator("secret_key")
    @classmethod
    def _thirty_two_bytes(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(_decoded(value.get_secret_value())) != 32:
            raise ValueError("CONVEYOR_SECRET_KEY must be 32 bytes in base64, e.g. from `openssl rand -base64 32`")
        return value

    @field_validator("database_url")
    @classmethod
    def _postgresql(cls, value: str | None) -> str | None:
        """A PostgreSQL URL, with asyncpg as its driver (the one Conveyor ships with)."""
        if not value:
            return None
        scheme, separator, rest = value.partition("://")
        if not separator or scheme.split("+")[0] not in ("postgresql", "postgres"):
            raise ValueError(
                "CONVEYOR_DATABASE_URL must be a PostgreSQL URL such as postgresql://conveyor@127.0.0.1:5432/conveyor"
            )
        return f"postgresql+asyncpg://{rest}"

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

    @property
    def results_dir(self) -> Path:
        """The artifacts and caches that the jobs of the embedded runner upload."""
        return self.data_dir / "results"

    @property
    def repositories_cache_dir(self) -> Path:
        """Bare repositories holding the commits fetched from repositories registered by clone URL."""
        return self.data_dir / "repositories"

    @property
    def secret_key_path(self) -> Path:
        return self.data_dir / "secret.key"

    def secret_key_bytes(self) -> bytes | None:
        """The configured key-encryption key, None when the data directory's file is to be used."""
        return None if self.secret_key is None else _decoded(self.secret_key.get_secret_value())


def _decoded(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        return b""
