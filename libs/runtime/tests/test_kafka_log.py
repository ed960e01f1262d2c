"""The Kafka event log on a real broker: the log and subscription contracts, and what only Kafka does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType  # type: ignore[import-untyped]
from aiokafka.errors import ProducerFenced  # type: ignore[import-untyped]
from conveyor_events import Envelope, EventDeadLettered, JobQueued, RunCancelRequested
from conveyor_runtime import (
    DEAD_LETTERS,
    Checkpoint,
    Consumer,
    KafkaEventLog,
    KafkaTopics,
    RuntimeSettings,
    consume,
    create_kafka_topics,
    open_event_log,
)
from conveyor_runtime._kafka_log import SPARSE_GAP
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


class TestUnfencedKafkaLog(LogContract):
    """The contract, for a log whose appends without a checkpoint go outside transactions (the edge's)."""

    @pytest.fixture
    async def log(self, kafka_broker: str, kafka_topics: KafkaTopics) -> AsyncIterator[KafkaEventLog]:
        async with KafkaEventLog(kafka_broker, kafka_topics, fenced=False, poll_interval=0.05) as opened:
            yield opened


async def test_an_unfenced_log_writes_events_alone_as_one_batch_and_a_checkpoint_in_a_transaction(
    kafka_broker: str, kafka_topics: KafkaTopics, make: Make
) -> None:
    async with KafkaEventLog(kafka_broker, kafka_topics, fenced=False) as log:
        first = await log.append([make("run-a"), make("run-a")])
        second = await log.append([make("run-b")])
        # No commit marker between them: each went as a batch of its own, outside any transaction.
        assert [envelope.position for envelope in [*first, *second]] == [1, 2, 3]
        with_checkpoint = await log.append([make("run-b")], checkpoint=Checkpoint("planner", 3))
        after = await log.append([make("run-c")])
        # The checkpoint went in a transaction with its event: the commit marker takes the offset between.
        assert (with_checkpoint[0].position, after[0].position) == (4, 6)
        large = [make("run-big", RunCancelRequested(run_id="run-big", reason="x" * 4_000)) for _ in range(200)]
        written = await log.append(large)  # 800 KB: more than one batch holds, so a transaction keeps it whole
        assert [envelope.position for envelope in written] == list(range(7, 207))
        assert [envelope.position for envelope in await log.append([make("run-c")])] == [208]  # after its marker
        assert await log.read_stream("run-a") == first
        assert await log.checkpoint("planner") == 3
        assert (await log.read(after[0].position, limit=500))[-2] == written[-1]


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


async def test_a_streams_events_far_apart_are_read_without_reading_what_lies_between(
    log: KafkaEventLog, make: Make
) -> None:
    between = SPARSE_GAP * 10
    first = await log.append([make("run-sparse")])
    for start in range(0, between, 1_000):
        await log.append([make(f"run-filler-{start}") for _ in range(1_000)])
    last = await log.append([make("run-sparse"), make("run-sparse")])
    fetched = counting_fetches(log)

    assert await log.read_stream("run-sparse") == [*first, *last]
    assert 1 <= sum(fetched) < between / 2  # the latest two are at hand (`RECENT_RECORDS`), the first is not


async def test_a_streams_latest_events_are_read_without_a_fetch(log: KafkaEventLog, make: Make) -> None:
    written = await log.append([make("run-a"), make("run-a", JobQueued(run_id="run-a", job_id="build"))])
    fetched = counting_fetches(log)

    assert await log.read_stream("run-a") == written
    assert await log.read(types=["JobQueued"]) == written[1:]
    assert fetched == []


async def test_a_log_without_its_topics_says_how_to_create_them(kafka_broker: str) -> None:
    missing = KafkaTopics.with_prefix("test-never-created")

    with pytest.raises(RuntimeError, match=r"no topic test-never-created\.events, .*run `conveyor kafka init`"):
        await KafkaEventLog(kafka_broker, missing).open()


async def test_an_events_topic_of_several_partitions_is_refused(kafka_broker: str, kafka_topics: KafkaTopics) -> None:
    split = KafkaTopics(
        events=f"{kafka_topics.events}-split",
        checkpoints=kafka_topics.checkpoints,
        dead_letter=kafka_topics.dead_letter,
    )
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


# -- dead letters -------------------------------------------------------------------------------------------------


Raw = tuple[bytes | None, bytes, list[tuple[str, bytes]]]
"""A record's key, value and headers."""


async def produce_raw(bootstrap: str, topic: str, *records: Raw) -> list[int]:
    """Records written as anyone could write them, without a transaction; their offsets."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        sent = [
            await producer.send_and_wait(topic, value, key=key, headers=headers, partition=0)
            for key, value, headers in records
        ]
    finally:
        await producer.stop()
    return [int(metadata.offset) for metadata in sent]


async def all_records(bootstrap: str, topic: str) -> list[Any]:
    """Every committed record of partition 0 of `topic`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek(partition, 0)
        end = (await consumer.end_offsets([partition]))[partition]
        found: list[Any] = []
        while await consumer.position(partition) < end:
            found += (await consumer.getmany(partition, timeout_ms=500)).get(partition, [])
        return found
    finally:
        await consumer.stop()


def headers_of(record: Any) -> dict[str, str]:
    return {name: bytes(value).decode() for name, value in record.headers}


async def test_records_that_are_no_event_are_skipped_by_readers_and_kept_once_with_the_reason(
    kafka_broker: str, kafka_topics: KafkaTopics, another_log: AnotherLog, make: Make
) -> None:
    no_key: Raw = (None, b"{not json", [])
    no_headers: Raw = (b"run-y", b"{}", [])
    event_headers = [("type", b"RunCancelRequested"), ("event_id", b"x-1"), ("sequence", b"1")]
    broken_value: Raw = (b"run-x", b'{"type": "RunCancelRequested"', event_headers)
    async with another_log() as first:
        [before] = await first.append([make("run-a")])
        offsets = await produce_raw(kafka_broker, kafka_topics.events, no_key, no_headers, broken_value)
        [after] = await first.append([make("run-a")])

        assert await first.read() == [before, after]
        assert await first.read(types=["RunCancelRequested"], limit=1) == [before]
        assert await first.read_stream("run-a") == [before, after]
        assert await first.read_stream("run-x") == []
        assert await first.head() == after.position
        async with asyncio.timeout(10):
            subscription = first.subscribe()
            assert [await anext(subscription), await anext(subscription)] == [before, after]
            await subscription.aclose()  # type: ignore[attr-defined]
    async with another_log() as second:  # a process that meets the same records later
        assert await second.read() == [before, after]
        [later] = await second.append([make("run-a")], expected_version=2)
        assert later.sequence == 3

    records = await all_records(kafka_broker, kafka_topics.dead_letter)
    kept = {int(headers_of(record)["dead-letter.offset"]): record for record in records}
    assert len(records) == 3  # each once, though two logs met each, the first one several times
    assert [(kept[at].key, kept[at].value) for at in offsets] == [raw[:2] for raw in (no_key, no_headers, broken_value)]
    assert {headers_of(record)["dead-letter.topic"] for record in records} == {kafka_topics.events}
    reasons = [headers_of(kept[at])["dead-letter.reason"] for at in offsets]
    assert reasons[:2] == ["it has no key (the stream)", "it has no 'sequence' header"]
    assert reasons[2].startswith("the value is not an envelope: JSONDecodeError")
    assert headers_of(kept[offsets[2]])["event_id"] == "x-1"  # its own headers are kept too


async def test_a_consumers_dead_letters_go_to_the_dead_letter_topic_with_its_checkpoint(
    log: KafkaEventLog, kafka_broker: str, kafka_topics: KafkaTopics, make: Make
) -> None:
    async def refuse(envelope: Envelope) -> Sequence[Envelope]:
        raise ValueError(f"cannot handle {envelope.event_id}")

    [bad] = await log.append([make("run-a")])
    task = asyncio.create_task(consume(log, Consumer("planner", {RunCancelRequested: refuse})))
    try:
        async with asyncio.timeout(10):
            while await log.checkpoint("planner") < bad.position:
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    [letter] = await log.read_stream(DEAD_LETTERS)
    assert isinstance(letter.event, EventDeadLettered)
    assert (letter.event.event_id, letter.event.reason) == (bad.event_id, "ValueError: cannot handle run-a-1")
    assert await log.read() == [bad]  # not in the log's order
    [record] = await all_records(kafka_broker, kafka_topics.dead_letter)
    assert (record.key, headers_of(record)["event_id"]) == (DEAD_LETTERS.encode(), letter.event_id)
    assert await log.append([letter.placed(0, 0)]) == [letter]  # appended again: the stored one, not a second
    assert len(await all_records(kafka_broker, kafka_topics.dead_letter)) == 1


async def test_a_service_started_again_under_its_name_fences_the_process_it_replaces(
    kafka_broker: str, kafka_topics: KafkaTopics, make: Make
) -> None:
    prefix = kafka_topics.events.removesuffix(".events")
    settings = RuntimeSettings(event_log="kafka", kafka_bootstrap=kafka_broker, kafka_topic_prefix=prefix)
    async with open_event_log(settings, name="planner") as killed, open_event_log(settings, name="planner") as new:
        [written] = await new.append([make("run-a")])

        with pytest.raises(ProducerFenced):
            await killed.append([make("run-a")])
        assert await new.read() == [written]


async def test_events_of_a_type_far_apart_are_read_without_reading_what_lies_between(
    log: KafkaEventLog, make: Make
) -> None:
    between = SPARSE_GAP * 10
    [first] = await log.append([make("run-a", JobQueued(run_id="run-a", job_id="build"))])
    for start in range(0, between, 1_000):
        await log.append([make(f"run-filler-{start}") for _ in range(1_000)])
    [last] = await log.append([make("run-b", JobQueued(run_id="run-b", job_id="build"))])
    fetched = counting_fetches(log)

    assert await log.read(types=["JobQueued"]) == [first, last]
    assert await log.read(first.position, types=["JobQueued"]) == [last]
    assert await log.read(types=["JobQueued", "JobStarted"], limit=1) == [first]
    assert await log.read(last.position, types=["JobQueued"]) == []
    assert 1 <= sum(fetched) < between / 2


def counting_fetches(log: KafkaEventLog) -> list[int]:
    """The number of records of each fetch the log's reader makes from now on."""
    reader = log._events.reader
    fetch = reader.fetch
    fetched: list[int] = []

    async def counted(*args: Any, **kwargs: Any) -> Any:
        records = await fetch(*args, **kwargs)
        fetched.append(len(records))
        return records

    reader.fetch = counted  # type: ignore[method-assign]
    return fetched
