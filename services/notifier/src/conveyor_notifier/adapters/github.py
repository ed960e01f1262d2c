"""GitHub's commit statuses API, called the way GitHub asks integrations to call it.

https://docs.github.com/rest/commits/statuses, and for errors "Best practices for using the REST API":
a `retry-after` header is waited out; `x-ratelimit-remaining: 0` waits until `x-ratelimit-reset` (epoch seconds);
another rate limit error waits a minute, then exponentially longer. Server errors and lost connections are tried
again with exponential backoff; other client errors (a bad token, a missing commit, 422) are never retried. Every
try is bounded: GitHub bans integrations that keep calling while limited, and a notification must not wait forever.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from conveyor_notifier.domain import State

Sleep = Callable[[float], Awaitable[None]]
TokenSource = Callable[[str], Awaitable[str | None]]
"""The token for GitHub's API of a repository (`owner/name`), None when it has none of its own."""
Clock = Callable[[], float]
"""Seconds since the epoch, as `x-ratelimit-reset` counts them."""

SECONDARY_LIMIT_WAIT = 60.0


class DeliveryFailed(Exception):
    """GitHub did not take the status: `reason` is its last answer (or the error), after `attempts` tries."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class Superseded(Exception):
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
    """Creates commit statuses; a rate limit any call meets pauses every call of this client until it lifts.

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
        self._http = httpx.AsyncClient(
            base_url=api_url.rstrip("/"),
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "conveyor-notifier",
            },
            timeout=10.0,
            follow_redirects=True,  # GitHub answers a renamed repository with a redirect to repeat the call at
        )
        self._token = token
        self._sleep = sleep
        self._clock = clock
        self._tries = tries
        self._backoff = backoff
        self._longest_wait = longest_wait
        self._resume_at = 0.0

    @property
    def has_default_token(self) -> bool:
        return bool(self._token)

    async def create(
        self, status: CommitStatus, *, token: str | None = None, stale: Callable[[], bool] = lambda: False
    ) -> int:
        """Create `status` with `token` (or the client's); how many tries it took. `stale()` is asked before each
        retry (True: `Superseded`).

        Raises `DeliveryFailed` when GitHub refuses it, or still fails after the last try, or there is no token.
        """
        path = f"/repos/{status.repository}/statuses/{status.sha}"
        token = token or self._token
        if not token:
            raise DeliveryFailed("no token for GitHub's API: neither the repository's nor a default one", 0)
        headers = {"Authorization": f"Bearer {token}"}
        for attempt in range(1, self._tries + 1):
            await self._rate_limit_lifted(attempt - 1)
            if attempt > 1 and stale():
                raise Superseded(status.context)
            try:
                response = await self._http.post(path, json=status.body(), headers=headers)
            except httpx.TransportError as error:
                reason = f"{type(error).__name__}: {error or 'no answer'}"
                wait = self._backoff * 2.0 ** (attempt - 1)
            else:
                if response.is_success:
                    return attempt
                reason = f"HTTP {response.status_code}: {_message(response)}"
                limited = _rate_limit_wait(response, attempt, self._clock())
                if limited is not None:
                    self._resume_at = max(self._resume_at, self._clock() + limited)
                    wait = 0.0
                elif response.status_code >= 500:
                    wait = self._backoff * 2.0 ** (attempt - 1)
                else:
                    raise DeliveryFailed(reason, attempt)
            if attempt == self._tries:
                raise DeliveryFailed(reason, attempt)
            if wait:
                await self._sleep(wait)
        raise AssertionError("unreachable: the last try returns or raises")

    async def _rate_limit_lifted(self, attempts: int) -> None:
        wait = self._resume_at - self._clock()
        if wait > self._longest_wait:
            raise DeliveryFailed(f"GitHub's rate limit lifts only in {wait:.0f} s", attempts)
        if wait > 0:
            await self._sleep(wait)

    async def aclose(self) -> None:
        await self._http.aclose()


def _rate_limit_wait(response: httpx.Response, attempt: int, now: float) -> float | None:
    """Seconds to wait when the response is a rate limit error (403 or 429), else None."""
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    if (after := _number(headers.get("retry-after"))) is not None:
        return after
    if headers.get("x-ratelimit-remaining") == "0" and (reset := _number(headers.get("x-ratelimit-reset"))):
        return max(reset - now, 0.0) + 1.0  # the reset is in whole seconds: go just after it
    if response.status_code == 429 or "rate limit" in _message(response).lower():
        return SECONDARY_LIMIT_WAIT * 2.0 ** (attempt - 1)
    return None


def _number(text: str | None) -> float | None:
    try:
        return None if text is None else max(float(text), 0.0)
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    message = body.get("message") if isinstance(body, dict) else None
    return str(message) if message else response.text[:200]
