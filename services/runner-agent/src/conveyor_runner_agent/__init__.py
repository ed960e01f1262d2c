"""The runner agent: executes queued jobs on this host and reports every step through the log."""

from collections.abc import Mapping
from pathlib import Path

from conveyor_runtime import EventLog

from conveyor_runner_agent.handlers import CONSUMER, RunnerAgent


def create_runner_agent(
    log: EventLog,
    work_dir: Path,
    *,
    concurrency: int = 4,
    exclude: Path | None = None,
    secrets: Mapping[str, str] | None = None,
) -> RunnerAgent:
    """A runner agent over `log` that keeps job workspaces under `work_dir`."""
    return RunnerAgent(log, work_dir, concurrency=concurrency, exclude=exclude, secrets=dict(secrets or {}))


__all__ = ["CONSUMER", "RunnerAgent", "create_runner_agent"]
