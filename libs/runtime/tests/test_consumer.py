"""The consumer runner: handlers over the log, their output written with the checkpoint, failures dead-lettered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence

import pytest
from conveyor_events import (
    Envelope,
    EventDeadLettered,
    JobQueued,
    RunCancelRequested,
    RunCompleted,
    RunRequested,
    deterministic_id,
)
from conveyor_runtime import DEAD_LETTERS, Checkpoint, Consumer, EventLog, SqliteEventLog, consume

Make = Callable[..., Envelope]
WaitFor = Callable[[Callable[[], Awaitable[bool]]], Awaitable[None]]


class RecordingLog:
    """An `EventLog` that passes everything to a real one and remembers each append it was asked for."""

    def __init__(self, log: SqliteEventLog) -> None:
        self.log = log
        self.appends: list[tuple[list[Envelope], Checkpoint | None]] = []

    async def append(
        self, events: Sequence[Envelope], *, expected_version: int | None = None, checkpoint: Checkpoint | None = None
    ) -> list[Envelope]:
        self.appends.append((list(events), checkpoint))
        return await self.log.append(events, expected_version=expected_version, checkpoint=checkpoint)

    def enqueue(
        self, events: Sequence[Envelope], *, expected_version: int | None = None, checkpoint: Checkpoint | None = None
    ) -> asyncio.Future[list[Envelope]]:
        self.appends.append((list(events), checkpoint))
        return self.log.enqueue(events, expected_version=expected_version, checkpoint=checkpoint)

    async def read(self, after: int = 0, limit: int = 1000, *, types: Collection[str] | None = None) -> list[Envelope]:
        return await self.log.read(after, limit, types=types)

    async def read_stream(self, stream: str, *, types: Collection[str] | None = None) -> list[Envelope]:
        return await self.log.read_stream(stream, types=types)

    def subscribe(self, after: int = 0, *, types: Collection[str] | None = None) -> AsyncIterator[Envelope]:
        return self.log.subscribe(after, types=types)

    def subscribe_batches(
        self, after: int = 0, *, types: Collection[str] | None = None, limit: int = 500
    ) -> AsyncIterator[list[Envelope]]:
        return self.log.subscribe_batches(after, types=types, limit=limit)

    async def checkpoint(self, consumer: str) -> int:
        return await self.log.checkpoint(consumer)

    async def head(self) -> int:
        return await self.log.head()


def completes_each_run(handled: list[str]) -> Callable[[Envelope], Awaitable[Sequence[Envelope]]]:
    """A handler that answers each RunRequested with a RunCompleted of a deterministic id."""

    async def handle(envelope: Envelope) -> Sequence[Envelope]:
        handled.append(envelope.event_id)
        assert isinstance(envelope.event, RunRequested)
        run_id = envelope.event.run_id
        completed = RunCompleted(run_id=run_id, conclusion="success")
        return [Envelope.wrap(completed, stream=run_id, event_id=deterministic_id(run_id, "completed"), cause=envelope)]

    return handle


def requested(run_id: str) -> RunRequested:
    return RunRequested(run_id=run_id, repository="acme/app", ref="refs/heads/main", sha="1" * 40)


@contextlib.asynccontextmanager
async def running(log: EventLog, consumer: Consumer) -> AsyncIterator[asyncio.Task[None]]:
    """`consume` in a task for the duration of the block; an error it stopped with is raised at the end."""
    task = asyncio.create_task(consume(log, consumer))
    try:
        yield task
    finally:
        task.cancel()
        [outcome] = await asyncio.gather(task, return_exceptions=True)
    if isinstance(outcome, Exception):
        raise outcome


async def test_a_consumer_names_the_types_it_handles() -> None:
    async def ignore(envelope: Envelope) -> Sequence[Envelope]:
        return []

    consumer = Consumer("c", {RunRequested: ignore, JobQueued: ignore})

    assert consumer.types == ["RunRequested", "JobQueued"]


async def test_what_a_handler_returns_is_written_with_the_checkpoint(
    log: SqliteEventLog, make: Make, wait_for: WaitFor
) -> None:
    recording = RecordingLog(log)
    handled: list[str] = []
    [cause] = await log.append([make("run-1", requested("run-1"))])

    async with running(recording, Consumer("planner", {RunRequested: completes_each_run(handled)})):
        await wait_for(lambda: has_checkpoint(log, "planner", cause.position))

    assert handled == [cause.event_id]
    [(events, checkpoint)] = recording.appends
    assert checkpoint == Checkpoint("planner", cause.position)
    assert [envelope.type for envelope in events] == ["RunCompleted"]
    [completed] = await log.read(cause.position)
    assert completed.event_id == deterministic_id("run-1", "completed")
    assert (completed.causation_id, completed.correlation_id) == (cause.event_id, cause.correlation_id)


async def test_a_handler_without_output_still_moves_the_checkpoint(
    log: SqliteEventLog, make: Make, wait_for: WaitFor
) -> None:
    async def ignore(envelope: Envelope) -> Sequence[Envelope]:
        return []

    [_, second] = await log.append([make("run-1", requested("run-1")), make("run-1", requested("run-1"))])

    async with running(log, Consumer("quiet", {RunRequested: ignore})):
        await wait_for(lambda: has_checkpoint(log, "quiet", second.position))

    assert await log.head() == second.position


async def test_quiet_events_found_together_move_the_checkpoint_in_one_write(
    log: SqliteEventLog, make: Make, wait_for: WaitFor
) -> None:
    async def ignore(envelope: Envelope) -> Sequence[Envelope]:
        return []

    recording = RecordingLog(log)
    appended = await log.append([make("run-1", requested("run-1")) for _ in range(5)])

    async with running(recording, Consumer("quiet", {RunRequested: ignore})):
        await wait_for(lambda: has_checkpoint(log, "quiet", appended[-1].position))

    assert recording.appends == [([], Checkpoint("quiet", appended[-1].position))]


async def test_a_quiet_event_is_checkpointed_by_the_next_write(
    log: SqliteEventLog, make: Make, wait_for: WaitFor
) -> None:
    handled: list[str] = []
    complete = completes_each_run(handled)

    async def quiet_then_complete(envelope: Envelope) -> Sequence[Envelope]:
        return await complete(envelope) if envelope.sequence == 2 else []

    recording = RecordingLog(log)
    [_, answered, last] = await log.append([make("run-1", requested("run-1")) for _ in range(3)])

    async with running(recording, Consumer("planner", {RunRequested: quiet_then_complete})):
        await wait_for(lambda: has_checkpoint(log, "planner", last.position))

    assert [(len(events), checkpoint) for events, checkpoint in recording.appends] == [
        (1, Checkpoint("planner", answered.position)),
        (0, Checkpoint("planner", last.position)),
    ]


async def test_a_consumer_handles_only_its_types(log: SqliteEventLog, make: Make, wait_for: WaitFor) -> None:
    seen: list[str] = []

    async def handle(envelope: Envelope) -> Sequence[Envelope]:
        seen.append(envelope.type)
        return []

    await log.append([make("run-1"), make("run-1", JobQueued(run_id="run-1", job_id="j")), make("run-1")])

    async with running(log, Consumer("queue-watcher", {JobQueued: handle})):
        await wait_for(lambda: has_checkpoint(log, "queue-watcher", 2))

    assert seen == ["JobQueued"]


async def test_output_for_several_streams_is_all_written(log: SqliteEventLog, make: Make, wait_for: WaitFor) -> None:
    async def fan_out(envelope: Envelope) -> Sequence[Envelope]:
        return [
            Envelope.wrap(RunCancelRequested(run_id=run_id), stream=run_id, event_id=f"cancel-{run_id}", cause=envelope)
            for run_id in ("run-a", "run-a", "run-b", "run-c")
        ][1:]

    [cause] = await log.append([make("run-1", requested("run-1"))])

    async with running(log, Consumer("fan-out", {RunRequested: fan_out})):
        await wait_for(lambda: has_checkpoint(log, "fan-out", cause.position))

    assert sorted(envelope.stream for envelope in await log.read(cause.position)) == ["run-a", "run-b", "run-c"]


async def test_a_restarted_consumer_resumes_after_its_checkpoint(
    log: SqliteEventLog, make: Make, wait_for: WaitFor
) -> None:
    handled: list[str] = []
    consumer = Consumer("planner", {RunRequested: completes_each_run(handled)})
    before = [(await log.append([make(f"run-{index}", requested(f"run-{index}"))]))[0] for index in range(3)]

    async with running(log, consumer):
        await wait_for(lambda: has_checkpoint(log, "planner", before[-1].position))
    after = [(await log.append([make(f"run-{index}", requested(f"run-{index}"))]))[0] for index in range(3, 6)]
    async with running(log, consumer):
        await wait_for(lambda: has_checkpoint(log, "planner", after[-1].position))

    assert handled == [envelope.event_id for envelope in [*before, *after]]
    completed = await log.read(types=["RunCompleted"])
    assert sorted(envelope.stream for envelope in completed) == [f"run-{index}" for index in range(6)]


async def test_a_consumer_cancelled_while_handling_does_not_handle_twice(
    log: SqliteEventLog, make: Make, wait_for: WaitFor
) -> None:
    handled: list[str] = []
    inner = completes_each_run(handled)

    async def slow(envelope: Envelope) -> Sequence[Envelope]:
        produced = await inner(envelope)
        await asyncio.sleep(0.005)
        return produced

    consumer = Consumer("planner", {RunRequested: slow})
    for index in range(40):
        await log.append([make(f"run-{index}", requested(f"run-{index}"))])

    async with running(log, consumer):
        await wait_for(lambda: has_checkpoint(log, "planner", 10))
    stopped_at = await log.checkpoint("planner")
    handled_first = list(handled)
    async with running(log, consumer):
        await wait_for(lambda: has_checkpoint(log, "planner", 40))

    assert stopped_at < 40
    # The one event that may be handled again was in flight when cancelled, its checkpoint not yet written.
    repeated = [event_id for event_id in handled[len(handled_first) :] if event_id in handled_first]
    assert len(repeated) <= 1
    assert len(set(handled)) == 40
    assert len(await log.read(types=["RunCompleted"], limit=1000)) == 40


async def test_a_failing_handler_dead_letters_the_event_and_moves_on(
    log: SqliteEventLog, make: Make, wait_for: WaitFor, caplog: pytest.LogCaptureFixture
) -> None:
    handled: list[str] = []
    complete = completes_each_run(handled)

    async def picky(envelope: Envelope) -> Sequence[Envelope]:
        assert isinstance(envelope.event, RunRequested)
        if envelope.event.run_id == "run-bad":
            raise ValueError("cannot plan run-bad")
        return await complete(envelope)

    [bad] = await log.append([make("run-bad", requested("run-bad"))])
    [good] = await log.append([make("run-good", requested("run-good"))])

    async with running(log, Consumer("planner", {RunRequested: picky})):
        await wait_for(lambda: has_checkpoint(log, "planner", good.position))

    assert handled == [good.event_id]
    [letter] = await log.read_stream(DEAD_LETTERS)
    assert DEAD_LETTERS == "dead-letters"
    assert letter.type == "EventDeadLettered"
    assert letter.event == EventDeadLettered(
        consumer="planner",
        event_id=bad.event_id,
        failed_type="RunRequested",
        position=bad.position,
        reason="ValueError: cannot plan run-bad",
    )
    assert letter.causation_id == bad.event_id
    assert letter.event_id == deterministic_id("dead-letter", "planner", bad.event_id)
    assert len(await log.read_stream("run-good")) == 2
    assert any("planner could not handle RunRequested" in record.getMessage() for record in caplog.records)


async def test_output_that_cannot_be_written_is_dead_lettered_too(
    log: SqliteEventLog, make: Make, wait_for: WaitFor
) -> None:
    """Bad input never stops a service: a handler whose output the log refuses must not kill the consumer."""

    async def twice_the_same_id(envelope: Envelope) -> Sequence[Envelope]:
        event = RunCompleted(run_id="run-1", conclusion="success")
        return [Envelope.wrap(event, stream="run-1", event_id="same", cause=envelope) for _ in range(2)]

    async def quiet(envelope: Envelope) -> Sequence[Envelope]:
        return []

    [bad] = await log.append([make("run-1", requested("run-1"))])
    [after] = await log.append([make("run-1", JobQueued(run_id="run-1", job_id="j"))])
    consumer = Consumer("scheduler", {RunRequested: twice_the_same_id, JobQueued: quiet})

    async with running(log, consumer) as task:

        async def stopped_or_done() -> bool:
            return task.done() or await has_checkpoint(log, "scheduler", after.position)

        await wait_for(stopped_or_done)
        assert not task.done(), f"the consumer stopped on {task.exception()!r}"

    [letter] = await log.read_stream(DEAD_LETTERS)
    assert isinstance(letter.event, EventDeadLettered)
    assert letter.event.event_id == bad.event_id


async def has_checkpoint(log: EventLog, consumer: str, position: int) -> bool:
    return await log.checkpoint(consumer) >= position
