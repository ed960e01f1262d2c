"""Sending commit statuses in the background, so that a slow or failing GitHub never holds up the notifier.

Statuses of one context (one job on one commit) are sent one after the other in the order they were submitted,
and only the newest waiting one is sent: a later state is never overwritten by an earlier one, and a state that
a newer one replaced while it waited is dropped. At most `concurrency` statuses are in flight at once. A status
that finally fails becomes a `NotificationFailed` event in the run's stream; the run goes on without it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from conveyor_events import Envelope, NotificationFailed, deterministic_id
from conveyor_runtime import EventLog

from conveyor_notifier.adapters import CommitStatus, DeliveryFailed, GitHubStatuses, Superseded
from conveyor_notifier.adapters.github import TokenSource

TARGET = "github-status"
logger = logging.getLogger("conveyor.notifier")

Key = tuple[str, str, str]
"""Repository, commit and context: the statuses that overwrite one another."""


@dataclass(frozen=True)
class _Submitted:
    status: CommitStatus
    run_id: str
    cause: Envelope


@dataclass
class StatusDelivery:
    """Sends the statuses submitted to it from background tasks; `stop()` ends them.

    Each repository's own token (from `tokens`) is used when it has one, the client's default token otherwise.
    """

    client: GitHubStatuses
    log: EventLog
    concurrency: int = 4
    tokens: TokenSource | None = None
    _waiting: dict[Key, _Submitted] = field(default_factory=dict)
    _senders: dict[Key, asyncio.Task[None]] = field(default_factory=dict)
    _slots: asyncio.Semaphore | None = None

    def submit(self, status: CommitStatus, *, run_id: str, cause: Envelope) -> None:
        """Send `status` soon; it replaces a status of the same context that has not been tried yet."""
        key = (status.repository, status.sha, status.context)
        self._waiting[key] = _Submitted(status, run_id, cause)
        if key not in self._senders:
            self._senders[key] = asyncio.create_task(self._send_all(key), name=f"status {status.context}")

    async def _send_all(self, key: Key) -> None:
        try:
            while (submitted := self._waiting.pop(key, None)) is not None:
                await self._send(key, submitted)
        finally:
            self._senders.pop(key, None)

    async def _send(self, key: Key, submitted: _Submitted) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        try:
            async with self._slots:
                token = await self.tokens(key[0]) if self.tokens is not None else None
                if token is None and not self.client.has_default_token:
                    logger.debug("no token for %s: status %r not sent", key[0], key[2])
                    return
                await self.client.create(submitted.status, token=token, stale=lambda: key in self._waiting)
        except Superseded:
            return
        except DeliveryFailed as failure:
            logger.warning("status %r of %s@%s not set: %s", key[2], key[0], key[1], failure.reason)
            await self._record(submitted, failure.reason, failure.attempts)
        except Exception as error:  # a bug here must not end the sender silently, nor the notifier
            logger.exception("status %r of %s@%s not set", key[2], key[0], key[1])
            await self._record(submitted, f"{type(error).__name__}: {error}", 0)

    async def _record(self, submitted: _Submitted, reason: str, attempts: int) -> None:
        status = submitted.status
        event = NotificationFailed(
            run_id=submitted.run_id,
            target=TARGET,
            context=status.context,
            reason=f"{status.state} on {status.repository}@{status.sha[:12]}: {reason}",
            attempts=attempts,
        )
        event_id = deterministic_id("notification-failed", TARGET, status.context, submitted.cause.event_id)
        try:
            envelope = Envelope.wrap(event, stream=submitted.run_id, event_id=event_id, cause=submitted.cause)
            await self.log.append([envelope])
        except Exception:
            logger.exception("the failure of status %r could not be recorded", status.context)

    async def stop(self, *, grace: float = 5.0) -> None:
        """Give the statuses in flight `grace` seconds to be sent, then cancel the rest and close the client."""
        if self._senders:
            await asyncio.wait(list(self._senders.values()), timeout=grace)
        for task in list(self._senders.values()):
            task.cancel()
        while self._senders:
            await asyncio.gather(*self._senders.values(), return_exceptions=True)
        await self.client.aclose()
