"""GitHub's commit statuses API (https://docs.github.com/rest/commits/statuses), through `conveyor_github`,
which calls it the way GitHub asks integrations to: rate limits waited out, server errors tried again, every call
bounded so that a notification never waits forever."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from conveyor_github import Clock, GitHubAPI, GitHubError, Sleep, Stale

from conveyor_notifier.domain import State

TokenSource = Callable[[str], Awaitable[str | None]]
"""The token for GitHub's API of a repository (`owner/name`), None when it has none of its own."""


DeliveryFailed = GitHubError
"""GitHub did not take the status: `reason` is its last answer (or the error), after `attempts` tries."""

Superseded = Stale
"""A newer status of the same context came while this one waited to be tried again: it is not sent."""


@dataclass(frozen=True)
class CommitStatus:
    """One status of one commit, as `POST /repos/{owner}/{repo}/statuses/{sha}` takes it."""

    repository: str
    sha: str
    state: State
    context: str
    description: str
    target_url: str

    def body(self) -> dict[str, str]:
        return {
            "state": self.state,
            "context": self.context,
            "description": self.description,
            "target_url": self.target_url,
        }


class GitHubStatuses:
    """Creates commit statuses through one `GitHubAPI` (which waits out rate limits and retries failures).

    `token` is used for a repository without one of its own (`create(..., token=)`).
    """

    def __init__(
        self,
        api_url: str,
        token: str | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
        tries: int = 4,
        backoff: float = 0.5,
        longest_wait: float = 600.0,
    ) -> None:
        self._api = GitHubAPI(
            api_url,
            token,
            user_agent="conveyor-notifier",
            sleep=sleep,
            clock=clock,
            tries=tries,
            backoff=backoff,
            longest_wait=longest_wait,
        )

    @property
    def has_default_token(self) -> bool:
        return self._api.has_default_token

    async def create(
        self, status: CommitStatus, *, token: str | None = None, stale: Callable[[], bool] = lambda: False
    ) -> int:
        """Create `status` with `token` (or the client's); how many tries it took. `stale()` is asked before each
        retry (True: `Superseded`).

        Raises `DeliveryFailed` when GitHub refuses it, or still fails after the last try, or there is no token.
        """
        path = f"/repos/{status.repository}/statuses/{status.sha}"
        _, attempts = await self._api.request("POST", path, json=status.body(), token=token, stale=stale)
        return attempts

    async def aclose(self) -> None:
        await self._api.aclose()
