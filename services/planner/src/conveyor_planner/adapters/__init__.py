"""Where the planner reads workflow files and branch heads from."""

from conveyor_planner.adapters.branches import BranchHeads, LocalBranchHeads
from conveyor_planner.adapters.repository import LocalRepositorySource, RepositoryError, RepositorySource

__all__ = ["BranchHeads", "LocalBranchHeads", "LocalRepositorySource", "RepositoryError", "RepositorySource"]
