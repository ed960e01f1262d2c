"""What the notifier records about telling the world outside: today, only what it could not tell."""

from __future__ import annotations

from conveyor_events._base import RunEvent


class NotificationFailed(RunEvent):
    """A notification about the run could not be delivered, after `attempts` tries; the run went on without it.

    `target` names where it was going (`github-status` for a GitHub commit status), `context` what it was about
    there (the status's context), and `reason` the last answer or error, so an operator can see what to fix.
    """

    target: str
    context: str
    reason: str
    attempts: int
