"""The SQLite event log: the log contract, and what only SQLite promises (consecutive positions)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conveyor_events import Envelope, RunCancelRequested
from conveyor_runtime import Checkpoint, SqliteEventLog
from conveyor_runtime import _sqlite_log as sqlite_log
from conveyor_runtime._sqlite_log import Synchronous

from libs.runtime.tests.log_contract import AnotherLog, LogContract

Make = Callable[..., Envelope]


@pytest.fixture
def another_log(tmp_path: Path) -> AnotherLog:
    return lambda: SqliteEventLog(tmp_path / "events.db", poll_interval=0.05)


class TestSqliteLog(LogContract):
    """The contract, on the `log` of conftest.py: a SQLite file in a temporary directory."""


async def test_positions_are_consecutive_from_1(log: SqliteEventLog, make: Make) -> None:
    first = await log.append([make("run-a"), make("run-a")])
    second = await log.append([make("run-b")])
    third = await log.append([make("run-a")])

    placed = [(envelope.stream, envelope.sequence, envelope.position) for envelope in [*first, *second, *third]]
    assert placed == [("run-a", 1, 1), ("run-a", 2, 2), ("run-b", 1, 3), ("run-a", 3, 4)]
    assert await log.head() == 4


async def test_what_an_envelope_lacks_is_stored_as_null(log: SqliteEventLog, make: Make) -> None:
    [first] = await log.append([make("run-a")])
    await log.append([make("run-a", cause=first)])

    with sqlite3.connect(log.path) as connection:
        rows = connection.execute(
            "SELECT causation_id, typeof(causation_id), typeof(traceparent), typeof(tracestate) FROM events"
        ).fetchall()
    assert rows == [(None, "null", "text", "null"), (first.event_id, "text", "text", "null")]


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
async def test_a_thousand_concurrent_appends_land_at_consecutive_positions(
    tmp_path: Path, make: Make, synchronous: Synchronous
) -> None:
    """With NORMAL the loop commits them; with FULL, whose commits wait for the disk, the writer thread does."""
    async with SqliteEventLog(tmp_path / "events.db", synchronous=synchronous) as log:
        outcomes = await asyncio.gather(*[log.append([make(f"run-{index % 7}")]) for index in range(1000)])

        assert sorted(result[0].position for result in outcomes) == list(range(1, 1001))
        assert [envelope.position for envelope in await log.read(limit=2000)] == list(range(1, 1001))
        for stream in {f"run-{index}" for index in range(7)}:
            sequences = [envelope.sequence for envelope in await log.read_stream(stream)]
            assert sequences == list(range(1, len(sequences) + 1))


async def test_a_duplicate_in_a_group_of_appends_keeps_the_positions_consecutive(
    log: SqliteEventLog, make: Make
) -> None:
    """The stored envelope is looked up for the duplicate; the appends around it are numbered on."""
    [stored] = await log.append([make("run-a", event_id="the-one")])

    outcomes = await asyncio.gather(
        log.append([make("run-b")]), log.append([make("run-a", event_id="the-one")]), log.append([make("run-c")])
    )

    assert [result[0].position for result in outcomes] == [2, 1, 3]
    assert outcomes[1][0] == stored


async def test_while_another_connection_holds_the_write_lock_the_loop_runs_on_and_appends_keep_their_order(
    log: SqliteEventLog, make: Make
) -> None:
    """Another process's write holds the lock: the append waits in the writer thread, not on the event loop, and
    one made after the lock is free still comes after it, though the loop could have written it at once."""
    elsewhere = sqlite3.connect(log.path, isolation_level=None)
    elsewhere.execute("BEGIN IMMEDIATE")
    first = asyncio.ensure_future(log.append([make("run-a")]))
    started = time.monotonic()
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert time.monotonic() - started < 2  # a loop waiting for the lock would wait out SQLite's busy timeout
    assert not first.done()

    elsewhere.execute("COMMIT")
    elsewhere.close()
    [b] = await log.append([make("run-b")])
    [a] = await asyncio.wait_for(first, 10)
    assert (a.stream, a.position, b.stream, b.position) == ("run-a", 1, "run-b", 2)
    [c] = await log.append([make("run-a")])
    assert (c.sequence, c.position) == (2, 3)


async def test_appends_from_another_event_loop_interleave_with_the_loops_own(log: SqliteEventLog, make: Make) -> None:
    async def from_the_other_loop() -> list[int]:
        placed = await asyncio.gather(*[log.append([make("run-other")]) for _ in range(200)])
        return [envelopes[0].position for envelopes in placed]

    other = asyncio.to_thread(asyncio.run, from_the_other_loop())
    own = asyncio.gather(*[log.append([make(f"run-{index % 3}")]) for index in range(600)])
    theirs, ours = await asyncio.gather(other, own)

    positions = sorted([*theirs, *(envelopes[0].position for envelopes in ours)])
    assert positions == list(range(1, 801))
    for stream in ("run-other", "run-0", "run-1", "run-2"):
        sequences = [envelope.sequence for envelope in await log.read_stream(stream)]
        assert sequences == list(range(1, len(sequences) + 1))


async def test_the_write_ahead_log_stays_small_while_the_loop_commits_without_a_pause(
    log: SqliteEventLog, make: Make
) -> None:
    """The loop's connection never checkpoints (that waits for the disk): the writer thread does, and when the
    loop's commits keep it from copying the whole log, it copies the rest while they wait, so that the log
    starts again from its beginning."""
    wal = log.path.with_name(log.path.name + "-wal")

    async def writer(number: int) -> None:
        for index in range(1250):
            await log.append([make(f"run-{number}-{index % 40}")])

    await asyncio.gather(*(writer(number) for number in range(16)))
    for index in range(5000):  # a consumer's position alone, as when it handled events that ask for nothing
        await log.append([], checkpoint=Checkpoint("quiet", index))

    assert await log.head() == 20_000
    assert wal.stat().st_size < 16 * 1024 * 1024  # ≈ 100 MB when the loop's commits overlapped the checkpoints
    assert log.path.stat().st_size > 1024 * 1024  # the events were copied into the database


async def test_the_write_ahead_log_stays_small_with_large_events(log: SqliteEventLog) -> None:
    """How full the log is counts the events' bytes, not only their number: a step's batch of log lines is large."""
    wal = log.path.with_name(log.path.name + "-wal")
    line = "x" * 20_000

    async def writer(number: int) -> None:
        for _ in range(250):
            event = RunCancelRequested(run_id=f"run-{number}", reason=line)
            await log.append([Envelope.wrap(event, stream=f"run-{number}")])

    await asyncio.gather(*(writer(number) for number in range(8)))

    assert await log.head() == 2_000
    assert wal.stat().st_size < 16 * 1024 * 1024  # ≈ 40 MB of events; counted by number they reached ≈ 120 MB


async def test_the_write_ahead_log_stays_small_while_the_disk_is_slow(
    tmp_path: Path, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop goes on committing while the thread copies the log, but not without end: when a copy is slow (the
    disk busy with others' writes), the loop's appends wait for it once they added as much again."""

    class Connection(sqlite3.Connection):
        def execute(self, sql: str, parameters: object = (), /) -> sqlite3.Cursor:
            if sql.startswith("PRAGMA wal_checkpoint"):
                time.sleep(0.05)
            return super().execute(sql, parameters)  # type: ignore[arg-type]

    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *args, **kw: connect(*args, **kw, factory=Connection))
    async with SqliteEventLog(tmp_path / "events.db") as log:

        async def writer(number: int) -> None:
            for index in range(1250):
                await log.append([make(f"run-{number}-{index % 40}")])

        await asyncio.gather(*(writer(number) for number in range(16)))
        assert await log.head() == 20_000
        assert (tmp_path / "events.db-wal").stat().st_size < 16 * 1024 * 1024  # 23-26 MB when nothing waited


async def test_the_loop_commits_while_the_thread_copies_the_write_ahead_log(
    tmp_path: Path, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy, which waits for the disk, holds nothing the loop's commits need: appends made while it is stuck
    are written and answered. What they added past the copy's end is not lost when it ends."""
    copying, go_on = threading.Event(), threading.Event()

    class Connection(sqlite3.Connection):
        def execute(self, sql: str, parameters: object = (), /) -> sqlite3.Cursor:
            if sql.startswith("PRAGMA wal_checkpoint") and not go_on.is_set():
                copying.set()
                go_on.wait(timeout=30)
            return super().execute(sql, parameters)  # type: ignore[arg-type]

    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *args, **kw: connect(*args, **kw, factory=Connection))
    monkeypatch.setattr(sqlite_log, "_CHECKPOINT_PAGES", 1)  # the first commit asks for a checkpoint
    async with SqliteEventLog(tmp_path / "events.db") as log:
        await log.append([make("run-a")])
        assert await asyncio.to_thread(copying.wait, 10)
        try:
            async with asyncio.timeout(10):
                during = await asyncio.gather(*(log.append([make(f"run-{index % 4}")]) for index in range(100)))
        finally:
            go_on.set()
        after = await log.append([make("run-a")])
        stored = await log.read(limit=1000)

    assert sorted(placed[0].position for placed in during) == list(range(2, 102))
    assert after[0].position == 102
    assert [envelope.position for envelope in stored] == list(range(1, 103))
    with sqlite3.connect(tmp_path / "events.db") as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert check.execute("SELECT COUNT(*) FROM events").fetchone() == (102,)


async def test_no_commit_of_the_loop_starts_the_write_ahead_log_again(
    tmp_path: Path, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a checkpoint copied the whole log, the next commit would start the log again and wait for the disk
    (it syncs the log's header). The thread holds the log's end with a read until it has made that write itself,
    so the loop's commit meanwhile writes after the end instead."""
    copied, go_on = threading.Event(), threading.Event()

    class Connection(sqlite3.Connection):
        def execute(self, sql: str, parameters: object = (), /) -> sqlite3.Cursor:
            cursor = super().execute(sql, parameters)  # type: ignore[arg-type]
            if sql.startswith("PRAGMA wal_checkpoint") and not go_on.is_set():
                copied.set()
                go_on.wait(timeout=30)
            return cursor

    def started_again() -> bytes:
        return wal.read_bytes()[12:24]  # the header's checkpoint sequence number and salts change when it does

    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *args, **kw: connect(*args, **kw, factory=Connection))
    monkeypatch.setattr(sqlite_log, "_CHECKPOINT_PAGES", 1)  # the first commit asks for a checkpoint
    wal = tmp_path / "events.db-wal"
    async with SqliteEventLog(tmp_path / "events.db") as log:
        await log.append([make("run-a")])
        assert await asyncio.to_thread(copied.wait, 10)  # the loop waited: the whole log was copied
        before = started_again()
        try:
            async with asyncio.timeout(10):
                [placed] = await log.append([make("run-b")])
            after = started_again()
        finally:
            go_on.set()

    assert placed.position == 2
    assert after == before


async def test_a_group_over_more_streams_than_the_writer_remembers_is_numbered_right(
    tmp_path: Path, make: Make
) -> None:
    """The loop commits it in parts no larger than the streams remembered: a stream forgotten within one
    transaction would be read back from the file without the transaction's own rows, and numbered again."""
    async with SqliteEventLog(tmp_path / "events.db", remembered_streams=10) as log:
        appended = [log.enqueue([make(f"run-{index}")]) for index in range(25)]
        appended.append(log.enqueue([make("run-0")]))
        placed = [envelopes[0] for envelopes in await asyncio.gather(*appended)]

    assert [envelope.position for envelope in placed] == list(range(1, 27))
    assert (placed[-1].stream, placed[-1].sequence) == ("run-0", 2)


async def test_an_append_once_the_log_is_closing_is_refused_and_every_earlier_one_is_written(
    tmp_path: Path, make: Make
) -> None:
    log = await SqliteEventLog(tmp_path / "events.db").open()
    earlier = [log.enqueue([make("run-a")]) for _ in range(3)]
    closing = asyncio.ensure_future(log.close())
    await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="not open"):
        log.enqueue([make("run-a")])
    await closing
    assert [envelopes[0].position for envelopes in await asyncio.gather(*earlier)] == [1, 2, 3]
