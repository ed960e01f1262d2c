"""How a Docker action's output is read when the engine's log follow does not end with the container."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conveyor_runner_agent.adapters import docker_actions
from conveyor_runner_agent.adapters.docker_actions import _follow_to_end


class _Stream:
    """A follow that gives `chunks`, then blocks until closed (as some engines' follows do)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        self.closed.wait()
        raise ConnectionError("closed while reading")

    def close(self) -> None:
        self.closed.set()


class _Container:
    """What `_follow_to_end` asks of a container: its follow, its end, its finished log."""

    id = "0123456789abcdef"

    def __init__(self, followed: list[bytes], finished: bytes, *, ends: bool) -> None:
        self.stream = _Stream(followed)
        if ends:
            self.stream.close()
        self.finished = finished

    def logs(self, *, stream: bool, **_: Any) -> Any:
        return self.stream if stream else self.finished

    def wait(self) -> dict[str, int]:
        return {"StatusCode": 3}


@pytest.fixture(autouse=True)
def _short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docker_actions, "LOG_GRACE", 0.2)


def test_a_follow_that_outlives_the_container_is_closed_and_the_rest_read_from_the_log() -> None:
    container = _Container([b"one\ntw"], b"one\ntwo\nthree", ends=False)
    lines: list[str] = []

    assert _follow_to_end(container, lines.append) == 3
    assert lines == ["one", "two", "three"]
    assert container.stream.closed.is_set()


def test_a_follow_that_ends_gives_each_line_once() -> None:
    container = _Container([b"a\n", b"b\nc\n"], b"a\nb\nc\n", ends=True)
    lines: list[str] = []

    assert _follow_to_end(container, lines.append) == 3
    assert lines == ["a", "b", "c"]


def test_a_line_the_follow_missed_is_taken_from_the_finished_log() -> None:
    container = _Container([b"second\n", b"third\n"], b"first\nsecond\nthird\n", ends=True)
    lines: list[str] = []

    assert _follow_to_end(container, lines.append) == 3
    assert sorted(lines) == ["first", "second", "third"]  # none lost, none twice
