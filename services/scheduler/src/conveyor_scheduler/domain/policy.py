"""The scheduler's settings that are not in the workflow: limits, leases and environment protection rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class Environment:
    """Protection rules of a deployment environment (a repository setting on GitHub, not in the workflow)."""

    reviewers: tuple[str, ...] = ()
    """Who may approve; one approval is enough. Empty with `required_approval` means anyone may."""
    required_approval: bool = False
    wait_timer_minutes: int = 0
    """How long a job waits, after approval, before it is queued (GitHub allows up to 43200)."""

    @property
    def needs_approval(self) -> bool:
        return self.required_approval or bool(self.reviewers)


@dataclass(frozen=True)
class Policy:
    """GitHub's limits by default; everything here is injected so that the core stays pure."""

    job_timeout_minutes: float = 360
    """A job's `timeout-minutes` when it does not say."""
    queue_timeout: timedelta = timedelta(hours=24)
    """A queued job that no runner starts in this time fails (GitHub: 24 hours for self-hosted runners)."""
    approval_timeout: timedelta = timedelta(days=30)
    """A job waiting for a reviewer this long fails."""
    run_timeout: timedelta = timedelta(days=35)
    """A run that takes this long is cancelled (GitHub's limit for a workflow run)."""
    lease_period: timedelta = timedelta(minutes=2)
    """A lease not renewed within this time expires and its attempt is lost."""
    stop_grace: timedelta = timedelta(minutes=5)
    """A runner told that its job timed out has this long to run the job's cleanup and report; then the
    scheduler concludes the job itself."""
    environments: Mapping[str, Environment] = field(default_factory=dict)
    """Protection rules by environment name (compared case-insensitively)."""

    def environment(self, name: str) -> Environment:
        for key, rules in self.environments.items():
            if key.lower() == name.lower():
                return rules
        return Environment()
