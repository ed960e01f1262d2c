"""The notifier: tells the world outside how runs go.

Each job of a run of a GitHub repository becomes a commit status on the run's commit (pending while queued
and running, then its result), when a GitHub token is configured; a status GitHub does not take becomes a
`NotificationFailed` event and the run goes on. Every concluded run is also written to the service's log.
"""

from conveyor_notifier.bootstrap import create_notifier
from conveyor_notifier.handlers import CONSUMER, Notifier

__all__ = ["CONSUMER", "Notifier", "create_notifier"]
