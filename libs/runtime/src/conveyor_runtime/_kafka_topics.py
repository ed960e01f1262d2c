"""The Kafka topics of the log, with their settings, and creating them once for a cluster.

aiokafka is imported where a broker is talked to: naming the topics (the settings do) must not cost a process on
the embedded log its import.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from conveyor_runtime._settings import RuntimeSettings

_UNKNOWN_TOPIC = 3
_TOPIC_ALREADY_EXISTS = 36
_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


def kafka_bootstrap() -> str:
    """The brokers to connect to: the `CONVEYOR_KAFKA_BOOTSTRAP` setting."""
    return RuntimeSettings().kafka_bootstrap


@dataclass(frozen=True, slots=True)
class KafkaTopics:
    """The names of the log's topics; one prefix per installation (tests use one per test)."""

    events: str = "conveyor.events"
    checkpoints: str = "conveyor.checkpoints"
    logs: str = "conveyor.logs"
    dead_letter: str = "conveyor.dead-letter"

    @classmethod
    def with_prefix(cls, prefix: str) -> KafkaTopics:
        return cls(f"{prefix}.events", f"{prefix}.checkpoints", f"{prefix}.logs", f"{prefix}.dead-letter")

    @property
    def names(self) -> list[str]:
        """Every topic of the log."""
        return [self.events, self.checkpoints, self.logs, self.dead_letter]

    def settings(self, replication: int = 1) -> list[Any]:
        """Each topic as it is created.

        The events topic has one partition: the log's global order is that partition's offsets. Events and
        dead letters are kept forever (the log is the truth); job logs for 30 days; checkpoints are compacted,
        so only each consumer's last position is kept.
        """
        from aiokafka.admin import NewTopic  # type: ignore[import-untyped]

        durable = {"min.insync.replicas": str(min(2, replication))}
        return [
            NewTopic(self.events, 1, replication, topic_configs={**_FOREVER, **durable}),
            NewTopic(self.checkpoints, 1, replication, topic_configs={"cleanup.policy": "compact", **durable}),
            NewTopic(self.logs, 1, replication, topic_configs={"retention.ms": str(30 * 24 * 3600 * 1000)}),
            NewTopic(self.dead_letter, 1, replication, topic_configs={**_FOREVER, **durable}),
        ]


async def create_kafka_topics(bootstrap: str, topics: KafkaTopics, *, replication: int = 1) -> dict[str, bool]:
    """Create the topics that do not exist yet; for each topic, whether it was created now.

    Returns once every broker's metadata lists them, so a log can be opened on them at once. Raises
    `RuntimeError` with the broker's message when a topic can be neither created nor found.
    """
    async with _admin(bootstrap) as admin:
        response: Any = await admin.create_topics(topics.settings(replication))
        created: dict[str, bool] = {}
        for name, code, message, *_ in response.topic_errors:
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"could not create topic {name!r} (Kafka error {code}): {message}")
            created[name] = code == 0
        async with asyncio.timeout(30):
            while len(await _partition_counts(admin, list(created))) < len(created):
                await asyncio.sleep(0.05)
    return created


async def delete_kafka_topics(bootstrap: str, topics: KafkaTopics) -> list[str]:
    """Delete the log's topics that exist, with every event in them; the names of those deleted.

    Returns once the metadata no longer lists them: the controller answers when the deletion is decided, and the
    brokers learn of it a moment later. Asked with the list of every topic: a request naming them would create
    them again on a broker that creates topics on demand. Raises `RuntimeError` with Kafka's error code when a
    topic cannot be deleted.
    """
    async with _admin(bootstrap) as admin:
        existing = set(await admin.list_topics())
        doomed = [name for name in topics.names if name in existing]
        if not doomed:
            return []
        response: Any = await admin.delete_topics(doomed)
        for name, code, *_ in response.topic_error_codes:
            if code not in (0, _UNKNOWN_TOPIC):
                raise RuntimeError(f"could not delete topic {name!r} (Kafka error {code})")
        async with asyncio.timeout(30):
            while set(doomed) & set(await admin.list_topics()):
                await asyncio.sleep(0.05)
    return doomed


async def partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    """How many partitions each of these topics has; a topic that does not exist is left out."""
    async with _admin(bootstrap) as admin:
        return await _partition_counts(admin, names)


async def _partition_counts(admin: Any, names: list[str]) -> dict[str, int]:
    described: list[dict[str, Any]] = await admin.describe_topics(names)
    return {topic["topic"]: len(topic["partitions"]) for topic in described if topic["error_code"] == 0}


@contextlib.asynccontextmanager
async def _admin(bootstrap: str) -> AsyncIterator[Any]:
    """An admin client of the cluster, for the calls of one function (polls included)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()
