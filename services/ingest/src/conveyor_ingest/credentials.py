"""Each registered repository's own credentials for GitHub's API, opened from the log when a service needs them.

A repository registered with a GitHub App uses the app's installation tokens (fetched with a JWT its private key
signs, and kept until shortly before they expire); else the token registered with it; else none.
"""

from __future__ import annotations

import logging

from conveyor_events import RepositoryRegistered
from conveyor_github import AppCredentials, GitHubAPI, GitHubError, InstallationTokens
from conveyor_runtime import EventLog

from conveyor_ingest.domain import REPOSITORIES_STREAM
from conveyor_ingest.sealing import KeyWrapper, SecretKeyError, secret_context, unseal

logger = logging.getLogger(__name__)


class CredentialsError(Exception):
    """A repository's credentials cannot be used: a secret that does not open, or GitHub refusing the app."""


class RepositoryTokens:
    """`await tokens("owner/name")`: a token for that GitHub repository's API, None when it has no credentials.

    The latest registration of a repository counts (registering a name again replaces it). The registrations
    are read from the log on each call, so credentials registered by another process are used at once.
    """

    def __init__(self, log: EventLog, keys: KeyWrapper, *, api_url: str = "https://api.github.com") -> None:
        self.log = log
        self.keys = keys
        self._api = GitHubAPI(api_url, user_agent="conveyor")
        self._installations = InstallationTokens(self._api)

    async def __call__(self, github: str) -> str | None:
        latest: RepositoryRegistered | None = None
        for envelope in await self.log.read_stream(REPOSITORIES_STREAM, types=[RepositoryRegistered.event_type()]):
            event = envelope.event
            if isinstance(event, RepositoryRegistered) and (event.github or "").lower() == github.lower():
                latest = event
        if latest is None:
            return None
        try:
            return await self.for_registration(latest)
        except CredentialsError as error:
            logger.warning("no token for %s: %s", github, error)
            return None

    async def for_url(self, url: str) -> str | None:
        """The token of the repository registered latest with clone URL `url` (to fetch it with git); None when
        none is, or its credentials cannot be used (warned about)."""
        latest: RepositoryRegistered | None = None
        for envelope in await self.log.read_stream(REPOSITORIES_STREAM, types=[RepositoryRegistered.event_type()]):
            if isinstance(envelope.event, RepositoryRegistered) and envelope.event.url == url:
                latest = envelope.event
        if latest is None:
            return None
        try:
            return await self.for_registration(latest)
        except CredentialsError as error:
            logger.warning("no token for %s: %s", latest.name, error)
            return None

    async def for_registration(self, registration: RepositoryRegistered) -> str | None:
        """The token of `registration`; `CredentialsError` when it has credentials that cannot be used."""
        name = registration.name
        try:
            if registration.app_private_key is not None and registration.app_id and registration.installation_id:
                key = unseal(registration.app_private_key, self.keys, context=secret_context(name, "app_private_key"))
                app = AppCredentials(registration.app_id, registration.installation_id, key)
                return await self._installations.token(app)
            if registration.token is not None:
                return unseal(registration.token, self.keys, context=secret_context(name, "token"))
        except SecretKeyError as error:
            raise CredentialsError(str(error)) from error
        except GitHubError as error:
            raise CredentialsError(f"GitHub App {registration.app_id} got no installation token: {error}") from error
        return None

    async def aclose(self) -> None:
        await self._api.aclose()
