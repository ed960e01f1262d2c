"""Building the notifier from its settings."""

from __future__ import annotations

import asyncio
import time

from conveyor_runtime import EventLog

from conveyor_notifier.adapters import GitHubStatuses
from conveyor_notifier.adapters.github import Clock, Sleep
from conveyor_notifier.delivery import StatusDelivery
from conveyor_notifier.handlers import Notifier


def create_notifier(
    log: EventLog,
    *,
    github_api_url: str = "https://api.github.com",
    github_token: str | None = None,
    public_url: str = "http://127.0.0.1:8080",
    concurrency: int = 4,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.time,
) -> Notifier:
    """A notifier over `log`; with a GitHub token it reports jobs as commit statuses, without one it only logs."""
    if not github_token:
        return Notifier(log, public_url=public_url)
    client = GitHubStatuses(github_api_url, github_token, sleep=sleep, clock=clock)
    return Notifier(log, StatusDelivery(client, log, concurrency=concurrency), public_url=public_url)
