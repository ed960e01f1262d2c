"""Running a service's handlers over the log: positions saved with what each handler wrote."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

from conveyor_events import Envelope, Event, EventDeadLettered, deterministic_id

from conveyor_runtime._log import Checkpoint, EventLog

logger = logging.getLogger(__name__)

Handler = Callable[[Envelope], Awaitable[Sequence[Envelope]]]
DEAD_LETTERS = "dead-letters"


@dataclass(frozen=True)
class Consumer:
    """A named reader of the log with a handler per event type; its name is its checkpoint's name."""

    name: str
    handlers: Mapping[type[Event], Handler]

    @property
    def types(self) -> list[str]:
        return [cls.event_type() for cls in self.handlers]


async def consume(log: EventLog, consumer: Consumer) -> None:
    """Handle every event of the consumer's types after its checkpoint, then each new one, forever.

    What a handler returns is appended with the checkpoint in the same transaction, so a crash either keeps
    both or neither. An event whose handler returns nothing moves the checkpoint with the next write, or at the
    end of the batch the subscription found it in: one transaction per batch rather than one per event, which
    on Kafka is the difference between tens and thousands of events a second. A crash before that write hands
    the batch's quiet events to the handler again, as a redelivery would. A handler that raises, or whose
    output the log refuses, sends the event to the dead-letter stream with the reason and the consumer moves
    on (bad input never stops a service).
    """
    by_type = {cls.event_type(): handler for cls, handler in consumer.handlers.items()}
    start = await log.checkpoint(consumer.name)
    async for batch in log.subscribe_batches(start, types=list(by_type)):
        unsaved = False
        for envelope in batch:
            handler = by_type[envelope.type]
            try:
                produced = list(await handler(envelope))
                if produced:
                    await _write(log, consumer.name, envelope.position, produced)
                unsaved = not produced
            except Exception as error:
                logger.exception("%s could not handle %s at %d", consumer.name, envelope.type, envelope.position)
                await _write(log, consumer.name, envelope.position, [_dead_letter(consumer.name, envelope, error)])
                unsaved = False
        if unsaved:
            await log.append([], checkpoint=Checkpoint(consumer.name, batch[-1].position))


async def _write(log: EventLog, consumer: str, position: int, produced: list[Envelope]) -> None:
    groups = [list(group) for _, group in groupby(produced, key=lambda envelope: envelope.stream)]
    for group in groups[:-1]:
        await log.append(group)
    await log.append(groups[-1] if groups else [], checkpoint=Checkpoint(consumer, position))


def _dead_letter(consumer: str, envelope: Envelope, error: Exception) -> Envelope:
    reason = f"{type(error).__name__}: {error}"
    return Envelope.wrap(
        EventDeadLettered(
            consumer=consumer,
            event_id=envelope.event_id,
            failed_type=envelope.type,
            position=envelope.position,
            reason=reason,
        ),
        stream=DEAD_LETTERS,
        event_id=deterministic_id("dead-letter", consumer, envelope.event_id),
        cause=envelope,
    )
