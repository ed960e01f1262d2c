"""Where the planner reads workflow files from."""

from conveyor_planner.adapters.repository import LocalRepositorySource, RepositoryError, RepositorySource

__all__ = ["LocalRepositorySource", "RepositoryError", "RepositorySource"]
