"""The git token of a repository registered by URL, looked up from git's threads over one log kept open: on the
embedded log and on Kafka, where opening a log reads the index of the whole events topic."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conveyor_cli.tokens import RepositoryTokenLookup
from conveyor_events import Envelope
from conveyor_ingest import REPOSITORIES_STREAM, LocalKeyWrapper, register_repository, seal_for
from conveyor_runtime import RuntimeSettings, open_event_log

pytestmark = pytest.mark.e2e

URL = "https://git.example.test/octo/demo.git"
OTHER = "https://git.example.test/octo/other.git"


async def register(settings: RuntimeSettings, name: str, url: str, token: str | None) -> None:
    keys = LocalKeyWrapper.from_settings(settings)
    event = register_repository(name, url, github=f"octo/{name}", token=seal_for(name, "token", token, keys))
    async with open_event_log(settings) as log:
        await log.append([Envelope.wrap(event, stream=REPOSITORIES_STREAM)])


def check_lookups(settings: RuntimeSettings) -> None:
    asyncio.run(register(settings, "demo", URL, "first-token"))
    lookup = RepositoryTokenLookup(settings)
    try:
        with ThreadPoolExecutor(8) as pool:  # as git's worker threads ask, all at once
            found = list(pool.map(lookup, [URL, OTHER] * 8))
        assert found == ["first-token", None] * 8
        opened = lookup._log
        assert opened is not None

        # Registered again by another process: the next lookup sees it, over the same log.
        asyncio.run(register(settings, "demo", URL, "second-token"))
        asyncio.run(register(settings, "other", OTHER, "other-token"))
        assert lookup(URL) == "second-token"
        assert lookup(OTHER) == "other-token"
        assert lookup._log is opened
    finally:
        lookup.close()
    assert lookup._log is None
    assert lookup(URL) == "second-token"  # closed, it opens again when asked
    lookup.close()


def test_tokens_are_looked_up_over_one_log_on_sqlite(tmp_path: Path) -> None:
    check_lookups(RuntimeSettings(data_dir=tmp_path, event_log="sqlite", database_url=None))


def test_tokens_are_looked_up_over_one_log_on_kafka(tmp_path: Path, topic_prefix: str) -> None:
    check_lookups(
        RuntimeSettings(data_dir=tmp_path, event_log="kafka", kafka_topic_prefix=topic_prefix, database_url=None)
    )


def test_a_lookup_that_cannot_open_the_log_gives_none_and_the_next_one_tries_again(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    lookup = RepositoryTokenLookup(RuntimeSettings(data_dir=blocked, event_log="sqlite", database_url=None))
    try:
        assert lookup(URL) is None
        assert lookup._log is None
        blocked.unlink()
        blocked.mkdir()
        settings = RuntimeSettings(data_dir=blocked, event_log="sqlite", database_url=None)
        asyncio.run(register(settings, "demo", URL, "late-token"))
        assert lookup(URL) == "late-token"
    finally:
        lookup.close()
