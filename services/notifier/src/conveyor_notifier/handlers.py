"""The notifier's handler: a run concluded, say so."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from conveyor_events import Envelope, RunCompleted
from conveyor_runtime import Consumer

CONSUMER = "notifier"
logger = logging.getLogger("conveyor.notifier")


@dataclass(frozen=True)
class Notifier:
    async def on_run_completed(self, envelope: Envelope) -> Sequence[Envelope]:
        event = envelope.event
        assert isinstance(event, RunCompleted)
        logger.info("run %s concluded: %s", event.run_id, event.conclusion.value)
        return []

    def consumer(self) -> Consumer:
        return Consumer(CONSUMER, {RunCompleted: self.on_run_completed})


def create_notifier() -> Notifier:
    return Notifier()
