"""Back-filling missed webhook deliveries over a real log, against a fake GitHub that answers as GitHub documents."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn
from conveyor_events import DELIVERIES_STREAM, DeliveryRedelivered, Envelope, RunRequested
from conveyor_ingest import (
    REPOSITORIES_STREAM,
    BackfillSummary,
    LocalKeyWrapper,
    Queries,
    backfill,
    backfill_forever,
    create_app,
    register_repository,
    request_run,
    run_id_for,
    seal_for,
)
from conveyor_ingest.domain import webhook_event_id
from conveyor_runtime import RuntimeSettings, SqliteEventLog, SqliteProjections, project

if TYPE_CHECKING:
    from tests.fakes.github_api import FakeGitHub, Hook

KEY = bytes(range(32))
TOKEN = "ghp_backfill-3c9e1f-not-in-any-file"
SECRET = "whsec-backfill-81d2-not-in-any-file"
PUBLIC_URL = "https://conveyor.example"
HOOK_URL = f"{PUBLIC_URL}/webhooks/github"
SHA = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class World:
    """A real log with registered repositories, a fake GitHub, and the settings that point at both."""

    log: SqliteEventLog
    github: FakeGitHub
    settings: RuntimeSettings
    keys: LocalKeyWrapper = field(default_factory=lambda: LocalKeyWrapper(KEY))
    sleeps: list[float] = field(default_factory=list)
    clock: float = 1_700_000_000.0

    async def register(
        self, name: str, *, github: str | None = None, token: str | None = TOKEN, secret: str | None = None
    ) -> Envelope:
        event = register_repository(
            name,
            f"/srv/{name}",
            github=github,
            token=seal_for(name, "token", token, self.keys),
            webhook_secret=seal_for(name, "webhook_secret", secret, self.keys),
        )
        [stored] = await self.log.append([Envelope.wrap(event, stream=REPOSITORIES_STREAM)])
        return stored

    async def received(self, name: str, guid: str) -> None:
        """The `RunRequested` ingest appends for a delivery it took."""
        requested = request_run(repository=name, ref="refs/heads/main", sha=SHA, delivery_id=guid)
        envelope = Envelope.wrap(requested, stream=requested.run_id, event_id=webhook_event_id(requested.run_id))
        await self.log.append([envelope])

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock += seconds

    def time(self) -> float:
        return self.clock

    async def backfill(self, **options: Any) -> list[BackfillSummary]:
        return await backfill(self.log, self.settings, self.keys, sleep=self.sleep, clock=self.time, **options)

    async def remembered(self) -> list[DeliveryRedelivered]:
        return [e.event for e in await self.log.read_stream(DELIVERIES_STREAM)]  # type: ignore[misc]


def settings_for(github: FakeGitHub, data: Path, public_url: str = PUBLIC_URL) -> RuntimeSettings:
    return RuntimeSettings(data_dir=data, github_api_url=github.url, public_url=public_url)


@pytest.fixture
async def world(tmp_path: Path, fake_github: FakeGitHub) -> AsyncIterator[World]:
    log = SqliteEventLog(tmp_path / "events.db")
    await log.open()
    try:
        yield World(log, fake_github, settings_for(fake_github, tmp_path))
    finally:
        await log.close()


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def attempts_of(hook: Hook) -> list[str]:
    """The guids of `hook`'s redelivery attempts, as GitHub lists them."""
    return [delivery["guid"] for delivery in hook.deliveries if delivery["redelivery"]]


async def redelivered_by_github(github: FakeGitHub, hook: Hook, count: int) -> None:
    await github.wait_for(lambda _: len(attempts_of(hook)) >= count)


async def test_a_missed_delivery_is_redelivered_and_a_received_one_is_not(world: World) -> None:
    await world.register("octo/app")
    hook = world.github.add_hook("octo/app", HOOK_URL)
    world.github.add_delivery(hook, "guid-received", status_code=202, delivered_at=ago(hours=2))
    missed = world.github.add_delivery(hook, "guid-missed", status_code=502, delivered_at=ago(hours=1))
    await world.received("octo/app", "guid-received")

    summaries = await world.backfill()

    assert summaries == [BackfillSummary("octo/app", "octo/app", checked=2, redelivered=("guid-missed",))]
    [redelivery] = world.github.redeliveries()
    assert (redelivery.method, redelivery.path) == (
        "POST",
        f"/repos/octo/app/hooks/{hook.id}/deliveries/{missed['id']}/attempts",
    )
    [remembered] = await world.remembered()
    assert (remembered.github, remembered.guid, remembered.delivery_id, remembered.event_name) == (
        "octo/app",
        "guid-missed",
        missed["id"],
        "push",
    )


async def test_a_second_backfill_does_not_redeliver_again(world: World) -> None:
    await world.register("octo/app")
    hook = world.github.add_hook("octo/app", HOOK_URL)
    world.github.add_delivery(hook, "guid-missed", delivered_at=ago(minutes=30))
    await world.backfill()
    await redelivered_by_github(world.github, hook, 1)

    again = await world.backfill()

    assert again == [BackfillSummary("octo/app", "octo/app", checked=1)]
    assert len(world.github.redeliveries()) == 1


async def test_what_was_redelivered_is_remembered_in_the_log_even_when_github_does_not_list_it(
    world: World, tmp_path: Path
) -> None:
    await world.register("octo/app")
    hook = world.github.add_hook("octo/app", HOOK_URL)
    world.github.add_delivery(hook, "guid-missed", delivered_at=ago(minutes=30))
    await world.backfill()
    await redelivered_by_github(world.github, hook, 1)
    hook.deliveries[:] = [delivery for delivery in hook.deliveries if not delivery["redelivery"]]
    await world.log.close()

    reopened = SqliteEventLog(tmp_path / "events.db")
    await reopened.open()
    try:
        again = await backfill(reopened, world.settings, world.keys, sleep=world.sleep, clock=world.time)
    finally:
        await reopened.close()
        await world.log.open()

    assert again[0].redelivered == ()
    assert len(world.github.redeliveries()) == 1


async def test_a_delivery_someone_already_redelivered_is_left_alone(world: World) -> None:
    await world.register("octo/app")
    hook = world.github.add_hook("octo/app", HOOK_URL)
    world.github.add_delivery(hook, "guid-missed", delivered_at=ago(hours=2))
    world.github.add_delivery(hook, "guid-missed", delivered_at=ago(hours=1), redelivery=True)

    [summary] = await world.backfill()

    assert (summary.checked, summary.redelivered, summary.errors) == (1, (), ())
    assert world.github.redeliveries() == []


async def test_ping_and_events_that_start_no_run_are_not_redelivered(world: World) -> None:
    await world.register("octo/app")
    hook = world.github.add_hook("octo/app", HOOK_URL)
    world.github.add_delivery(hook, "guid-ping", event="ping", delivered_at=ago(hours=3))
    world.github.add_delivery(hook, "guid-star", event="star", delivered_at=ago(hours=2))
    world.github.add_delivery(hook, "guid-pr", event="pull_request", delivered_at=ago(hours=1))

    [summary] = await world.backfill()

    assert (summary.checked, summary.redelivered) == (3, ("guid-pr",))


async def test_pages_are_followed_until_deliveries_are_older_than_the_cutoff(world: World) -> None:
    await world.register("octo/app")
    hook = world.github.add_hook("octo/app", HOOK_URL)
    for n in range(80):  # older than GitHub keeps: never asked for
        world.github.add_delivery(hook, f"guid-old-{n}", delivered_at=ago(days=4, minutes=n))
    for n in range(150):  # pings start no run (and cost no redelivery); the first and the last are pushes
        event = "push" if n in (0, 149) else "ping"
        world.github.add_delivery(hook, f"guid-{n:03}", event=event, delivered_at=ago(hours=1, minutes=n))

    [summary] = await world.backfill()

    assert summary.checked == 150
    assert summary.redelivered == ("guid-000", "guid-149")  # newest first, from the first page and the second
    listed = [call for call in world.github.recorded() if call.method == "GET" and "/deliveries" in call.path]
    assert [call.path for call in listed] == [
        f"/repos/octo/app/hooks/{hook.id}/deliveries?per_page=100",
        f"/repos/octo/app/hooks/{hook.id}/deliveries?per_page=100&cursor=v1_100",
    ]  # the second page reaches past the cutoff: the third is not read


async def test_since_narrows_the_deliveries_looked_at(world: World) -> None:
    await world.register("octo/app")
    hook = world.github.add_hook("octo/app", HOOK_URL)
    world.github.add_delivery(hook, "guid-earlier", delivered_at=ago(hours=10))
    world.github.add_delivery(hook, "guid-recent", delivered_at=ago(hours=2))

    [summary] = await world.backfill(since=timedelta(hours=5))

    assert (summary.checked, summary.redelivered) == (1, ("guid-recent",))


async def test_every_call_carries_the_token_as_github_expects(world: World) -> None:
    await world.register("octo/app")
    world.github.add_hook("octo/elsewhere", HOOK_URL)
    hook = world.github.add_hook("octo/app", HOOK_URL)
    world.github.add_delivery(hook, "guid-missed", delivered_at=ago(minutes=5))

    await world.backfill()

    calls = world.github.recorded()
    assert [(call.method, call.path.split("?")[0]) for call in calls] == [
        ("GET", "/repos/octo/app/hooks"),
        ("GET", f"/repos/octo/app/hooks/{hook.id}/deliveries"),
        ("POST", f"/repos/octo/app/hooks/{hook.id}/deliveries/{hook.deliveries[0]['id']}/attempts"),
    ]
    for call in calls:
        assert call.headers["authorization"] == f"Bearer {TOKEN}"
        assert call.headers["accept"] == "application/vnd.github+json"
        assert call.headers["x-github-api-version"] == "2022-11-28"
        assert call.headers["user-agent"]


async def test_one_repository_failing_is_reported_and_the_others_are_still_back_filled(world: World) -> None:
    for name in ("octo/gone", "octo/down", "octo/hookless", "octo/app", "octo/tokenless"):
        await world.register(name, token=None if name == "octo/tokenless" else TOKEN)
    world.github.add_hook("octo/down", HOOK_URL)
    world.github.add_hook("octo/hookless", "https://elsewhere.example/hook")
    hook = world.github.add_hook("octo/app", HOOK_URL)
    world.github.add_delivery(hook, "guid-missed", delivered_at=ago(minutes=5))
    world.github.fail_next(10, 502, message="Server Error", path="/repos/octo/down/")

    summaries = {summary.repository: summary for summary in await world.backfill()}

    assert sorted(summaries) == ["octo/app", "octo/down", "octo/gone", "octo/hookless"]
    assert summaries["octo/app"].redelivered == ("guid-missed",)
    assert summaries["octo/app"].errors == ()
    [gone] = summaries["octo/gone"].errors
    assert "GET /repos/octo/gone/hooks: HTTP 404" in gone
    [down] = summaries["octo/down"].errors
    assert "HTTP 502: Server Error (after 4 tries)" in down
    assert world.sleeps == [0.5, 1.0, 2.0]  # exponential backoff between the tries of octo/down
    [hookless] = summaries["octo/hookless"].errors
    assert HOOK_URL in hookless


async def test_a_rate_limit_is_waited_out(world: World) -> None:
    await world.register("octo/app")
    hook = world.github.add_hook("octo/app", HOOK_URL)
    world.github.add_delivery(hook, "guid-missed", delivered_at=ago(minutes=5))
    world.github.fail_next(1, 429, headers={"retry-after": "7"}, message="secondary rate limit")

    [summary] = await world.backfill()

    assert (summary.redelivered, summary.errors) == (("guid-missed",), ())
    assert world.sleeps == [7.0]


async def test_a_delivery_received_under_another_registration_of_the_repository_is_not_redelivered(
    world: World,
) -> None:
    await world.register("app", github="octo/app", token=None)
    await world.register("app-ci", github="octo/app")
    hook = world.github.add_hook("octo/app", HOOK_URL)
    world.github.add_delivery(hook, "guid-received", delivered_at=ago(minutes=5))
    await world.received("app", "guid-received")

    [summary] = await world.backfill()

    assert (summary.repository, summary.checked, summary.redelivered) == ("app-ci", 1, ())


class Stop(Exception):
    """Ends `backfill_forever` from its sleep, the way a cancellation would."""


async def test_the_periodic_backfill_looks_again_each_period_and_goes_on_after_a_failing_pass(world: World) -> None:
    await world.register("octo/app")
    hook = world.github.add_hook("octo/app", HOOK_URL)
    world.github.add_delivery(hook, "guid-first", delivered_at=ago(hours=1))
    world.github.fail_next(1, 404, path="/hooks")  # the first pass finds no hooks: it is reported, not fatal
    periods: list[float] = []

    async def sleep(seconds: float) -> None:
        periods.append(seconds)
        if len(periods) == 2:
            world.github.add_delivery(hook, "guid-second")
        if len(periods) == 3:
            raise Stop

    with pytest.raises(Stop):
        await backfill_forever(world.log, world.settings, world.keys, every=timedelta(minutes=10), sleep=sleep)

    assert periods == [600.0, 600.0, 600.0]
    originals = {str(delivery["id"]): delivery["guid"] for delivery in hook.deliveries if not delivery["redelivery"]}
    asked = [originals[call.path.split("/")[-2]] for call in world.github.redeliveries()]
    assert asked == ["guid-first", "guid-second"]
    assert [event.guid for event in await world.remembered()] == ["guid-first", "guid-second"]


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """`app` served over HTTP on a free port of 127.0.0.1, as GitHub reaches Conveyor."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
        listening.close()


async def test_a_redelivery_reaches_ingest_and_requests_the_run_once(tmp_path: Path, fake_github: FakeGitHub) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    store = SqliteProjections(tmp_path / "projections.db")
    await log.open()
    projector = asyncio.create_task(project(log, store))
    keys = LocalKeyWrapper(KEY)
    queries = Queries(store)
    try:
        async with served(create_app(log, queries, keys)) as url:
            world = World(log, fake_github, settings_for(fake_github, tmp_path, url), keys)
            stored = await world.register("octo/app", secret=SECRET)
            await queries.caught_up(stored.position)
            hook = fake_github.add_hook("octo/app", f"{url}/webhooks/github", secret=SECRET)
            push = {
                "ref": "refs/heads/main",
                "after": SHA,
                "repository": {"full_name": "octo/app", "default_branch": "main"},
                "sender": {"login": "mona"},
            }
            fake_github.add_delivery(hook, "guid-while-down", payload=push, delivered_at=ago(minutes=20))

            [first] = await world.backfill()
            await redelivered_by_github(fake_github, hook, 1)
            [second] = await world.backfill()
    finally:
        projector.cancel()
        await asyncio.gather(projector, return_exceptions=True)
        requested = [e.event for e in await log.read(0, types=[RunRequested.event_type()])]
        await log.close()

    assert (first.redelivered, second.redelivered) == (("guid-while-down",), ())
    [attempt] = [delivery for delivery in hook.deliveries if delivery["redelivery"]]
    assert (attempt["guid"], attempt["status_code"]) == ("guid-while-down", 202)
    [run] = requested
    assert isinstance(run, RunRequested)
    assert (run.run_id, run.delivery_id, run.sha, run.actor) == (
        run_id_for("octo/app", "guid-while-down"),
        "guid-while-down",
        SHA,
        "mona",
    )
