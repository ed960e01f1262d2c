"""Webhook deliveries Conveyor asked GitHub to send again, remembered so that it asks once per delivery.

These events live on the `webhook-deliveries` stream; the run a redelivered delivery requests stays on its own.
"""

from __future__ import annotations

from conveyor_events._base import Event

DELIVERIES_STREAM = "webhook-deliveries"
"""The stream every `DeliveryRedelivered` is appended to."""


class DeliveryRedelivered(Event):
    """GitHub took a request to redeliver a webhook delivery the log did not hold (a delivery missed while down).

    `github` is the repository's `owner/name` on GitHub and `repository` the registered name the back-fill
    looked for it under; `guid` is the delivery's `X-GitHub-Delivery`, which the redelivery keeps, and
    `delivery_id` the attempt that was redelivered of the hook `hook_id`.
    """

    repository: str
    github: str
    hook_id: int
    delivery_id: int
    guid: str
    event_name: str
