"""The planner: turns a `RunRequested` into the plan of every workflow it triggers."""

from conveyor_planner.adapters import LocalRepositorySource, RepositorySource
from conveyor_planner.handlers import CONSUMER, Planner


def create_planner(source: RepositorySource | None = None) -> Planner:
    """The planner service, reading repositories from this machine unless told otherwise."""
    return Planner(source or LocalRepositorySource())


__all__ = ["CONSUMER", "LocalRepositorySource", "Planner", "RepositorySource", "create_planner"]
