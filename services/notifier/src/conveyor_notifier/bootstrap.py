"""Building the notifier from its settings."""

from __future__ import annotations

import asyncio
import time

from conveyor_github import Clock, Sleep
from conveyor_runtime import EventLog

from conveyor_notifier.adapters import GitHubStatuses
from conveyor_notifier.adapters.github import TokenSource
from conveyor_notifier.delivery import StatusDelivery
from conveyor_notifier.handlers import Notifier


def create_notifier(
    log: EventLog,
    *,
    github_api_url: str = "https://api.github.com",
    github_token: str | None = None,
    tokens: TokenSource | None = None,
    public_url: str = "http://127.0.0.1:8080",
    concurrency: int = 4,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.time,
) -> Notifier:
    """A notifier over `log` that reports jobs as commit statuses with each repository's token (from `tokens`)
    or else `github_token`; with neither, it only logs."""
    if not github_token and tokens is None:
        return Notifier(log, public_url=public_url)
    client = GitHubStatuses(github_api_url, github_token, sleep=sleep, clock=clock)
    delivery = StatusDelivery(client, log, concurrency=concurrency, tokens=tokens)
    return Notifier(log, delivery, public_url=public_url)
