"""Cron schedules over a real log file and real git repositories: which ticks fire, and that each fires once."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conveyor_events import Envelope, RunRequested, ScheduleFired, ScheduleFound, deterministic_id
from conveyor_ingest import REPOSITORIES_STREAM, CatchUp, ScheduleTrigger, due_ticks, register_repository
from conveyor_ingest.schedules import scheduled_event_id, scheduled_run
from conveyor_runtime import RuntimeSettings, SqliteEventLog
from conveyor_workflow import load_workflow, triggered

NIGHTLY = ".github/workflows/nightly.yml"
EVERY_15 = "*/15 * * * *"


def at(hour: int, minute: int, second: int = 0, millisecond: int = 0) -> datetime:
    return datetime(2025, 1, 6, hour, minute, second, millisecond * 1000, tzinfo=UTC)


def workflow(*crons: str) -> str:
    schedule = "".join(f"    - cron: '{cron}'\n" for cron in crons)
    return f"on:\n  schedule:\n{schedule}jobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n"


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=T", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def repository(root: Path, files: dict[str, str], *, branch: str = "main") -> str:
    """A git repository at `root` whose `branch` holds `files`; the sha of that commit."""
    if not root.exists():
        root.mkdir(parents=True)
        git(root, "init", "-q", "-b", "main")
        git(root, "commit", "-q", "--allow-empty", "-m", "initial")
    if branch != git(root, "branch", "--show-current"):
        git(root, "switch", "-q", "-c", branch)
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"files on {branch}")
    return git(root, "rev-parse", "HEAD")


async def register(log: SqliteEventLog, name: str, url: Path | str, default_branch: str = "main") -> None:
    event = register_repository(name, str(url), default_branch)
    await log.append([Envelope.wrap(event, stream=REPOSITORIES_STREAM)])


async def runs_requested(log: SqliteEventLog) -> list[RunRequested]:
    return [e.event for e in await log.read(0, types=["RunRequested"]) if isinstance(e.event, RunRequested)]


def ticks_of(runs: list[RunRequested], cron: str = EVERY_15, name: str = "app") -> list[datetime]:
    """The ticks whose runs these are, found by their deterministic run ids."""
    minutes = [at(10, 0) + timedelta(minutes=m) for m in range(24 * 60)]
    by_id = {deterministic_id("schedule", name, NIGHTLY, cron, tick.isoformat()): tick for tick in minutes}
    return [by_id[run.run_id] for run in runs]


@pytest.fixture
def app(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "app"
    return root, repository(root, {NIGHTLY: workflow(EVERY_15), "README.md": "hi\n"})


@pytest.fixture
async def log(tmp_path: Path, app: tuple[Path, str]) -> AsyncIterator[SqliteEventLog]:
    log = await SqliteEventLog(tmp_path / "events.db").open()
    await register(log, "app", app[0])
    try:
        yield log
    finally:
        await log.close()


async def reopened(log: SqliteEventLog) -> SqliteEventLog:
    """The same log file, as a restarted process opens it."""
    await log.close()
    return await SqliteEventLog(log.path).open()


# -- which ticks are due ---------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["once", "all", "skip"])
def test_a_tick_exactly_at_now_fires_whatever_the_policy(policy: CatchUp) -> None:
    assert due_ticks(EVERY_15, at(10, 0), at(10, 15), policy) == [at(10, 15)]


@pytest.mark.parametrize("policy", ["once", "all", "skip"])
def test_no_tick_is_due_up_to_the_last_one_done(policy: CatchUp) -> None:
    assert due_ticks(EVERY_15, at(10, 15), at(10, 15, 30), policy) == []
    assert due_ticks(EVERY_15, at(10, 15), at(10, 29, 59, 999), policy) == []


def test_once_fires_only_the_latest_missed_tick() -> None:
    assert due_ticks(EVERY_15, at(10, 0), at(11, 7), "once") == [at(11, 0)]


def test_all_fires_every_missed_tick_oldest_first() -> None:
    assert due_ticks(EVERY_15, at(10, 0), at(11, 7), "all") == [at(10, 15), at(10, 30), at(10, 45), at(11, 0)]


def test_all_fires_the_latest_hundred_missed_ticks_at_most() -> None:
    ticks = due_ticks("* * * * *", at(8, 0), at(11, 0, 30), "all")

    assert len(ticks) == 100
    assert (ticks[0], ticks[-1]) == (at(9, 21), at(11, 0))
    assert ticks == sorted(ticks)


def test_skip_fires_no_missed_tick_but_the_one_on_time() -> None:
    assert due_ticks(EVERY_15, at(10, 0), at(11, 7), "skip") == []
    assert due_ticks(EVERY_15, at(10, 0), at(11, 0, 0, 5), "skip") == [at(11, 0)]


def test_a_tick_is_due_at_any_now_within_its_minute() -> None:
    assert due_ticks(EVERY_15, at(10, 0), at(10, 15, 59, 999), "skip") == [at(10, 15)]
    assert due_ticks(EVERY_15, at(10, 0), at(10, 14, 59, 999), "all") == []


def test_a_cron_whose_dates_never_come_never_fires() -> None:
    assert due_ticks("0 0 30 2 *", at(10, 0), at(11, 0), "all") == []


# -- firing over a real log --------------------------------------------------------------------------------


async def test_a_cron_seen_first_fires_none_of_its_past_ticks(log: SqliteEventLog) -> None:
    trigger = ScheduleTrigger(log, "all")

    assert await trigger.fire_due(at(10, 7)) == []
    [found] = [e.event for e in await log.read(0, types=["ScheduleFound"])]
    assert isinstance(found, ScheduleFound)
    assert (found.repository, found.workflow, found.cron, found.at) == ("app", NIGHTLY, EVERY_15, at(10, 7))
    assert ticks_of(await trigger.fire_due(at(10, 15, 0, 5))) == [at(10, 15)]


async def test_a_tick_fires_once(log: SqliteEventLog) -> None:
    trigger = ScheduleTrigger(log)
    await trigger.fire_due(at(10, 7))

    fired = await trigger.fire_due(at(10, 15, 0, 5))
    again = await trigger.fire_due(at(10, 15, 40))

    assert ticks_of(fired) == [at(10, 15)]
    assert again == []
    assert await runs_requested(log) == fired
    [record] = [e.event for e in await log.read(0, types=["ScheduleFired"])]
    assert isinstance(record, ScheduleFired)
    assert (record.tick, record.run_id) == (at(10, 15), fired[0].run_id)


@pytest.mark.parametrize("later", [at(10, 15, 0, 5), at(10, 15, 50), at(10, 16), at(10, 29, 59)])
async def test_a_restart_does_not_fire_a_tick_again(log: SqliteEventLog, later: datetime) -> None:
    trigger = ScheduleTrigger(log, "all")
    await trigger.fire_due(at(10, 7))
    [fired] = await trigger.fire_due(at(10, 15, 0, 5))

    log = await reopened(log)
    try:
        assert await ScheduleTrigger(log, "all").fire_due(later) == []
        assert await runs_requested(log) == [fired]
    finally:
        await log.close()


async def test_a_restart_keeps_the_moment_a_cron_was_first_seen(log: SqliteEventLog) -> None:
    await ScheduleTrigger(log, "all").fire_due(at(10, 7))

    log = await reopened(log)
    try:
        assert ticks_of(await ScheduleTrigger(log, "all").fire_due(at(10, 20))) == [at(10, 15)]
    finally:
        await log.close()


@pytest.mark.parametrize(
    ("policy", "caught_up"),
    [
        ("once", [at(11, 0)]),
        ("all", [at(10, 30), at(10, 45), at(11, 0)]),
        ("skip", []),
    ],
)
async def test_ticks_missed_while_nothing_ran_follow_the_policy(
    log: SqliteEventLog, policy: CatchUp, caught_up: list[datetime]
) -> None:
    first = ScheduleTrigger(log, policy)
    await first.fire_due(at(10, 7))
    await first.fire_due(at(10, 15, 0, 5))

    log = await reopened(log)
    try:
        trigger = ScheduleTrigger(log, policy)
        assert ticks_of(await trigger.fire_due(at(11, 7))) == caught_up
        assert ticks_of(await trigger.fire_due(at(11, 15, 0, 5))) == [at(11, 15)]
        assert ticks_of(await runs_requested(log)) == [at(10, 15), *caught_up, at(11, 15)]
    finally:
        await log.close()


@pytest.mark.parametrize("shared", [True, False], ids=["one log object", "two processes"])
async def test_two_triggers_on_one_log_fire_each_tick_once(log: SqliteEventLog, shared: bool) -> None:
    other_log = log if shared else await SqliteEventLog(log.path).open()
    try:
        one, two = ScheduleTrigger(log, "all"), ScheduleTrigger(other_log, "all")
        await asyncio.gather(one.fire_due(at(10, 7)), two.fire_due(at(10, 7)))
        assert len(await log.read(0, types=["ScheduleFound"])) == 1

        for now in (at(11, 7), at(11, 15, 0, 5), at(11, 15, 30), at(12, 0, 0, 5)):
            mine, theirs = await asyncio.gather(one.fire_due(now), two.fire_due(now))
            assert not {run.run_id for run in mine} & {run.run_id for run in theirs}

        expected = [at(10, 15), at(10, 30), at(10, 45), at(11, 0), at(11, 15), at(11, 30), at(11, 45), at(12, 0)]
        assert ticks_of(await runs_requested(log)) == expected
        fired = [e.event for e in await log.read(0, types=["ScheduleFired"])]
        assert sorted(event.tick for event in fired if isinstance(event, ScheduleFired)) == expected
    finally:
        if not shared:
            await other_log.close()


async def test_a_tick_whose_run_was_stored_before_a_crash_is_not_requested_twice(
    log: SqliteEventLog, app: tuple[Path, str]
) -> None:
    trigger = ScheduleTrigger(log)
    await trigger.fire_due(at(10, 7))
    registered = register_repository("app", str(app[0]))
    earlier = scheduled_run(registered, NIGHTLY, EVERY_15, at(10, 15), ref="refs/heads/main", sha="f" * 40)
    await log.append([Envelope.wrap(earlier, stream=earlier.run_id, event_id=scheduled_event_id(earlier.run_id))])

    log = await reopened(log)
    try:
        assert await ScheduleTrigger(log).fire_due(at(10, 15, 0, 5)) == [earlier]
        assert await runs_requested(log) == [earlier]
        assert len(await log.read(0, types=["ScheduleFired"])) == 1
    finally:
        await log.close()


async def test_the_run_is_a_schedule_event_of_the_workflow_at_the_default_branch_head(tmp_path: Path) -> None:
    root = tmp_path / "app"
    repository(root, {"README.md": "main has no schedule\n"})
    release = repository(root, {NIGHTLY: workflow("0 3 * * 1-5", "5 4 * * *")}, branch="release")
    git(root, "switch", "-q", "main")
    async with SqliteEventLog(tmp_path / "events.db") as log:
        await register(log, "app", root, default_branch="release")
        trigger = ScheduleTrigger(log)
        await trigger.fire_due(at(2, 50))

        [run] = await trigger.fire_due(at(3, 0, 0, 5))

    assert (run.repository, run.ref, run.sha) == (str(root), "refs/heads/release", release)
    assert (run.event_name, run.payload["schedule"], run.workflows) == ("schedule", "0 3 * * 1-5", [NIGHTLY])
    assert run.run_id == deterministic_id("schedule", "app", NIGHTLY, "0 3 * * 1-5", at(3, 0).isoformat())
    assert triggered(load_workflow(workflow("5 4 * * *", "0 3 * * 1-5"), NIGHTLY), "schedule", run.payload)
    assert not triggered(load_workflow(workflow("5 4 * * *"), NIGHTLY), "schedule", run.payload)


async def test_a_broken_workflow_or_repository_does_not_stop_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = {
        ".github/workflows/broken.yml": "on:\n  schedule:\n    - cron: '*/15 * * * *'\njobs: [nope\n",
        ".github/workflows/bad-cron.yml": workflow("61 * * * *"),
        ".github/workflows/nightly.yml": workflow(EVERY_15),
        ".github/workflows/notes.txt": workflow(EVERY_15),
        ".github/workflows/nested/inner.yml": workflow(EVERY_15),
    }
    first = repository(tmp_path / "first", files)
    second = repository(tmp_path / "second", {NIGHTLY: workflow(EVERY_15)})
    caplog.set_level(logging.WARNING, logger="conveyor_ingest.schedules")
    async with SqliteEventLog(tmp_path / "events.db") as log:
        await register(log, "first", tmp_path / "first")
        await register(log, "gone", tmp_path / "nowhere")
        await register(log, "no-branch", tmp_path / "second", default_branch="trunk")
        await register(log, "second", tmp_path / "second")
        trigger = ScheduleTrigger(log)
        await trigger.fire_due(at(10, 7))

        runs = await trigger.fire_due(at(10, 15, 0, 5))

    assert [(run.repository, run.sha, run.workflows) for run in runs] == [
        (str(tmp_path / "first"), first, [NIGHTLY]),
        (str(tmp_path / "second"), second, [NIGHTLY]),
    ]
    warnings = [record.getMessage() for record in caplog.records]
    for problem in ("broken.yml", "bad-cron.yml", "nowhere", "trunk"):
        assert len([warning for warning in warnings if problem in warning]) == 1, "warned once, not each minute"


async def test_a_new_commit_on_the_default_branch_brings_its_schedules(
    log: SqliteEventLog, app: tuple[Path, str]
) -> None:
    trigger = ScheduleTrigger(log)
    await trigger.fire_due(at(10, 7))
    moved = repository(app[0], {NIGHTLY: workflow("0 * * * *")})

    assert await trigger.fire_due(at(10, 15, 0, 5)) == []
    [run] = await trigger.fire_due(at(11, 0, 0, 5))

    assert (run.payload["schedule"], run.sha) == ("0 * * * *", moved)


async def test_run_fires_just_after_each_minute_begins(log: SqliteEventLog) -> None:
    started, start = time.monotonic(), at(10, 14, 59, 700)
    trigger = ScheduleTrigger(log, clock=lambda: start + timedelta(seconds=time.monotonic() - started))
    running = asyncio.create_task(trigger.run())
    try:
        async with asyncio.timeout(10):
            while not (runs := await runs_requested(log)):
                await asyncio.sleep(0.01)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    assert ticks_of(runs) == [at(10, 15)]
    assert time.monotonic() - started < 5


def test_the_catch_up_policy_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEYOR_SCHEDULE_CATCH_UP", raising=False)
    assert RuntimeSettings().schedule_catch_up == "once"
    monkeypatch.setenv("CONVEYOR_SCHEDULE_CATCH_UP", "skip")
    assert RuntimeSettings().schedule_catch_up == "skip"


async def test_a_pass_refuses_a_time_without_a_time_zone(log: SqliteEventLog) -> None:
    with pytest.raises(ValueError, match="time zone"):
        await ScheduleTrigger(log).fire_due(datetime(2025, 1, 6, 10, 15))
