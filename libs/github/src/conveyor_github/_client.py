"""A GitHub REST API client with GitHub's rules for integrations built in.

From "Best practices for using the REST API": a `retry-after` header is waited out; `x-ratelimit-remaining: 0`
waits until `x-ratelimit-reset` (epoch seconds); another rate limit error waits a minute, then exponentially
longer. Server errors and lost connections are tried again with exponential backoff; other client errors (a bad
token, a missing repository, 422) are never retried. Every call is bounded: GitHub bans integrations that keep
calling while limited, so a rate limit that lifts too far off fails the call instead of waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

import httpx

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
"""Seconds since the epoch, as `x-ratelimit-reset` counts them."""
Params = Mapping[str, str | int]

SECONDARY_LIMIT_WAIT = 60.0
"""GitHub asks to wait at least a minute after a rate limit error that says nothing of when it lifts."""


class GitHubError(Exception):
    """GitHub did not do what was asked: `reason` is its last answer (or the error), after `attempts` tries."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class Stale(Exception):
    """The caller said, before a retry, that the call is no longer wanted."""


class GitHubAPI:
    """Calls GitHub's REST API with a token; a rate limit any call meets pauses every call until it lifts.

    `token` is the default; a call may name its own (one repository's token, say).
    """

    def __init__(
        self,
        api_url: str,
        token: str | None = None,
        *,
        user_agent: str = "conveyor",
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
                "User-Agent": user_agent,
            },
            timeout=10.0,
            follow_redirects=True,  # GitHub answers a renamed repository with a redirect to repeat the call at
        )
        self._token = token
        self._sleep = sleep
        self._clock = clock
        self._tries = max(tries, 1)
        self._backoff = backoff
        self._longest_wait = longest_wait
        self._resume_at = 0.0

    @property
    def has_default_token(self) -> bool:
        return bool(self._token)

    async def __aenter__(self) -> GitHubAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        json: Any = None,
        token: str | None = None,
        stale: Callable[[], bool] = lambda: False,
    ) -> tuple[httpx.Response, int]:
        """The successful response and how many tries it took; `stale()` is asked before each retry.

        Raises `GitHubError` when GitHub refuses, still fails after the last try, or there is no token;
        `Stale` when `stale()` said so.
        """
        token = token or self._token
        if not token:
            raise GitHubError("no token for GitHub's API", 0)
        headers = {"Authorization": f"Bearer {token}"}
        for attempt in range(1, self._tries + 1):
            await self._rate_limit_lifted(attempt - 1)
            if attempt > 1 and stale():
                raise Stale(url)
            try:
                response = await self._http.request(method, url, params=params, json=json, headers=headers)
            except httpx.TransportError as error:
                reason = f"{type(error).__name__}: {error or 'no answer'}"
                wait = self._backoff * 2.0 ** (attempt - 1)
            else:
                if response.is_success:
                    return response, attempt
                reason = f"HTTP {response.status_code}: {message(response)}"
                limited = rate_limit_wait(response, attempt, self._clock())
                if limited is not None:
                    self._resume_at = max(self._resume_at, self._clock() + limited)
                    wait = 0.0
                elif response.status_code >= 500:
                    wait = self._backoff * 2.0 ** (attempt - 1)
                else:
                    raise GitHubError(reason, attempt)
            if attempt == self._tries:
                raise GitHubError(reason, attempt)
            if wait:
                await self._sleep(wait)
        raise AssertionError("unreachable: the last try returns or raises")

    async def pages(
        self, path: str, params: Params, *, token: str | None = None
    ) -> AsyncGenerator[list[Any], None]:
        """Each page of a list, following the `Link` header's `next` (which carries the query) to the end."""
        url: str | None = path
        query: Params | None = params
        while url is not None:
            response, attempts = await self.request("GET", url, params=query, token=token)
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, list):
                raise GitHubError("GitHub answered with something else than a list", attempts)
            yield body
            url = response.links.get("next", {}).get("url")
            query = None

    async def _rate_limit_lifted(self, attempts: int) -> None:
        wait = self._resume_at - self._clock()
        if wait > self._longest_wait:
            raise GitHubError(f"GitHub's rate limit lifts only in {wait:.0f} s", attempts)
        if wait > 0:
            await self._sleep(wait)


def rate_limit_wait(response: httpx.Response, attempt: int, now: float) -> float | None:
    """Seconds to wait when the response is a rate limit error (403 or 429), else None."""
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    if (after := _number(headers.get("retry-after"))) is not None:
        return after
    if headers.get("x-ratelimit-remaining") == "0" and (reset := _number(headers.get("x-ratelimit-reset"))):
        return max(reset - now, 0.0) + 1.0  # the reset is in whole seconds: go just after it
    if response.status_code == 429 or "rate limit" in message(response).lower():
        return SECONDARY_LIMIT_WAIT * 2.0 ** (attempt - 1)
    return None


def _number(text: str | None) -> float | None:
    try:
        return None if text is None else max(float(text), 0.0)
    except ValueError:
        return None


def message(response: httpx.Response) -> str:
    """GitHub's `message` of an error answer, or the start of its body."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    text = body.get("message") if isinstance(body, dict) else None
    return str(text) if text else response.text[:200]
