"""The runner agent: executes queued jobs on this host and reports every step through the log, or, on a host of
its own, leases jobs from a Conveyor over HTTP and reports them back (`RemoteAgent`)."""

from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from conveyor_runtime import ANY_LABEL, LEASE_PERIOD, EventLog, GitRemotes

from conveyor_runner_agent.adapters.action_source import ActionSource
from conveyor_runner_agent.adapters.identity import join
from conveyor_runner_agent.adapters.server import ConveyorServer, Refused, Unavailable
from conveyor_runner_agent.domain import DEFAULT_JOB_LOG_LIMIT
from conveyor_runner_agent.handlers import CONSUMER, RunnerAgent
from conveyor_runner_agent.remote import AgentError, RemoteAgent, default_labels
from conveyor_runner_agent.sink import JobEvents


def create_runner_agent(
    log: EventLog,
    work_dir: Path,
    *,
    concurrency: int = 4,
    exclude: Path | None = None,
    secrets: Mapping[str, str] | None = None,
    log_limit: int = DEFAULT_JOB_LOG_LIMIT,
    action_source: ActionSource | None = None,
    platforms: Mapping[str, str] | None = None,
    container_socket: str | None = None,
    labels: Sequence[str] = (ANY_LABEL,),
    lease_period: timedelta = LEASE_PERIOD,
    remotes: GitRemotes | None = None,
    results_dir: Path | None = None,
) -> RunnerAgent:
    """A runner agent over `log` that keeps job workspaces under `work_dir` and leases the jobs `labels` cover;
    `remotes` fetches the repositories registered by clone URL that its checkouts need; the artifacts and caches
    its jobs upload are kept in `results_dir` (`<work_dir>/results` when not given)."""
    return RunnerAgent(
        log,
        work_dir,
        concurrency=concurrency,
        exclude=exclude,
        secrets=dict(secrets or {}),
        log_limit=log_limit,
        action_source=action_source or ActionSource(),
        platforms=dict(platforms or {}),
        container_socket=container_socket,
        labels=tuple(labels),
        lease_period=lease_period,
        remotes=remotes,
        results_dir=results_dir,
    )


__all__ = [
    "CONSUMER",
    "ActionSource",
    "AgentError",
    "ConveyorServer",
    "JobEvents",
    "Refused",
    "RemoteAgent",
    "RunnerAgent",
    "Unavailable",
    "create_runner_agent",
    "default_labels",
    "join",
]
