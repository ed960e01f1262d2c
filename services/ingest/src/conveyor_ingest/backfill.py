"""Back-filling missed webhook deliveries: GitHub is asked to deliver again what ingest never took.

GitHub does not redeliver a failed delivery by itself ("Handling failed webhook deliveries"); it keeps a repository
webhook's deliveries for 3 days and redelivers one on request. For each registered repository with a GitHub name and
a token, the back-fill finds Conveyor's hook (the one whose `config.url` is `<public_url>/webhooks/github`), lists its
deliveries newest first, a page at a time as the `Link` header names them, until they are older than the cutoff, and
asks GitHub to redeliver each delivery (a guid) ingest did not take. The log decides what was taken, not GitHub's
`status`: a delivery was received when its `RunRequested` is stored (its run and event ids derive from the repository
and the guid, so it is looked up directly) or when its event starts no run (`ping`, events ingest does not handle).

Each guid is redelivered at most once: not when GitHub already lists a redelivery of it (a person or an earlier pass
asked), nor when the log holds a `DeliveryRedelivered` of it, appended once GitHub took the request. GitHub's API is
called as the notifier calls it: rate limits waited out, server errors and lost connections tried again with backoff,
other refusals (a bad token, a missing repository) reported at once. One repository's failure is reported in its
summary and the others are still back-filled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from conveyor_events import (
    DELIVERIES_STREAM,
    DeliveryRedelivered,
    Envelope,
    RepositoryRegistered,
    RunRequested,
    deterministic_id,
)
from conveyor_github import Clock, GitHubAPI, GitHubError, Sleep
from conveyor_runtime import EventLog, RuntimeSettings
from pydantic import BaseModel, ConfigDict, ValidationError

from conveyor_ingest.credentials import CredentialsError, RepositoryTokens
from conveyor_ingest.domain import REPOSITORIES_STREAM, run_id_for, webhook_event_id
from conveyor_ingest.github_events import EVENTS
from conveyor_ingest.sealing import KeyWrapper

GITHUB_KEEPS = timedelta(days=3)
"""How long GitHub keeps a webhook's deliveries: older ones can be neither listed nor redelivered."""

PER_PAGE = 100
"""The most deliveries GitHub lists on one page."""

Cutoff = Callable[[str], datetime]
"""The oldest delivery time to look at, by registered repository name."""

logger = logging.getLogger(__name__)
_Model = TypeVar("_Model", bound=BaseModel)


@dataclass(frozen=True)
class BackfillSummary:
    """One registered repository's back-fill: how many deliveries (guids) were checked, which GitHub was asked to
    redeliver, and what went wrong; no errors means every delivery since the cutoff was checked."""

    repository: str
    github: str
    checked: int = 0
    redelivered: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Calls:
    """How GitHub is called: how to wait, what time it is, how often a failing call is tried and the first backoff."""

    sleep: Sleep = asyncio.sleep
    clock: Clock = time.time
    tries: int = 4
    backoff: float = 0.5


class _Hook(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: int
    config: dict[str, Any] = {}


class _Delivery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: int
    guid: str
    delivered_at: datetime
    redelivery: bool = False
    event: str = ""


async def backfill(
    log: EventLog,
    settings: RuntimeSettings,
    keys: KeyWrapper,
    *,
    since: timedelta = GITHUB_KEEPS,
    now: datetime | None = None,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.time,
    tries: int = 4,
    backoff: float = 0.5,
) -> list[BackfillSummary]:
    """Redeliver the deliveries of the last `since` that ingest missed; a summary per repository with a token.

    `sleep` and `clock` (seconds since the epoch, as GitHub's `x-ratelimit-reset`) wait out rate limits and the
    backoff between `tries` of a call GitHub failed; `now` is when the window of `since` ends."""
    oldest = (now or datetime.now(UTC)) - since
    calls = _Calls(sleep, clock, tries, backoff)
    return await _backfill(log, settings, keys, lambda _: oldest, calls)


async def backfill_forever(
    log: EventLog,
    settings: RuntimeSettings,
    keys: KeyWrapper,
    *,
    every: timedelta,
    since: timedelta = GITHUB_KEEPS,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """Back-fill now and then every `every`, until cancelled.

    The first pass looks back `since`; a later one looks at a repository back to `every` before the start of its
    last pass without errors, so deliveries GitHub was still making then are checked again, and the window of a
    repository GitHub failed for stays open until GitHub answers. A pass that fails is logged and the next one runs.
    """
    if every <= timedelta(0):
        raise ValueError(f"the back-fill period must be positive, not {every}")
    clean: dict[str, datetime] = {}
    while True:
        started = datetime.now(UTC)
        oldest = started - since

        def cutoff(name: str, oldest: datetime = oldest) -> datetime:
            return max(oldest, clean.get(name, oldest) - every)

        try:
            summaries = await _backfill(log, settings, keys, cutoff, _Calls(sleep))
        except Exception:
            logger.exception("the webhook back-fill failed; it runs again in %s", every)
        else:
            for summary in summaries:
                for error in summary.errors:
                    logger.warning("webhook back-fill of %s: %s", summary.repository, error)
                if not summary.errors:
                    clean[summary.repository] = started
        await sleep(every.total_seconds())


async def _backfill(
    log: EventLog,
    settings: RuntimeSettings,
    keys: KeyWrapper,
    cutoff: Cutoff,
    calls: _Calls,
) -> list[BackfillSummary]:
    registered: dict[str, RepositoryRegistered] = {}
    for envelope in await log.read_stream(REPOSITORIES_STREAM, types=[RepositoryRegistered.event_type()]):
        if isinstance(envelope.event, RepositoryRegistered):
            registered[envelope.event.name] = envelope.event  # a registration replaces the one before it
    asked = {
        (event.github.lower(), event.guid)
        for envelope in await log.read_stream(DELIVERIES_STREAM, types=[DeliveryRedelivered.event_type()])
        if isinstance(event := envelope.event, DeliveryRedelivered)
    }
    summaries: list[BackfillSummary] = []
    tokens = RepositoryTokens(log, keys, api_url=settings.github_api_url)
    try:
        for repository in registered.values():
            if not repository.github or (repository.token is None and repository.app_private_key is None):
                continue
            # Ingest credits a delivery to whichever registration of the GitHub repository its signature matches.
            github_name = repository.github.lower()
            names = [other.name for other in registered.values() if (other.github or "").lower() == github_name]
            backfiller = _Backfiller(log, settings, repository, names, asked, cutoff(repository.name))
            try:
                token = await tokens.for_registration(repository)
            except CredentialsError as error:
                summaries.append(backfiller.summary(f"its credentials cannot be used: {error}"))
                continue
            github = GitHubAPI(
                settings.github_api_url,
                token,
                user_agent="conveyor-ingest",
                sleep=calls.sleep,
                clock=calls.clock,
                tries=calls.tries,
                backoff=calls.backoff,
            )
            async with github:
                summaries.append(await backfiller.run(github))
    finally:
        await tokens.aclose()
    return summaries


class _Backfiller:
    """The back-fill of one registered repository; `asked` (guids already redelivered) is shared and added to."""

    def __init__(
        self,
        log: EventLog,
        settings: RuntimeSettings,
        repository: RepositoryRegistered,
        names: list[str],
        asked: set[tuple[str, str]],
        oldest: datetime,
    ) -> None:
        self._log = log
        self._hook_url = f"{settings.public_url.rstrip('/')}/webhooks/github"
        self._repository = repository
        self._github_name = repository.github or ""
        self._names = names
        self._asked = asked
        self._oldest = oldest
        self._checked: set[str] = set()
        self._redelivered: list[str] = []
        self._errors: list[str] = []

    def summary(self, *errors: str) -> BackfillSummary:
        return BackfillSummary(
            repository=self._repository.name,
            github=self._github_name,
            checked=len(self._checked),
            redelivered=tuple(self._redelivered),
            errors=(*self._errors, *errors),
        )

    async def run(self, github: GitHubAPI) -> BackfillSummary:
        path = f"/repos/{self._github_name}/hooks"
        try:
            hooks = [
                hook
                async for page in _pages(github, path)
                for hook in _parsed(_Hook, page, path)
                if str(hook.config.get("url", "")).rstrip("/") == self._hook_url
            ]
            if not hooks:
                return self.summary(
                    f"none of the webhooks of {self._github_name} delivers to {self._hook_url}: add one with that"
                    " payload URL, or set CONVEYOR_PUBLIC_URL to where its webhook delivers"
                )
            for hook in hooks:
                await self._hook(github, hook.id)
        except _Failed as failure:
            return self.summary(str(failure))
        return self.summary()

    async def _hook(self, github: GitHubAPI, hook_id: int) -> None:
        path = f"/repos/{self._github_name}/hooks/{hook_id}/deliveries"
        attempts: dict[str, list[_Delivery]] = {}  # by guid, newest first as GitHub lists them
        async with aclosing(_pages(github, path)) as pages:
            async for page in pages:
                deliveries = _parsed(_Delivery, page, path)
                recent = [delivery for delivery in deliveries if delivery.delivered_at >= self._oldest]
                for delivery in recent:
                    attempts.setdefault(delivery.guid, []).append(delivery)
                if len(recent) < len(deliveries):
                    break  # newest first: the rest are older still, so no further page is read
        for guid, tries in attempts.items():
            self._checked.add(guid)
            if not await self._missed(guid, tries):
                continue
            try:
                await github.request("POST", f"{path}/{tries[0].id}/attempts")
            except GitHubError as error:
                self._errors.append(f"redelivering {guid}: {_said('POST', f'{path}/{tries[0].id}/attempts', error)}")
                continue
            redelivered = DeliveryRedelivered(
                repository=self._repository.name,
                github=self._github_name,
                hook_id=hook_id,
                delivery_id=tries[0].id,
                guid=guid,
                event_name=tries[0].event,
            )
            event_id = deterministic_id("delivery-redelivered", self._github_name.lower(), guid)
            await self._log.append([Envelope.wrap(redelivered, stream=DELIVERIES_STREAM, event_id=event_id)])
            self._asked.add((self._github_name.lower(), guid))
            self._redelivered.append(guid)
            logger.info("asked GitHub to redeliver %s delivery %s of %s", tries[0].event, guid, self._github_name)

    async def _missed(self, guid: str, tries: list[_Delivery]) -> bool:
        """Whether ingest missed the delivery and no one asked for it again yet."""
        if tries[0].event not in EVENTS:
            return False  # ping and events ingest does not handle start no run: nothing to miss
        if any(attempt.redelivery for attempt in tries) or (self._github_name.lower(), guid) in self._asked:
            return False
        for name in self._names:
            run_id = run_id_for(name, guid)
            stored = await self._log.read_stream(run_id, types=[RunRequested.event_type()])
            if any(envelope.event_id == webhook_event_id(run_id) for envelope in stored):
                return False
        return True


class _Failed(Exception):
    """A call to GitHub failed: the message names the call and GitHub's last answer."""


async def _pages(github: GitHubAPI, path: str) -> AsyncGenerator[list[Any], None]:
    try:
        async for page in github.pages(path, {"per_page": PER_PAGE}):
            yield page
    except GitHubError as error:
        raise _Failed(_said("GET", path, error)) from None


def _said(method: str, path: str, error: GitHubError) -> str:
    after = f" (after {error.attempts} tries)" if error.attempts > 1 else ""
    return f"{method} {path}: {error.reason}{after}"


def _parsed(model: type[_Model], page: list[Any], path: str) -> list[_Model]:
    try:
        return [model.model_validate(item) for item in page]
    except ValidationError as error:
        raise _Failed(f"GET {path}: an answer GitHub does not give: {error.errors()[0]['msg']}") from None
