"""Appends per second to the SQLite event log: one at a time, and many at once (group commit).

Baseline, measured in the same run: one `INSERT` + `COMMIT` per event with the sqlite3 module alone,
with the same journal mode and synchronous setting.

uv run python -m benchmarks bench_event_log
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from conveyor_events import Envelope, JobQueued
from conveyor_runtime import SqliteEventLog
from conveyor_runtime._sqlite_log import Synchronous

SINGLE = 3_000
GROUP_WRITERS = 200
GROUP_ROUNDS = 100
LARGE_APPEND = 1_000
LARGE_ROUNDS = 50


def _event(stream: str, number: int) -> Envelope:
    return Envelope.wrap(JobQueued(run_id=stream, job_id=f"job-{number}", labels=["ubuntu-latest"]), stream=stream)


def bare_sqlite(path: Path, synchronous: Synchronous, count: int) -> float:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA synchronous={synchronous}")
    connection.execute("CREATE TABLE events (position INTEGER PRIMARY KEY, stream TEXT, data TEXT)")
    payload = _event("s", 0).to_json()
    started = time.perf_counter()
    for number in range(count):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO events (stream, data) VALUES (?, ?)", (f"s{number % 50}", payload))
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return count / elapsed


async def single(path: Path, synchronous: Synchronous, count: int) -> float:
    async with SqliteEventLog(path, synchronous=synchronous) as log:
        events = [_event(f"run-{number % 50}", number) for number in range(count)]
        started = time.perf_counter()
        for envelope in events:
            await log.append([envelope])
        return count / (time.perf_counter() - started)


async def group(path: Path, synchronous: Synchronous, *, per_append: int) -> tuple[float, float]:
    """(appends/s, events/s) with GROUP_WRITERS writers appending concurrently, GROUP_ROUNDS times each."""
    async with SqliteEventLog(path, synchronous=synchronous) as log:
        batches = [
            [
                [_event(f"run-{writer}", round_ * per_append + k) for k in range(per_append)]
                for round_ in range(GROUP_ROUNDS)
            ]
            for writer in range(GROUP_WRITERS)
        ]

        async def writer(rounds: list[list[Envelope]]) -> None:
            for batch in rounds:
                await log.append(batch)

        started = time.perf_counter()
        await asyncio.gather(*(writer(rounds) for rounds in batches))
        elapsed = time.perf_counter() - started
        appends = GROUP_WRITERS * GROUP_ROUNDS
        return appends / elapsed, appends * per_append / elapsed


async def large(path: Path, synchronous: Synchronous) -> float:
    """Events/s when one writer appends LARGE_APPEND events at a time (a run's log lines, a replayed batch)."""
    async with SqliteEventLog(path, synchronous=synchronous) as log:
        batches = [
            [_event(f"run-{round_}", round_ * LARGE_APPEND + k) for k in range(LARGE_APPEND)]
            for round_ in range(LARGE_ROUNDS)
        ]
        started = time.perf_counter()
        for batch in batches:
            await log.append(batch)
        return LARGE_ROUNDS * LARGE_APPEND / (time.perf_counter() - started)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        print(f"{'measure':<46} {'NORMAL':>12} {'FULL':>12}")
        rows: dict[str, list[float]] = {}
        for synchronous in ("NORMAL", "FULL"):
            tag = synchronous.lower()
            rows.setdefault("baseline: bare sqlite3 INSERT+COMMIT /s", []).append(
                bare_sqlite(folder / f"bare-{tag}.db", synchronous, SINGLE)
            )
            rows.setdefault("single-event appends/s (one at a time)", []).append(
                asyncio.run(single(folder / f"single-{tag}.db", synchronous, SINGLE))
            )
            appends, _ = asyncio.run(group(folder / f"group1-{tag}.db", synchronous, per_append=1))
            rows.setdefault(f"group commit: 1-event appends/s ({GROUP_WRITERS} writers)", []).append(appends)
            appends, events = asyncio.run(group(folder / f"group10-{tag}.db", synchronous, per_append=10))
            rows.setdefault(f"group commit: 10-event appends/s ({GROUP_WRITERS} writers)", []).append(appends)
            rows.setdefault("group commit: events/s in 10-event appends", []).append(events)
            rows.setdefault(f"events/s in {LARGE_APPEND}-event appends (1 writer)", []).append(
                asyncio.run(large(folder / f"large-{tag}.db", synchronous))
            )
        for label, values in rows.items():
            print(f"{label:<46} {values[0]:>12,.0f} {values[1]:>12,.0f}")
        baseline = rows["baseline: bare sqlite3 INSERT+COMMIT /s"]
        for label in list(rows)[1:]:
            ratios = [value / base for value, base in zip(rows[label], baseline, strict=True)]
            print(f"ratio to baseline, {label:<27} {ratios[0]:>8.2f}x {ratios[1]:>11.2f}x")


if __name__ == "__main__":
    main()
