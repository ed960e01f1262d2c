"""Each job running at once gets a tool cache of its own; a finished job's is handed to the next."""

from __future__ import annotations

from conveyor_runner_agent.attempts import ToolCaches


def test_jobs_running_at_once_get_their_own_tool_cache_and_free_ones_are_reused() -> None:
    caches = ToolCaches()
    with caches.take() as first, caches.take() as second:
        assert (first, second) == (0, 1)
        with caches.take() as third:
            assert third == 2
    with caches.take() as again:
        assert again == 0
