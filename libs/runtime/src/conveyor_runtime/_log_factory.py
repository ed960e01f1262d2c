"""The event log and the read models the settings choose, each made in one place: the embedded SQLite files, or
the Kafka topics and a PostgreSQL database."""

from __future__ import annotations

from typing import Protocol, Self

from conveyor_runtime._kafka_topics import KafkaTopics
from conveyor_runtime._log import EventLog
from conveyor_runtime._projection_store import ProjectionStore
from conveyor_runtime._settings import RuntimeSettings
from conveyor_runtime._sqlite_log import SqliteEventLog
from conveyor_runtime._sqlite_projections import SqliteProjections


class OpenableEventLog(EventLog, Protocol):
    """An event log and its life: open it in the event loop that uses it, and close it there."""

    async def open(self) -> Self: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...


def open_event_log(settings: RuntimeSettings, *, name: str | None = None, fenced: bool = True) -> OpenableEventLog:
    """The log `settings.event_log` names, not open yet: use it as `async with open_event_log(settings) as log`
    (or call `open()` and `close()`), in the loop that uses it.

    `name` is the service a long-running process runs. On Kafka the writer's transactional id is then
    `conveyor-<prefix>-<name>`, the same after a restart, so that a restarted service fences its killed
    predecessor: the broker aborts the transaction it left open and refuses what it would still write. Two live
    processes must not share a name, or each fences the other in turn. Without a name the id is unique, as short
    lived logs (commands, a thread's own log) need: they never fence a running service. SQLite has no such id.

    `fenced=False` is for a process that decides nothing, only writes what requests ask (the edge): on Kafka its
    appends without a checkpoint skip the transaction, which its successor then cannot refuse.
    """
    if settings.event_log == "kafka":
        from conveyor_runtime._kafka_log import KafkaEventLog  # aiokafka, only where the log is on Kafka

        prefix = settings.kafka_topic_prefix
        return KafkaEventLog(
            settings.kafka_bootstrap,
            KafkaTopics.with_prefix(prefix),
            transactional_id=None if name is None else f"conveyor-{prefix}-{name}",
            fenced=fenced,
        )
    return SqliteEventLog(settings.log_path, synchronous=settings.log_sync)


def describe_event_log(settings: RuntimeSettings) -> str:
    """Where the log `settings` name is, for messages."""
    if settings.event_log == "kafka":
        return f"the Kafka topics {settings.kafka_topic_prefix}.* at {settings.kafka_bootstrap}"
    return str(settings.log_path)


def open_projections(settings: RuntimeSettings) -> ProjectionStore:
    """The read models `settings.database_url` names (PostgreSQL), else the data directory's SQLite file.

    A PostgreSQL store connects, and brings its schema up to date, on first use: in the loop that uses it.
    """
    if settings.database_url:
        from conveyor_runtime._postgres_projections import PostgresProjections  # SQLAlchemy, only where used

        return PostgresProjections(settings.database_url)
    return SqliteProjections(settings.projections_path)


def describe_projections(settings: RuntimeSettings) -> str:
    """Where the read models `settings` name are, for messages (without a password)."""
    if settings.database_url:
        scheme, _, rest = settings.database_url.partition("://")
        credentials, at, place = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme.split('+')[0]}://{user}{at}{place}"
    return str(settings.projections_path)
