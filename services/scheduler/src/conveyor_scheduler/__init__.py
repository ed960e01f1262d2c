"""The scheduler: the run state machine, from planned jobs to the run's conclusion."""

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from conveyor_runtime import EventLog

from conveyor_scheduler.domain.policy import Environment, Policy
from conveyor_scheduler.handlers import CONSUMER, Scheduler


def create_scheduler(
    log: EventLog,
    environments: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    lease_period: timedelta | None = None,
) -> Scheduler:
    """The scheduler service over `log`, with the protection rules of deployment environments by name.

    Each environment's rules: `reviewers` (names, one approval is enough), `required_approval` and
    `wait_timer_minutes`, as a repository's settings on GitHub give them.
    """
    rules = {
        name: Environment(
            reviewers=tuple(str(reviewer) for reviewer in spec.get("reviewers", ())),
            required_approval=bool(spec.get("required_approval", False)),
            wait_timer_minutes=int(spec.get("wait_timer_minutes", 0)),
        )
        for name, spec in (environments or {}).items()
    }
    policy = Policy(environments=rules)
    return Scheduler(log, policy if lease_period is None else replace(policy, lease_period=lease_period))


__all__ = ["CONSUMER", "Scheduler", "create_scheduler"]
