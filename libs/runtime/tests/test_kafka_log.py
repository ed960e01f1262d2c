"""The Kafka event log on a real broker: the log and subscription contracts, and what only Kafka does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType  # type: ignore[import-untyped]
from conveyor_events import Envelope
from conveyor_runtime import Checkpoint, KafkaEventLog, KafkaTopics, create_kafka_topics
from conveyor_runtime._kafka_topics import partition_counts

from libs.runtime.tests.log_contract import AnotherLog, LogContract
from libs.runtime.tests.subscription_contract import SubscriptionContract

pytestmark = pytest.mark.integration

Make = Callable[..., Envelope]


@pytest.fixture
def another_log(kafka_broker: str, kafka_topics: KafkaTopics) -> AnotherLog:
    return lambda: KafkaEventLog(kafka_broker, kafka_topics, poll_interval=0.05)


@pytest.fixture
async def log(kafka_broker: str, kafka_topics: KafkaTopics) -> AsyncIterator[KafkaEventLog]:
    async with KafkaEventLog(kafka_broker, kafka_topics, poll_interval=0.05) as opened:
        yield opened


class TestKafkaLog(LogContract):
    """The contract, on topics of the test's own."""


class TestKafkaSubscriptions(SubscriptionContract):
    """The contract, on topics of the test's own."""


async def test_a_position_is_the_offset_plus_1_and_commit_markers_leave_gaps(log: KafkaEventLog, make: Make) -> None:
    first = await log.append([make("run-a"), make("run-a")])
    then = await log.append([make("run-a")])

    assert [envelope.position for envelope in [*first, *then]] == [1, 2, 4]
    assert await log.head() == 4


async def test_a_transaction_that_does_not_commit_leaves_neither_events_nor_checkpoint(
    log: KafkaEventLog, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    [kept] = await log.append([make("run-a")], checkpoint=Checkpoint("planner", 1))
    producer: Any = log._producer

    async def lost_connection() -> None:
        raise ConnectionError("the broker went away before the commit")

    with monkeypatch.context() as patched:
        patched.setattr(producer, "commit_transaction", lost_connection)
        with pytest.raises(ConnectionError, match="went away"):
            await log.append([make("run-a"), make("run-a")], checkpoint=Checkpoint("planner", 2))

    assert await log.read() == [kept]
    assert await log.checkpoint("planner") == 1
    [next_one] = await log.append([make("run-a")], expected_version=1, checkpoint=Checkpoint("planner", 3))
    assert next_one.sequence == 2
    assert await log.read_stream("run-a") == [kept, next_one]
    assert await log.checkpoint("planner") == 3


async def test_a_log_without_its_topics_says_how_to_create_them(kafka_broker: str) -> None:
    missing = KafkaTopics.with_prefix("test-never-created")

    with pytest.raises(RuntimeError, match=r"no topic test-never-created\.events, .*run `conveyor kafka init`"):
        await KafkaEventLog(kafka_broker, missing).open()


async def test_an_events_topic_of_several_partitions_is_refused(kafka_broker: str, kafka_topics: KafkaTopics) -> None:
    split = KafkaTopics(events=f"{kafka_topics.events}-split", checkpoints=kafka_topics.checkpoints)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(split.events, 2, 1)])
        async with asyncio.timeout(30):  # a topic is described only once its metadata has spread
            while (await partition_counts(kafka_broker, [split.events])).get(split.events) != 2:
                await asyncio.sleep(0.05)
        with pytest.raises(RuntimeError, match="has 2 partitions; the log needs exactly 1"):
            await KafkaEventLog(kafka_broker, split).open()
    finally:
        await admin.delete_topics([split.events])
        await admin.close()


async def test_creating_the_topics_again_changes_nothing(kafka_broker: str, kafka_topics: KafkaTopics) -> None:
    again = await create_kafka_topics(kafka_broker, kafka_topics)

    assert again == dict.fromkeys(
        [kafka_topics.events, kafka_topics.checkpoints, kafka_topics.logs, kafka_topics.dead_letter], False
    )


async def test_events_are_kept_forever_and_checkpoints_compacted(kafka_broker: str, kafka_topics: KafkaTopics) -> None:
    configs = await topic_configs(kafka_broker, [kafka_topics.events, kafka_topics.checkpoints])

    assert configs[kafka_topics.events]["retention.ms"] == "-1"
    assert configs[kafka_topics.events]["cleanup.policy"] == "delete"
    assert configs[kafka_topics.checkpoints]["cleanup.policy"] == "compact"


async def topic_configs(bootstrap: str, names: list[str]) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
    finally:
        await admin.close()
    return {resource[3]: {entry[0]: entry[1] for entry in resource[4]} for resource in response.resources}
