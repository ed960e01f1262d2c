"""The git token of a repository registered by clone URL, looked up from any thread over one log kept open."""

from __future__ import annotations

import asyncio
import logging
import threading

from conveyor_ingest import LocalKeyWrapper, RepositoryTokens
from conveyor_runtime import OpenableEventLog, RuntimeSettings, open_event_log, redacted

logger = logging.getLogger(__name__)

LOOKUP_TIMEOUT = 60.0
"""How long git waits for a token before it goes without one (opening a Kafka log first reads its index)."""


class RepositoryTokenLookup:
    """`lookup(url)`: the token git fetches `url` with, None when the repository has none or it cannot be had.

    Git runs in worker threads and some callers of the lookup are not async, so the lookup has a thread and an
    event loop of its own, and a log of its own in that loop. The log is opened at the first lookup and kept:
    on Kafka, opening one reads the index of the whole events topic, which a lookup per fetch would repeat. So
    are the repositories' GitHub App installation tokens, until shortly before they expire. A lookup that
    fails (the log cannot be opened, say) is logged and gives None; the next one tries again.
    """

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._log: OpenableEventLog | None = None
        self._tokens: RepositoryTokens | None = None
        self._opening: asyncio.Lock | None = None

    def __call__(self, url: str) -> str | None:
        try:
            future = asyncio.run_coroutine_threadsafe(self._lookup(url), self._started())
            return future.result(timeout=LOOKUP_TIMEOUT)
        except Exception:
            logger.exception("the token of %s cannot be looked up; git goes without one", redacted(url))
            return None

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=loop.run_forever, name="repository-token-lookup", daemon=True
                )
                self._thread.start()
                self._loop = loop
            return self._loop

    async def _lookup(self, url: str) -> str | None:
        return await (await self._opened()).for_url(url)

    async def _opened(self) -> RepositoryTokens:
        self._opening = self._opening or asyncio.Lock()  # made in the lookup's own loop, which alone uses it
        async with self._opening:
            if self._tokens is None:
                # Unnamed: on Kafka a log named after the service would fence the service's own writer.
                log = open_event_log(self.settings)
                await log.open()
                self._log = log
                keys = LocalKeyWrapper.from_settings(self.settings)
                self._tokens = RepositoryTokens(log, keys, api_url=self.settings.github_api_url)
            return self._tokens

    def close(self) -> None:
        """Close the log and stop the thread (a later lookup starts them again)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=LOOKUP_TIMEOUT)
        except Exception:
            logger.exception("the repository token lookup's log did not close cleanly")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=LOOKUP_TIMEOUT)
        loop.close()

    async def _close(self) -> None:
        tokens, log, self._tokens, self._log = self._tokens, self._log, None, None
        if tokens is not None:
            await tokens.aclose()
        if log is not None:
            await log.close()
