"""The notifier's adapters to the world outside."""

from conveyor_notifier.adapters.github import CommitStatus, DeliveryFailed, GitHubStatuses, Superseded

__all__ = ["CommitStatus", "DeliveryFailed", "GitHubStatuses", "Superseded"]
