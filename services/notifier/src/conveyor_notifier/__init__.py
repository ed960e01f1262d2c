"""The notifier: tells the world outside how runs ended.

In the embedded default it writes one log line per concluded run; GitHub statuses, Slack, mail and webhooks
are its adapters to come.
"""

from conveyor_notifier.handlers import CONSUMER, Notifier, create_notifier

__all__ = ["CONSUMER", "Notifier", "create_notifier"]
