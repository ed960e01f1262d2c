"""Cron schedules: the `on.schedule` crons of each registered repository's default branch request runs.

Everything the trigger knows comes from the log (registrations, and per schedule how far it has fired), so it
runs in any process that has the log, and two of them on one log fire each tick once. A tick's run has an id
derived from the schedule and the tick, so appending it again stores nothing new; the tick counts as fired
once its `ScheduleFired` is appended at the version of the schedule's stream the trigger read. A trigger that
finds another one fired first (a `ConcurrencyError`) reads on and does not fire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from conveyor_events import (
    Envelope,
    RepositoryRegistered,
    RunRequested,
    ScheduleFired,
    ScheduleFound,
    deterministic_id,
)
from conveyor_runtime import ConcurrencyError, EventLog, GitRemotes, RemoteGitError, RuntimeSettings, workflow_blobs
from conveyor_workflow import WorkflowError, load_workflow
from croniter import CroniterBadDateError, croniter

from conveyor_ingest.adapters import GitError, resolve_ref
from conveyor_ingest.domain import REPOSITORIES_STREAM, request_run

CatchUp = Literal["once", "all", "skip"]
"""Which ticks missed while nothing ran fire: the latest only, every one (up to `MAX_CATCH_UP`), or none."""

MAX_CATCH_UP = 100
"""The most ticks of one cron that fire in one pass, so that a long outage does not flood the queue."""

_WAKE_AFTER_MINUTE = 0.005
_TYPES = (RepositoryRegistered.event_type(), ScheduleFound.event_type(), ScheduleFired.event_type())

logger = logging.getLogger(__name__)


def due_ticks(cron: str, done_until: datetime, now: datetime, policy: CatchUp) -> list[datetime]:
    """The ticks of `cron` (5 fields, UTC) to fire at `now`, oldest first, when every tick up to `done_until`
    has been dealt with.

    A tick in the minute of `now` is on time and fires whatever the policy. Earlier ticks after `done_until`
    were missed while nothing ran: `once` fires only the latest tick (which stands for all of them), `all`
    fires each (the latest `MAX_CATCH_UP`), `skip` fires none.
    """
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    backwards = croniter(cron, minute + timedelta(minutes=1))
    ticks: list[datetime] = []
    with contextlib.suppress(CroniterBadDateError):  # a cron whose dates never come, such as 30 February
        while len(ticks) < (MAX_CATCH_UP if policy == "all" else 1):
            tick = backwards.get_prev(datetime)
            if tick <= done_until:
                break
            ticks.append(tick)
    if policy == "skip":
        ticks = [tick for tick in ticks if tick == minute]
    return ticks[::-1]


def schedule_stream(repository: str, workflow: str, cron: str) -> str:
    """The stream of one cron of one workflow of the repository registered as `repository`."""
    return f"schedule-{deterministic_id('schedule', repository, workflow, cron)}"


def scheduled_run(
    repository: RepositoryRegistered, workflow: str, cron: str, tick: datetime, *, ref: str, sha: str
) -> RunRequested:
    """The run one tick requests, with GitHub's `schedule` payload; any trigger names it with the same id."""
    requested = request_run(
        repository=repository.url,
        repository_name=repository.github or None,
        default_branch=repository.default_branch,
        ref=ref,
        sha=sha,
        event_name="schedule",
        payload={"schedule": cron},
        workflows=[workflow],
    )
    run_id = deterministic_id("schedule", repository.name, workflow, cron, tick.astimezone(UTC).isoformat())
    return requested.model_copy(update={"run_id": run_id})


def scheduled_event_id(run_id: str) -> str:
    """The id of a scheduled run's `RunRequested`: appending it again after a crash finds it stored."""
    return deterministic_id("scheduled", run_id)


@dataclass(frozen=True, slots=True)
class _Schedule:
    repository: str
    workflow: str
    cron: str

    @property
    def stream(self) -> str:
        return schedule_stream(self.repository, self.workflow, self.cron)


@dataclass(slots=True)
class _Progress:
    done_until: datetime
    version: int


@dataclass(frozen=True, slots=True)
class _Head:
    """The default branch of a repository at one commit, and the schedules its workflow files declare."""

    url: str
    ref: str
    sha: str
    schedules: tuple[tuple[str, str], ...]
    """(workflow path, cron) pairs."""


class ScheduleTrigger:
    """Requests the runs of due cron ticks of every registered repository, reading its state from `log`.

    `policy` says which missed ticks fire (see `due_ticks`); `clock` gives the time when a pass is not told it;
    `remotes` reads repositories registered by clone URL.
    """

    def __init__(
        self,
        log: EventLog,
        policy: CatchUp = "once",
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        remotes: GitRemotes | None = None,
    ) -> None:
        self._log = log
        self._remotes = remotes or GitRemotes()
        self._policy = policy
        self._clock = clock
        self._position = 0
        self._repositories: dict[str, RepositoryRegistered] = {}
        self._progress: dict[_Schedule, _Progress] = {}
        self._heads: dict[str, _Head] = {}
        self._unreadable: dict[str, str] = {}

    async def run(self) -> None:
        """A pass now, then one just after each minute begins, forever; a failed pass is logged, not fatal."""
        while True:
            try:
                await self.fire_due()
            except Exception:
                logger.exception("the pass over the cron schedules failed; the next minute tries again")
            now = self._clock()
            await asyncio.sleep(60 - now.second - now.microsecond / 1e6 + _WAKE_AFTER_MINUTE)

    async def fire_due(self, now: datetime | None = None) -> list[RunRequested]:
        """One pass at `now` (the clock's time when None): the runs this trigger requested, oldest tick first
        within each schedule. A schedule seen for the first time fires nothing; its ticks count from `now`."""
        now = self._clock() if now is None else now
        if now.tzinfo is None:
            raise ValueError(f"a pass needs a time with a time zone, not {now}")
        now = now.astimezone(UTC)
        await self._read_on()
        requested: list[RunRequested] = []
        for name in sorted(self._repositories):
            repository = self._repositories[name]
            head = await self._head(repository)
            if head is None:
                continue
            for workflow, cron in head.schedules:
                requested += await self._fire(_Schedule(name, workflow, cron), repository, head, now)
        return requested

    async def _fire(
        self, schedule: _Schedule, repository: RepositoryRegistered, head: _Head, now: datetime
    ) -> list[RunRequested]:
        while True:
            progress = self._progress.get(schedule)
            try:
                if progress is None:
                    await self._found(schedule, now)
                    return []
                return await self._fire_ticks(schedule, progress, repository, head, now)
            except ConcurrencyError as conflict:
                logger.debug("%s %s '%s': %s; reading on", *astuple(schedule), conflict)
                await self._read_on()

    async def _found(self, schedule: _Schedule, now: datetime) -> None:
        found = ScheduleFound(repository=schedule.repository, workflow=schedule.workflow, cron=schedule.cron, at=now)
        self._observe(await self._log.append([Envelope.wrap(found, stream=schedule.stream)], expected_version=0))

    async def _fire_ticks(
        self, schedule: _Schedule, progress: _Progress, repository: RepositoryRegistered, head: _Head, now: datetime
    ) -> list[RunRequested]:
        ticks = due_ticks(schedule.cron, progress.done_until, now, self._policy)
        if not ticks:
            return []
        runs = [
            scheduled_run(repository, schedule.workflow, schedule.cron, tick, ref=head.ref, sha=head.sha)
            for tick in ticks
        ]
        appends = [
            self._log.enqueue([Envelope.wrap(run, stream=run.run_id, event_id=scheduled_event_id(run.run_id))])
            for run in runs
        ]
        stored = [envelope.event for appended in await asyncio.gather(*appends) for envelope in appended]
        fired = [
            Envelope.wrap(
                ScheduleFired(
                    repository=schedule.repository,
                    workflow=schedule.workflow,
                    cron=schedule.cron,
                    tick=tick,
                    run_id=run.run_id,
                ),
                stream=schedule.stream,
            )
            for tick, run in zip(ticks, runs, strict=True)
        ]
        self._observe(await self._log.append(fired, expected_version=progress.version))
        logger.info("%s: %s '%s' fired %s", repository.name, schedule.workflow, schedule.cron, [str(t) for t in ticks])
        return [event for event in stored if isinstance(event, RunRequested)]

    async def _read_on(self) -> None:
        while batch := await self._log.read(self._position, types=_TYPES):
            self._observe(batch)
            self._position = batch[-1].position

    def _observe(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            event = envelope.event
            if isinstance(event, RepositoryRegistered) and envelope.stream == REPOSITORIES_STREAM:
                self._repositories[event.name] = event
            elif isinstance(event, ScheduleFound | ScheduleFired):
                moment = event.at if isinstance(event, ScheduleFound) else event.tick
                schedule = _Schedule(event.repository, event.workflow, event.cron)
                progress = self._progress.setdefault(schedule, _Progress(moment, envelope.sequence))
                progress.done_until = max(progress.done_until, moment)
                progress.version = max(progress.version, envelope.sequence)

    async def _head(self, repository: RepositoryRegistered) -> _Head | None:
        """The default branch's head and its schedules; None, warned about once, when git cannot read it."""
        known = self._heads.get(repository.name)
        try:
            head = await asyncio.to_thread(_read_head, repository, known, self._remotes)
        except GitError as error:
            if self._unreadable.get(repository.name) != str(error):
                logger.warning("the schedules of %s cannot be read: %s", repository.name, error)
            self._unreadable[repository.name] = str(error)
            return None
        self._unreadable.pop(repository.name, None)
        self._heads[repository.name] = head
        return head


async def run_schedules(log: EventLog, settings: RuntimeSettings, remotes: GitRemotes | None = None) -> None:
    """Fire the cron schedules of the repositories registered on `log` until cancelled."""
    await ScheduleTrigger(log, settings.schedule_catch_up, remotes=remotes).run()


def _read_head(repository: RepositoryRegistered, known: _Head | None, remotes: GitRemotes) -> _Head:
    """Reads the workflow files again only when the default branch moved: most minutes, nothing changed."""
    url = repository.url
    ref, sha = resolve_ref(url, repository.default_branch, token=remotes.token(url))
    if known is not None and (known.url, known.ref, known.sha) == (url, ref, sha):
        return known
    try:
        local = remotes.local_commit(url, sha)
    except RemoteGitError as error:
        raise GitError(str(error)) from error
    return _Head(url, ref, sha, tuple(_schedules_at(local, sha)))


def _schedules_at(repository: Path, sha: str) -> Iterator[tuple[str, str]]:
    """(workflow path, cron) of each workflow file at `sha`; a file that does not load is skipped, warned about."""
    try:
        blobs = workflow_blobs(repository, sha)
    except RemoteGitError as error:
        raise GitError(str(error)) from error
    for path, data in blobs.items():
        text = data.decode("utf-8", errors="replace")
        try:
            workflow = load_workflow(text, path)
        except WorkflowError as error:
            logger.warning("%s: %s at %s does not load, its schedules are skipped:\n%s", repository, path, sha, error)
            continue
        except Exception:
            logger.exception("%s: the schedules of %s at %s are skipped, loading it failed", repository, path, sha)
            continue
        entries = workflow.on.get("schedule") or []
        crons = [entry["cron"] for entry in entries if isinstance(entry, dict) and isinstance(entry.get("cron"), str)]
        for cron in dict.fromkeys(crons):
            yield path, cron
