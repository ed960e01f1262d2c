"""GitHub App credentials: an app's private key signs a short JWT, which buys an installation access token.

From "Generating a JSON Web Token (JWT) for a GitHub App": RS256, `iat` 60 seconds in the past (clock drift),
`exp` at most 10 minutes after, `iss` the app's id. From "Generating an installation access token": `POST
/app/installations/{installation_id}/access_tokens` with the JWT answers 201 with a token valid for an hour. A
token is kept until shortly before it expires, so each installation costs one call an hour.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import jwt

from conveyor_github._client import Clock, GitHubAPI, GitHubError

JWT_LIFETIME = 540
"""Seconds a JWT is valid from now: under GitHub's 10 minutes, with room for clock drift."""
RENEW_BEFORE = 300
"""Seconds before its expiry that an installation token is replaced."""


@dataclass(frozen=True)
class AppCredentials:
    """A GitHub App installed on a repository: the app's id, the installation's id, the app's private key (PEM)."""

    app_id: str
    installation_id: int
    private_key: str


def app_jwt(app_id: str, private_key: str, *, now: float) -> str:
    """The JWT that authenticates as the app itself (to list installations or to get an installation's token)."""
    claims = {"iat": int(now) - 60, "exp": int(now) + JWT_LIFETIME, "iss": app_id}
    try:
        return jwt.encode(claims, private_key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as error:
        raise GitHubError(f"the private key of GitHub App {app_id} cannot sign: {error}", 0) from error


class InstallationTokens:
    """Installation access tokens, fetched through `api` when there is none yet or it is about to expire."""

    def __init__(self, api: GitHubAPI, *, clock: Clock = time.time) -> None:
        self._api = api
        self._clock = clock
        self._tokens: dict[tuple[str, int], tuple[str, float]] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    async def token(self, app: AppCredentials) -> str:
        """A token for `app`'s installation; `GitHubError` when GitHub does not give one."""
        key = (app.app_id, app.installation_id)
        async with self._locks.setdefault(key, asyncio.Lock()):
            known = self._tokens.get(key)
            if known is not None and known[1] - RENEW_BEFORE > self._clock():
                return known[0]
            path = f"/app/installations/{app.installation_id}/access_tokens"
            signed = app_jwt(app.app_id, app.private_key, now=self._clock())
            response, attempts = await self._api.request("POST", path, token=signed)
            body = response.json()
            if not isinstance(body, dict) or not isinstance(body.get("token"), str):
                raise GitHubError(f"POST {path} answered without a token", attempts)
            expires = _epoch(body.get("expires_at")) or self._clock() + 3600
            self._tokens[key] = (body["token"], expires)
            return str(body["token"])


def _epoch(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
