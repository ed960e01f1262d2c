"""Each registered repository's own token for GitHub's API, opened from the log when a service needs it."""

from __future__ import annotations

import logging

from conveyor_events import RepositoryRegistered
from conveyor_runtime import EventLog

from conveyor_ingest.domain import REPOSITORIES_STREAM
from conveyor_ingest.sealing import KeyWrapper, SecretKeyError, secret_context, unseal

logger = logging.getLogger(__name__)


class RepositoryTokens:
    """`await tokens("owner/name")`: the token registered for that GitHub repository, None when it has none.

    The latest registration of a repository counts (registering a name again replaces it). The registrations
    are read from the log on each call, so a token registered by another process is used at once.
    """

    def __init__(self, log: EventLog, keys: KeyWrapper) -> None:
        self.log = log
        self.keys = keys

    async def __call__(self, github: str) -> str | None:
        latest: RepositoryRegistered | None = None
        for envelope in await self.log.read_stream(REPOSITORIES_STREAM, types=[RepositoryRegistered.event_type()]):
            event = envelope.event
            if isinstance(event, RepositoryRegistered) and (event.github or "").lower() == github.lower():
                latest = event
        if latest is None or latest.token is None:
            return None
        try:
            return unseal(latest.token, self.keys, context=secret_context(latest.name, "token"))
        except SecretKeyError as error:
            logger.warning("the token of %s cannot be used: %s", github, error)
            return None
