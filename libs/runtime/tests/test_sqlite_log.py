"""The SQLite event log: positions and sequences, reads, optimistic concurrency, duplicates, group commit."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from conveyor_events import Envelope, JobQueued, RunCompleted, RunRequested
from conveyor_runtime import Checkpoint, ConcurrencyError, SqliteEventLog

Make = Callable[..., Envelope]


async def test_an_empty_log_has_head_0_and_nothing_to_read(log: SqliteEventLog) -> None:
    assert await log.head() == 0
    assert await log.read() == []
    assert await log.read_stream("run-1") == []
    assert await log.checkpoint("anyone") == 0


async def test_append_assigns_sequences_per_stream_from_1_and_global_positions_in_order(
    log: SqliteEventLog, make: Make
) -> None:
    first = await log.append([make("run-a"), make("run-a")])
    second = await log.append([make("run-b")])
    third = await log.append([make("run-a")])

    placed = [(envelope.stream, envelope.sequence, envelope.position) for envelope in [*first, *second, *third]]
    assert placed == [("run-a", 1, 1), ("run-a", 2, 2), ("run-b", 1, 3), ("run-a", 3, 4)]
    assert await log.head() == 4


async def test_append_returns_what_reading_gives(log: SqliteEventLog, make: Make) -> None:
    written = await log.append([make("run-a"), make("run-a")])

    assert await log.read() == written
    assert [envelope.event_id for envelope in written] == ["run-a-1", "run-a-2"]


async def test_read_from_a_position_with_a_limit(log: SqliteEventLog, make: Make) -> None:
    for _ in range(5):
        await log.append([make("run-a")])

    assert [envelope.position for envelope in await log.read(2)] == [3, 4, 5]
    assert [envelope.position for envelope in await log.read(1, limit=2)] == [2, 3]
    assert await log.read(5) == []


async def test_read_stream_gives_one_stream_in_sequence_order(log: SqliteEventLog, make: Make) -> None:
    await log.append([make("run-a")])
    await log.append([make("run-b")])
    await log.append([make("run-a"), make("run-a")])

    stream = await log.read_stream("run-a")

    assert [(envelope.stream, envelope.sequence) for envelope in stream] == [("run-a", 1), ("run-a", 2), ("run-a", 3)]
    assert [envelope.position for envelope in stream] == [1, 3, 4]


async def test_types_filter_reads(log: SqliteEventLog, make: Make) -> None:
    await log.append([make("run-a", RunCompleted(run_id="run-a", conclusion="success"))])
    await log.append([make("run-a"), make("run-a", JobQueued(run_id="run-a", job_id="j"))])
    await log.append([make("run-b", RunCompleted(run_id="run-b", conclusion="failure"))])

    completed = await log.read(types=["RunCompleted"])
    assert [(envelope.type, envelope.position) for envelope in completed] == [("RunCompleted", 1), ("RunCompleted", 4)]
    queued_or_completed = await log.read(1, types={"JobQueued", "RunCompleted"})
    assert [envelope.position for envelope in queued_or_completed] == [3, 4]
    assert [envelope.sequence for envelope in await log.read_stream("run-a", types=["JobQueued"])] == [3]
    assert await log.read(types=["RunRequested"]) == []
    assert await log.read(types=[]) == []


async def test_read_gives_typed_events_back(log: SqliteEventLog, make: Make) -> None:
    requested = RunRequested(run_id="run-a", repository="acme/app", ref="refs/heads/main", sha="f" * 40)
    await log.append([make("run-a", requested)])

    [envelope] = await log.read()

    assert envelope.event == requested
    assert isinstance(envelope.event, RunRequested)


async def test_an_append_to_two_streams_at_once_is_refused(log: SqliteEventLog, make: Make) -> None:
    with pytest.raises(ValueError, match="one stream"):
        await log.append([make("run-a"), make("run-b")], checkpoint=Checkpoint("c", 1))

    assert await log.head() == 0
    assert await log.checkpoint("c") == 0


async def test_an_empty_append_writes_nothing(log: SqliteEventLog) -> None:
    assert await log.append([]) == []
    assert await log.head() == 0


async def test_append_to_a_closed_log_is_refused(tmp_path: Path, make: Make) -> None:
    log = SqliteEventLog(tmp_path / "events.db")

    with pytest.raises(RuntimeError, match="not open"):
        await log.append([make()])


async def test_a_reopened_log_goes_on_where_it_stopped(tmp_path: Path, make: Make) -> None:
    async with SqliteEventLog(tmp_path / "events.db") as log:
        await log.append([make("run-a"), make("run-a")])
        await log.append([make("run-b")], checkpoint=Checkpoint("c", 3))

    async with SqliteEventLog(tmp_path / "events.db") as log:
        [envelope] = await log.append([make("run-a")])
        assert (envelope.sequence, envelope.position) == (3, 4)
        assert await log.checkpoint("c") == 3
        assert len(await log.read()) == 4


# -- optimistic concurrency ------------------------------------------------------------------------------------


async def test_expected_version_0_creates_a_new_stream(log: SqliteEventLog, make: Make) -> None:
    [envelope] = await log.append([make("run-a")], expected_version=0)

    assert envelope.sequence == 1


async def test_expected_version_0_is_refused_when_the_stream_exists(log: SqliteEventLog, make: Make) -> None:
    await log.append([make("run-a")])

    with pytest.raises(ConcurrencyError) as raised:
        await log.append([make("run-a")], expected_version=0)

    assert (raised.value.stream, raised.value.expected, raised.value.actual) == ("run-a", 0, 1)


async def test_a_version_mismatch_raises_and_writes_nothing(log: SqliteEventLog, make: Make) -> None:
    await log.append([make("run-a"), make("run-a")])

    with pytest.raises(ConcurrencyError, match="'run-a' is at version 2, not the expected 1"):
        await log.append([make("run-a"), make("run-a")], expected_version=1)

    assert await log.head() == 2
    assert len(await log.read_stream("run-a")) == 2


async def test_the_right_expected_version_appends(log: SqliteEventLog, make: Make) -> None:
    await log.append([make("run-a"), make("run-a")])

    written = await log.append([make("run-a")], expected_version=2)

    assert [envelope.sequence for envelope in written] == [3]


async def test_concurrent_writers_of_one_new_stream_one_wins(log: SqliteEventLog, make: Make) -> None:
    attempts = [log.append([make("run-a"), make("run-a")], expected_version=0) for _ in range(10)]

    outcomes = await asyncio.gather(*attempts, return_exceptions=True)

    winners = [outcome for outcome in outcomes if isinstance(outcome, list)]
    losers = [outcome for outcome in outcomes if isinstance(outcome, ConcurrencyError)]
    assert len(winners) == 1
    assert len(losers) == 9
    assert await log.read_stream("run-a") == winners[0]
    assert await log.head() == 2


@pytest.mark.parametrize("with_a_duplicate", [False, True], ids=["fast-path", "careful-path"])
async def test_a_conflicting_append_in_a_group_fails_alone(
    log: SqliteEventLog, make: Make, with_a_duplicate: bool
) -> None:
    for index in range(20):
        await log.append([make(f"run-{index}")])
    old = await log.read()
    appends = []
    for index in range(20):
        expected = 1 if index % 2 == 0 else 7  # odd streams conflict
        checkpoint = Checkpoint(f"consumer-{index}", 100 + index)
        appends.append(
            log.append([make(f"run-{index}"), make(f"run-{index}")], expected_version=expected, checkpoint=checkpoint)
        )
    if with_a_duplicate:
        # A duplicate id in the group sends the writer down its one-append-at-a-time path.
        appends.append(log.append([old[0]]))

    outcomes = await asyncio.gather(*appends, return_exceptions=True)

    for index in range(20):
        outcome = outcomes[index]
        stream = await log.read_stream(f"run-{index}")
        if index % 2 == 0:
            assert isinstance(outcome, list)
            assert [envelope.sequence for envelope in outcome] == [2, 3]
            assert len(stream) == 3
            assert await log.checkpoint(f"consumer-{index}") == 100 + index
        else:
            assert isinstance(outcome, ConcurrencyError)
            assert (outcome.expected, outcome.actual) == (7, 1)
            assert len(stream) == 1
            assert await log.checkpoint(f"consumer-{index}") == 0
    everything = await log.read(limit=10_000)
    assert [envelope.position for envelope in everything] == list(range(1, 41))


async def test_an_append_that_cannot_be_encoded_fails_alone(log: SqliteEventLog, make: Make) -> None:
    unencodable = RunCompleted.model_validate({"run_id": "run-bad", "conclusion": "success", "blob": object()})
    appends = [log.append([make(f"run-{index}")]) for index in range(5)]
    appends.insert(2, log.append([make("run-bad", unencodable)]))

    outcomes = await asyncio.gather(*appends, return_exceptions=True)

    assert isinstance(outcomes.pop(2), Exception)
    assert [type(outcome).__name__ for outcome in outcomes] == ["list"] * 5
    assert await log.head() == 5


async def test_an_external_writer_does_not_cause_a_false_conflict(tmp_path: Path, make: Make) -> None:
    """Two logs on one file (two processes, in effect): each must see the other's writes when it checks versions."""
    async with SqliteEventLog(tmp_path / "events.db") as mine, SqliteEventLog(tmp_path / "events.db") as theirs:
        await mine.append([make("run-a")], expected_version=0)
        await theirs.append([make("run-a")], expected_version=1)

        [envelope] = await mine.append([make("run-a")], expected_version=2)

        assert (envelope.sequence, envelope.position) == (3, 3)


async def test_an_external_writer_is_noticed_without_expected_version(tmp_path: Path, make: Make) -> None:
    async with SqliteEventLog(tmp_path / "events.db") as mine, SqliteEventLog(tmp_path / "events.db") as theirs:
        await mine.append([make("run-a")])
        await theirs.append([make("run-a"), make("run-a")])

        [envelope] = await mine.append([make("run-a")])

        assert (envelope.sequence, envelope.position) == (4, 4)
        with pytest.raises(ConcurrencyError):
            await mine.append([make("run-a")], expected_version=3)


# -- duplicates --------------------------------------------------------------------------------------------------


async def test_a_duplicate_event_id_is_not_written_twice(log: SqliteEventLog, make: Make) -> None:
    [stored] = await log.append([make("run-a", event_id="the-one")])
    await log.append([make("run-b")])

    [again] = await log.append([make("run-a", event_id="the-one")])

    assert again == stored
    assert (again.sequence, again.position) == (1, 1)
    assert await log.head() == 2


async def test_event_ids_are_unique_within_their_stream(log: SqliteEventLog, make: Make) -> None:
    """A redelivery lands on the same stream (ids derive from the run), so ids are unique per stream."""
    [stored] = await log.append([make("run-a", event_id="shared-id")])

    [again] = await log.append([make("run-a", event_id="shared-id")])
    [elsewhere] = await log.append([make("run-b", event_id="shared-id")])

    assert again == stored
    assert (elsewhere.stream, elsewhere.sequence) == ("run-b", 1)
    assert elsewhere.position == stored.position + 1

async def test_a_partly_duplicate_append_writes_only_the_new_events(log: SqliteEventLog, make: Make) -> None:
    first = make("run-a", event_id="first")
    [stored] = await log.append([first])

    written = await log.append([first, make("run-a", event_id="second")])

    assert written[0] == stored
    assert (written[1].event_id, written[1].sequence, written[1].position) == ("second", 2, 2)
    assert [envelope.event_id for envelope in await log.read()] == ["first", "second"]


async def test_concurrent_duplicates_are_written_once(log: SqliteEventLog, make: Make) -> None:
    envelope = make("run-a", event_id="once")

    outcomes = await asyncio.gather(*[log.append([envelope]) for _ in range(50)])

    assert await log.head() == 1
    assert {(result[0].event_id, result[0].position) for result in outcomes} == {("once", 1)}


async def test_a_retried_append_with_expected_version_returns_the_stored_envelopes(
    log: SqliteEventLog, make: Make
) -> None:
    """A writer that retries after a lost answer gets what it wrote, not a conflict with itself."""
    envelopes = [make("run-a"), make("run-a")]
    stored = await log.append(envelopes, expected_version=0)

    assert await log.append(envelopes, expected_version=0) == stored
    assert await log.head() == 2


# -- group commit ----------------------------------------------------------------------------------------------


async def test_a_thousand_concurrent_appends_land_at_distinct_consecutive_positions(
    log: SqliteEventLog, make: Make
) -> None:
    envelopes = [make(f"run-{index % 7}") for index in range(1000)]

    outcomes = await asyncio.gather(*[log.append([envelope]) for envelope in envelopes])

    positions = sorted(result[0].position for result in outcomes)
    assert positions == list(range(1, 1001))
    stored = await log.read(limit=2000)
    assert {envelope.event_id for envelope in stored} == {envelope.event_id for envelope in envelopes}
    assert [envelope.position for envelope in stored] == list(range(1, 1001))
    by_stream: dict[str, list[int]] = defaultdict(list)
    for envelope in stored:
        by_stream[envelope.stream].append(envelope.sequence)
    assert all(sequences == list(range(1, len(sequences) + 1)) for sequences in by_stream.values())
    returned = {result[0].event_id: result[0] for result in outcomes}
    assert all(returned[envelope.event_id] == envelope for envelope in stored)


# -- checkpoints -------------------------------------------------------------------------------------------------


async def test_an_append_with_a_checkpoint_stores_both(log: SqliteEventLog, make: Make) -> None:
    await log.append([make("run-a")], checkpoint=Checkpoint("planner", 41))

    assert await log.checkpoint("planner") == 41
    assert await log.head() == 1
    await log.append([make("run-a")], checkpoint=Checkpoint("planner", 42))
    assert await log.checkpoint("planner") == 42
    assert await log.checkpoint("scheduler") == 0


async def test_a_failing_append_stores_neither_events_nor_checkpoint(log: SqliteEventLog, make: Make) -> None:
    await log.append([make("run-a")], checkpoint=Checkpoint("planner", 1))

    with pytest.raises(ConcurrencyError):
        await log.append([make("run-a")], expected_version=0, checkpoint=Checkpoint("planner", 2))

    assert await log.checkpoint("planner") == 1
    assert await log.head() == 1


async def test_an_append_of_no_events_stores_the_checkpoint(log: SqliteEventLog) -> None:
    assert await log.append([], checkpoint=Checkpoint("notifier", 9)) == []

    assert await log.checkpoint("notifier") == 9
    assert await log.head() == 0


async def test_an_append_of_only_duplicates_still_stores_the_checkpoint(log: SqliteEventLog, make: Make) -> None:
    """A handler whose (deterministic) output is already in the log must still move its consumer on."""
    envelope = make("run-a", event_id="already-there")
    await log.append([envelope])

    await log.append([envelope], checkpoint=Checkpoint("scheduler", 5))

    assert await log.checkpoint("scheduler") == 5


async def test_one_append_cannot_hold_the_same_id_twice(log: SqliteEventLog, make: Make) -> None:
    with pytest.raises(ValueError, match="'twice' more than once"):
        await log.append([make("run-a", event_id="twice"), make("run-a", event_id="twice")])
    assert await log.head() == 0


async def test_queued_appends_are_written_in_the_order_queued(log: SqliteEventLog, make: Make) -> None:
    futures = [log.enqueue([make(f"run-{number % 3}")]) for number in range(30)]
    placed = [envelope for future in futures for envelope in await future]
    assert [envelope.position for envelope in placed] == list(range(1, 31))
    assert [envelope.event_id for envelope in await log.read(0)] == [envelope.event_id for envelope in placed]
