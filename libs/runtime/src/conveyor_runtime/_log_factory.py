"""The event log the settings choose: the embedded SQLite file or the Kafka topics, made in one place."""

from __future__ import annotations

from typing import Protocol, Self

from conveyor_runtime._kafka_log import KafkaEventLog
from conveyor_runtime._kafka_topics import KafkaTopics
from conveyor_runtime._log import EventLog
from conveyor_runtime._settings import RuntimeSettings
from conveyor_runtime._sqlite_log import SqliteEventLog


class OpenableEventLog(EventLog, Protocol):
    """An event log and its life: open it in the event loop that uses it, and close it there."""

    async def open(self) -> Self: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...


def open_event_log(settings: RuntimeSettings, *, name: str | None = None) -> OpenableEventLog:
    """The log `settings.event_log` names, not open yet: use it as `async with open_event_log(settings) as log`
    (or call `open()` and `close()`), in the loop that uses it.

    `name` is the service a long-running process runs. On Kafka the writer's transactional id is then
    `conveyor-<prefix>-<name>`, the same after a restart, so that a restarted service fences its killed
    predecessor: the broker aborts the transaction it left open and refuses what it would still write. Two live
    processes must not share a name, or each fences the other in turn. Without a name the id is unique, as short
    lived logs (commands, a thread's own log) need: they never fence a running service. SQLite has no such id.
    """
    if settings.event_log == "kafka":
        prefix = settings.kafka_topic_prefix
        return KafkaEventLog(
            settings.kafka_bootstrap,
            KafkaTopics.with_prefix(prefix),
            transactional_id=None if name is None else f"conveyor-{prefix}-{name}",
        )
    return SqliteEventLog(settings.log_path, synchronous=settings.log_sync)


def describe_event_log(settings: RuntimeSettings) -> str:
    """Where the log `settings` name is, for messages."""
    if settings.event_log == "kafka":
        return f"the Kafka topics {settings.kafka_topic_prefix}.* at {settings.kafka_bootstrap}"
    return str(settings.log_path)
