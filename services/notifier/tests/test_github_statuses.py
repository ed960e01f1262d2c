"""The GitHub client against a real HTTP server that answers as GitHub does, retries and rate limits included."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from conveyor_notifier.adapters import CommitStatus, DeliveryFailed, GitHubStatuses, Superseded

if TYPE_CHECKING:
    from tests.fakes.github_api import FakeGitHub

SHA = "0123456789abcdef0123456789abcdef01234567"
STATUS = CommitStatus(
    repository="octo/hello",
    sha=SHA,
    state="success",
    context="Conveyor / CI / build",
    description="Succeeded",
    target_url="http://conveyor.example/api/runs/run-1",
)


@dataclass
class FakeTime:
    """A clock that moves only when the client sleeps, and remembers every sleep."""

    now: float = 1_700_000_000.0
    sleeps: list[float] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def clock(self) -> float:
        return self.now


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def client(url: str, time: FakeTime, *, longest_wait: float = 600.0) -> GitHubStatuses:
    return GitHubStatuses(url, "ghp_secret", sleep=time.sleep, clock=time.clock, longest_wait=longest_wait)


async def test_a_status_is_posted_as_github_documents_it(fake_github: FakeGitHub, time: FakeTime) -> None:
    github = client(fake_github.url, time)
    attempts = await github.create(STATUS)
    await github.aclose()

    assert attempts == 1
    [call] = fake_github.recorded()
    assert (call.method, call.path, call.answered) == ("POST", f"/repos/octo/hello/statuses/{SHA}", 201)
    assert call.headers["accept"] == "application/vnd.github+json"
    assert call.headers["x-github-api-version"] == "2022-11-28"
    assert call.headers["authorization"] == "Bearer ghp_secret"
    assert call.body == {
        "state": "success",
        "context": "Conveyor / CI / build",
        "description": "Succeeded",
        "target_url": "http://conveyor.example/api/runs/run-1",
    }
    assert time.sleeps == []


async def test_a_repository_token_is_used_over_the_default_one(fake_github: FakeGitHub, time: FakeTime) -> None:
    github = client(fake_github.url, time)
    await github.create(STATUS, token="ghp_of_the_repository")
    await github.create(STATUS)
    await github.aclose()

    assert [call.headers["authorization"] for call in fake_github.recorded()] == [
        "Bearer ghp_of_the_repository",
        "Bearer ghp_secret",
    ]


async def test_no_token_at_all_is_a_failure_without_a_call(fake_github: FakeGitHub, time: FakeTime) -> None:
    github = GitHubStatuses(fake_github.url, sleep=time.sleep, clock=time.clock)
    with pytest.raises(DeliveryFailed, match="no token"):
        await github.create(STATUS)
    await github.aclose()

    assert not github.has_default_token
    assert fake_github.recorded() == []


async def test_server_errors_are_tried_again_with_exponential_backoff(fake_github: FakeGitHub, time: FakeTime) -> None:
    fake_github.fail_next(2, 500)
    github = client(fake_github.url, time)
    attempts = await github.create(STATUS)
    await github.aclose()

    assert attempts == 3
    assert [call.answered for call in fake_github.recorded()] == [500, 500, 201]
    assert time.sleeps == [0.5, 1.0]


async def test_it_gives_up_after_four_tries(fake_github: FakeGitHub, time: FakeTime) -> None:
    fake_github.fail_next(10, 502, message="Server Error")
    github = client(fake_github.url, time)
    with pytest.raises(DeliveryFailed) as failed:
        await github.create(STATUS)
    await github.aclose()

    assert failed.value.attempts == 4
    assert failed.value.reason == "HTTP 502: Server Error"
    assert len(fake_github.recorded()) == 4
    assert time.sleeps == [0.5, 1.0, 2.0]


async def test_a_lost_connection_is_tried_again_then_given_up(time: FakeTime) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    github = client(f"http://127.0.0.1:{port}", time)
    with pytest.raises(DeliveryFailed) as failed:
        await github.create(STATUS)
    await github.aclose()

    assert failed.value.attempts == 4
    assert failed.value.reason.startswith("ConnectError")
    assert time.sleeps == [0.5, 1.0, 2.0]


async def test_the_primary_rate_limit_is_waited_out_until_its_reset(fake_github: FakeGitHub, time: FakeTime) -> None:
    reset = int(time.now) + 30
    limited = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    fake_github.fail_next(1, 403, headers=limited, message="API rate limit exceeded")
    github = client(fake_github.url, time)
    attempts = await github.create(STATUS)
    await github.aclose()

    assert attempts == 2
    assert time.sleeps == [31.0]  # until just after the reset, which counts whole seconds
    assert time.now > reset


async def test_a_secondary_rate_limit_waits_as_long_as_retry_after_says(
    fake_github: FakeGitHub, time: FakeTime
) -> None:
    fake_github.fail_next(1, 429, headers={"retry-after": "7"})
    github = client(fake_github.url, time)
    attempts = await github.create(STATUS)
    await github.aclose()

    assert attempts == 2
    assert time.sleeps == [7.0]


async def test_a_secondary_rate_limit_without_headers_waits_a_minute_then_longer(
    fake_github: FakeGitHub, time: FakeTime
) -> None:
    fake_github.fail_next(2, 403, message="You have exceeded a secondary rate limit. Please wait a few minutes.")
    github = client(fake_github.url, time)
    attempts = await github.create(STATUS)
    await github.aclose()

    assert attempts == 3
    assert time.sleeps == [60.0, 120.0]


async def test_a_rate_limit_pauses_every_status_and_a_long_one_fails_them_at_once(
    fake_github: FakeGitHub, time: FakeTime
) -> None:
    fake_github.fail_next(1, 429, headers={"retry-after": "3600"})
    github = client(fake_github.url, time, longest_wait=600.0)
    with pytest.raises(DeliveryFailed) as first:
        await github.create(STATUS)
    with pytest.raises(DeliveryFailed) as second:
        await github.create(STATUS)
    await github.aclose()

    assert "rate limit lifts only in 3600 s" in first.value.reason
    assert (first.value.attempts, second.value.attempts) == (1, 0)
    assert len(fake_github.recorded()) == 1  # GitHub is not called again while it limits this client
    assert time.sleeps == []


@pytest.mark.parametrize(
    ("status", "message"),
    [(422, "Validation Failed"), (404, "Not Found"), (401, "Bad credentials"), (403, "Resource not accessible")],
)
async def test_client_errors_are_not_tried_again(
    fake_github: FakeGitHub, time: FakeTime, status: int, message: str
) -> None:
    fake_github.fail_next(1, status, message=message)
    github = client(fake_github.url, time)
    with pytest.raises(DeliveryFailed) as failed:
        await github.create(STATUS)
    await github.aclose()

    assert (failed.value.attempts, failed.value.reason) == (1, f"HTTP {status}: {message}")
    assert len(fake_github.recorded()) == 1
    assert time.sleeps == []


async def test_a_status_replaced_while_it_waits_is_not_tried_again(fake_github: FakeGitHub, time: FakeTime) -> None:
    fake_github.fail_next(5, 500)
    github = client(fake_github.url, time)
    with pytest.raises(Superseded):
        await github.create(STATUS, stale=lambda: True)
    await github.aclose()

    assert len(fake_github.recorded()) == 1
