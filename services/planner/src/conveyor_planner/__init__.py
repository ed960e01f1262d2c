"""The planner: turns a `RunRequested` into the plan of every workflow it triggers, and requests the
`workflow_run` runs that its planned and concluded workflows trigger."""

from conveyor_runtime import EventLog

from conveyor_planner.adapters import (
    BranchHeads,
    LocalBranchHeads,
    LocalRepositorySource,
    RemoteWorkflowSource,
    RepositorySource,
)
from conveyor_planner.domain import RemoteWorkflows
from conveyor_planner.handlers import CONSUMER, Planner
from conveyor_planner.workflow_runs import CONSUMER as WORKFLOW_RUN_CONSUMER
from conveyor_planner.workflow_runs import WorkflowRunTrigger


def create_planner(source: RepositorySource | None = None, remote: RemoteWorkflows | None = None) -> Planner:
    """The planner service, reading repositories from this machine and the remote reusable workflows they call
    from GitHub (cached under the user's cache folder) unless told otherwise."""
    return Planner(source or LocalRepositorySource(), remote or RemoteWorkflowSource())


def create_workflow_run_trigger(
    log: EventLog, source: RepositorySource | None = None, heads: BranchHeads | None = None
) -> WorkflowRunTrigger:
    """The `workflow_run` trigger over `log`, reading repositories and their branches from this machine unless
    told otherwise."""
    return WorkflowRunTrigger(log, source or LocalRepositorySource(), heads or LocalBranchHeads())


__all__ = [
    "CONSUMER",
    "WORKFLOW_RUN_CONSUMER",
    "BranchHeads",
    "LocalBranchHeads",
    "LocalRepositorySource",
    "Planner",
    "RemoteWorkflowSource",
    "RemoteWorkflows",
    "RepositorySource",
    "WorkflowRunTrigger",
    "create_planner",
    "create_workflow_run_trigger",
]
