"""Where the planner reads workflow files (of the run's repository and of the repositories it calls) and branch
heads from."""

from conveyor_planner.adapters.branches import BranchHeads, LocalBranchHeads
from conveyor_planner.adapters.remote_workflows import RemoteWorkflowSource
from conveyor_planner.adapters.repository import Changes, LocalRepositorySource, RepositoryError, RepositorySource

__all__ = [
    "BranchHeads",
    "Changes",
    "LocalBranchHeads",
    "LocalRepositorySource",
    "RemoteWorkflowSource",
    "RepositoryError",
    "RepositorySource",
]
