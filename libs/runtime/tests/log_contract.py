"""What every event log does, whatever it is built on: subclassed once per log (SQLite, Kafka).

A subclass provides two fixtures: `log`, an open log that is empty, and `another_log`, which makes a second,
unopened log on the same storage (another process, in effect). Positions are compared by order, not by value:
they grow with every event but need not be consecutive (on Kafka, transaction markers take offsets too).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from itertools import pairwise
from typing import Protocol

import pytest
from conveyor_events import Envelope, JobQueued, RunCompleted, RunRequested
from conveyor_runtime import Checkpoint, ConcurrencyError, EventLog

Make = Callable[..., Envelope]


class OpenableLog(EventLog, Protocol):
    async def __aenter__(self) -> EventLog: ...

    async def __aexit__(self, *exc: object) -> None: ...


AnotherLog = Callable[[], OpenableLog]
"""Makes an unopened log on the same storage as the test's `log`."""


def positions(envelopes: list[Envelope]) -> list[int]:
    return [envelope.position for envelope in envelopes]


def increasing(numbers: list[int]) -> bool:
    return all(earlier < later for earlier, later in pairwise(numbers))


class LogContract:
    # -- appending and reading ------------------------------------------------------------------------------

    async def test_an_empty_log_has_head_0_and_nothing_to_read(self, log: EventLog) -> None:
        assert await log.head() == 0
        assert await log.read() == []
        assert await log.read_stream("run-1") == []
        assert await log.checkpoint("anyone") == 0

    async def test_append_assigns_sequences_per_stream_from_1_and_global_positions_in_order(
        self, log: EventLog, make: Make
    ) -> None:
        first = await log.append([make("run-a"), make("run-a")])
        second = await log.append([make("run-b")])
        third = await log.append([make("run-a")])

        written = [*first, *second, *third]
        assert [(envelope.stream, envelope.sequence) for envelope in written] == [
            ("run-a", 1),
            ("run-a", 2),
            ("run-b", 1),
            ("run-a", 3),
        ]
        assert written[0].position >= 1
        assert increasing(positions(written))
        assert await log.head() == written[-1].position

    async def test_append_returns_what_reading_gives(self, log: EventLog, make: Make) -> None:
        written = await log.append([make("run-a"), make("run-a")])

        assert await log.read() == written
        assert [envelope.event_id for envelope in written] == ["run-a-1", "run-a-2"]

    async def test_read_from_a_position_with_a_limit(self, log: EventLog, make: Make) -> None:
        written = [envelope for _ in range(5) for envelope in await log.append([make("run-a")])]
        at = positions(written)

        assert positions(await log.read(at[1])) == at[2:]
        assert positions(await log.read(at[0], limit=2)) == at[1:3]
        assert await log.read(at[4]) == []

    async def test_read_stream_gives_one_stream_in_sequence_order(self, log: EventLog, make: Make) -> None:
        first = await log.append([make("run-a")])
        await log.append([make("run-b")])
        then = await log.append([make("run-a"), make("run-a")])

        stream = await log.read_stream("run-a")

        assert [envelope.sequence for envelope in stream] == [1, 2, 3]
        assert stream == [*first, *then]

    async def test_types_filter_reads(self, log: EventLog, make: Make) -> None:
        [done_a] = await log.append([make("run-a", RunCompleted(run_id="run-a", conclusion="success"))])
        [first, queued] = await log.append([make("run-a"), make("run-a", JobQueued(run_id="run-a", job_id="j"))])
        [done_b] = await log.append([make("run-b", RunCompleted(run_id="run-b", conclusion="failure"))])

        assert await log.read(types=["RunCompleted"]) == [done_a, done_b]
        assert await log.read(done_a.position, types={"JobQueued", "RunCompleted"}) == [queued, done_b]
        assert await log.read_stream("run-a", types=["JobQueued"]) == [queued]
        assert await log.read(types=["RunRequested"]) == []
        assert await log.read(types=[]) == []
        assert first.type == "RunCancelRequested"

    async def test_read_gives_typed_events_back(self, log: EventLog, make: Make) -> None:
        requested = RunRequested(run_id="run-a", repository="acme/app", ref="refs/heads/main", sha="f" * 40)
        await log.append([make("run-a", requested)])

        [envelope] = await log.read()

        assert envelope.event == requested
        assert isinstance(envelope.event, RunRequested)

    async def test_an_append_to_two_streams_at_once_is_refused(self, log: EventLog, make: Make) -> None:
        with pytest.raises(ValueError, match=r"one append writes one stream, not 2: 'run-a', 'run-b'$"):
            await log.append([make("run-a"), make("run-b")], checkpoint=Checkpoint("c", 1))
        many = [make(f"run-{number}") for number in range(100)]
        with pytest.raises(ValueError, match=r"not 100: 'run-0', 'run-1', 'run-10' and 97 more$"):
            await log.append(many)

        assert await log.head() == 0
        assert await log.checkpoint("c") == 0

    async def test_an_empty_append_writes_nothing(self, log: EventLog) -> None:
        assert await log.append([]) == []
        assert await log.head() == 0

    async def test_append_to_a_log_that_is_not_open_is_refused(self, another_log: AnotherLog, make: Make) -> None:
        with pytest.raises(RuntimeError, match="not open"):
            await another_log().append([make()])

    async def test_a_reopened_log_goes_on_where_it_stopped(
        self, log: EventLog, another_log: AnotherLog, make: Make
    ) -> None:
        await log.append([make("run-a"), make("run-a")])
        [last] = await log.append([make("run-b")], checkpoint=Checkpoint("c", 3))

        async with another_log() as reopened:
            [envelope] = await reopened.append([make("run-a")])
            assert envelope.sequence == 3
            assert envelope.position > last.position
            assert await reopened.checkpoint("c") == 3
            assert len(await reopened.read()) == 4

    # -- optimistic concurrency -----------------------------------------------------------------------------

    async def test_expected_version_0_creates_a_new_stream(self, log: EventLog, make: Make) -> None:
        [envelope] = await log.append([make("run-a")], expected_version=0)

        assert envelope.sequence == 1

    async def test_expected_version_0_is_refused_when_the_stream_exists(self, log: EventLog, make: Make) -> None:
        await log.append([make("run-a")])

        with pytest.raises(ConcurrencyError) as raised:
            await log.append([make("run-a")], expected_version=0)

        assert (raised.value.stream, raised.value.expected, raised.value.actual) == ("run-a", 0, 1)

    async def test_a_version_mismatch_raises_and_writes_nothing(self, log: EventLog, make: Make) -> None:
        written = await log.append([make("run-a"), make("run-a")])

        with pytest.raises(ConcurrencyError, match="'run-a' is at version 2, not the expected 1"):
            await log.append([make("run-a"), make("run-a")], expected_version=1)

        assert await log.head() == written[-1].position
        assert await log.read_stream("run-a") == written

    async def test_the_right_expected_version_appends(self, log: EventLog, make: Make) -> None:
        await log.append([make("run-a"), make("run-a")])

        written = await log.append([make("run-a")], expected_version=2)

        assert [envelope.sequence for envelope in written] == [3]

    async def test_concurrent_writers_of_one_new_stream_one_wins(self, log: EventLog, make: Make) -> None:
        attempts = [log.append([make("run-a"), make("run-a")], expected_version=0) for _ in range(10)]

        outcomes = await asyncio.gather(*attempts, return_exceptions=True)

        winners = [outcome for outcome in outcomes if isinstance(outcome, list)]
        losers = [outcome for outcome in outcomes if isinstance(outcome, ConcurrencyError)]
        assert len(winners) == 1
        assert len(losers) == 9
        assert await log.read_stream("run-a") == winners[0]
        assert await log.head() == winners[0][-1].position

    @pytest.mark.parametrize("with_a_duplicate", [False, True], ids=["no-duplicate", "with-a-duplicate"])
    async def test_a_conflicting_append_in_a_group_fails_alone(
        self, log: EventLog, make: Make, with_a_duplicate: bool
    ) -> None:
        for index in range(20):
            await log.append([make(f"run-{index}")])
        old = await log.read()
        appends = []
        for index in range(20):
            expected = 1 if index % 2 == 0 else 7  # odd streams conflict
            checkpoint = Checkpoint(f"consumer-{index}", 100 + index)
            events = [make(f"run-{index}"), make(f"run-{index}")]
            appends.append(log.append(events, expected_version=expected, checkpoint=checkpoint))
        if with_a_duplicate:
            # A duplicate id in the group sends the SQLite writer down its one-append-at-a-time path.
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
        assert len(everything) == 40
        assert increasing(positions(everything))

    async def test_an_append_that_cannot_be_encoded_fails_alone(self, log: EventLog, make: Make) -> None:
        unencodable = RunCompleted.model_validate({"run_id": "run-bad", "conclusion": "success", "blob": object()})
        appends = [log.append([make(f"run-{index}")]) for index in range(5)]
        appends.insert(2, log.append([make("run-bad", unencodable)]))

        outcomes = await asyncio.gather(*appends, return_exceptions=True)

        assert isinstance(outcomes.pop(2), Exception)
        assert [type(outcome).__name__ for outcome in outcomes] == ["list"] * 5
        assert len(await log.read()) == 5
        assert await log.read_stream("run-bad") == []

    async def test_another_writer_does_not_cause_a_false_conflict(
        self, log: EventLog, another_log: AnotherLog, make: Make
    ) -> None:
        """Two logs on one storage (two processes, in effect): each sees the other's writes when it checks."""
        async with another_log() as theirs:
            await log.append([make("run-a")], expected_version=0)
            await theirs.append([make("run-a")], expected_version=1)

            [envelope] = await log.append([make("run-a")], expected_version=2)

            assert envelope.sequence == 3
            assert envelope.position == await theirs.head()

    async def test_another_writer_is_noticed_without_expected_version(
        self, log: EventLog, another_log: AnotherLog, make: Make
    ) -> None:
        async with another_log() as theirs:
            await log.append([make("run-a")])
            await theirs.append([make("run-a"), make("run-a")])

            [envelope] = await log.append([make("run-a")])

            assert envelope.sequence == 4
            with pytest.raises(ConcurrencyError):
                await log.append([make("run-a")], expected_version=3)

    # -- duplicates -----------------------------------------------------------------------------------------

    async def test_a_duplicate_event_id_is_not_written_twice(self, log: EventLog, make: Make) -> None:
        [stored] = await log.append([make("run-a", event_id="the-one")])
        [other] = await log.append([make("run-b")])

        [again] = await log.append([make("run-a", event_id="the-one")])

        assert again == stored
        assert again.sequence == 1
        assert await log.head() == other.position
        assert len(await log.read()) == 2

    async def test_event_ids_are_unique_within_their_stream(self, log: EventLog, make: Make) -> None:
        """A redelivery lands on the same stream (ids derive from the run), so ids are unique per stream."""
        [stored] = await log.append([make("run-a", event_id="shared-id")])

        [again] = await log.append([make("run-a", event_id="shared-id")])
        [elsewhere] = await log.append([make("run-b", event_id="shared-id")])

        assert again == stored
        assert (elsewhere.stream, elsewhere.sequence) == ("run-b", 1)
        assert elsewhere.position > stored.position

    async def test_a_partly_duplicate_append_writes_only_the_new_events(self, log: EventLog, make: Make) -> None:
        first = make("run-a", event_id="first")
        [stored] = await log.append([first])

        written = await log.append([first, make("run-a", event_id="second")])

        assert written[0] == stored
        assert (written[1].event_id, written[1].sequence) == ("second", 2)
        assert written[1].position > stored.position
        assert [envelope.event_id for envelope in await log.read()] == ["first", "second"]

    async def test_concurrent_duplicates_are_written_once(self, log: EventLog, make: Make) -> None:
        envelope = make("run-a", event_id="once")

        outcomes = await asyncio.gather(*[log.append([envelope]) for _ in range(50)])

        [stored] = await log.read()
        assert {(result[0].event_id, result[0].position) for result in outcomes} == {("once", stored.position)}

    async def test_a_retried_append_with_expected_version_returns_the_stored_envelopes(
        self, log: EventLog, make: Make
    ) -> None:
        """A writer that retries after a lost answer gets what it wrote, not a conflict with itself."""
        envelopes = [make("run-a"), make("run-a")]
        stored = await log.append(envelopes, expected_version=0)

        assert await log.append(envelopes, expected_version=0) == stored
        assert await log.read() == stored

    async def test_one_append_cannot_hold_the_same_id_twice(self, log: EventLog, make: Make) -> None:
        with pytest.raises(ValueError, match="'twice' more than once"):
            await log.append([make("run-a", event_id="twice"), make("run-a", event_id="twice")])
        assert await log.head() == 0

    # -- many writers ---------------------------------------------------------------------------------------

    async def test_a_thousand_concurrent_appends_land_at_distinct_positions_in_order(
        self, log: EventLog, make: Make
    ) -> None:
        envelopes = [make(f"run-{index % 7}") for index in range(1000)]

        outcomes = await asyncio.gather(*[log.append([envelope]) for envelope in envelopes])

        stored = await log.read(limit=2000)
        assert sorted(result[0].position for result in outcomes) == positions(stored)
        assert len(set(positions(stored))) == 1000
        assert {envelope.event_id for envelope in stored} == {envelope.event_id for envelope in envelopes}
        by_stream: dict[str, list[int]] = defaultdict(list)
        for envelope in stored:
            by_stream[envelope.stream].append(envelope.sequence)
        assert all(sequences == list(range(1, len(sequences) + 1)) for sequences in by_stream.values())
        returned = {result[0].event_id: result[0] for result in outcomes}
        assert all(returned[envelope.event_id] == envelope for envelope in stored)

    async def test_queued_appends_are_written_in_the_order_queued(self, log: EventLog, make: Make) -> None:
        futures = [log.enqueue([make(f"run-{number % 3}")]) for number in range(30)]
        placed = [envelope for future in futures for envelope in await future]
        assert increasing(positions(placed))
        assert await log.read(0) == placed

    # -- checkpoints ----------------------------------------------------------------------------------------

    async def test_an_append_with_a_checkpoint_stores_both(self, log: EventLog, make: Make) -> None:
        [envelope] = await log.append([make("run-a")], checkpoint=Checkpoint("planner", 41))

        assert await log.checkpoint("planner") == 41
        assert await log.head() == envelope.position
        await log.append([make("run-a")], checkpoint=Checkpoint("planner", 42))
        assert await log.checkpoint("planner") == 42
        assert await log.checkpoint("scheduler") == 0

    async def test_a_failing_append_stores_neither_events_nor_checkpoint(self, log: EventLog, make: Make) -> None:
        [envelope] = await log.append([make("run-a")], checkpoint=Checkpoint("planner", 1))

        with pytest.raises(ConcurrencyError):
            await log.append([make("run-a")], expected_version=0, checkpoint=Checkpoint("planner", 2))

        assert await log.checkpoint("planner") == 1
        assert await log.head() == envelope.position

    async def test_an_append_of_no_events_stores_the_checkpoint(self, log: EventLog) -> None:
        assert await log.append([], checkpoint=Checkpoint("notifier", 9)) == []

        assert await log.checkpoint("notifier") == 9
        assert await log.head() == 0

    async def test_an_append_of_only_duplicates_still_stores_the_checkpoint(self, log: EventLog, make: Make) -> None:
        """A handler whose (deterministic) output is already in the log must still move its consumer on."""
        envelope = make("run-a", event_id="already-there")
        await log.append([envelope])

        await log.append([envelope], checkpoint=Checkpoint("scheduler", 5))

        assert await log.checkpoint("scheduler") == 5
        assert len(await log.read()) == 1
