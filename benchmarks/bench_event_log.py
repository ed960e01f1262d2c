"""Appends per second to the SQLite event log: one at a time, and many at once (group commit).

Baseline, measured in the same run: one `INSERT` + `COMMIT` per event with the sqlite3 module alone,
with the same journal mode and synchronous setting. Each measure is taken with `synchronous=NORMAL` (the
default) and `FULL` on asyncio's own loop, and with NORMAL as the served processes run: on uvloop, with the
garbage collector tuned (`tune_collector`).

uv run python -m benchmarks bench_event_log
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import tempfile
import time
from pathlib import Path

import uvloop
from conveyor_events import Envelope, JobQueued
from conveyor_runtime import SqliteEventLog, tune_collector
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


COLUMNS: list[tuple[str, Synchronous, bool]] = [
    ("NORMAL", "NORMAL", False),
    ("FULL", "FULL", False),
    ("NORMAL, served", "NORMAL", True),
]
"""(heading, synchronous, served): served runs on uvloop with the collector tuned, as `conveyor up` and
`conveyor service` run; the others on asyncio's own loop with the collector's defaults."""


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        print(f"{'measure':<46}" + "".join(f" {heading:>15}" for heading, _, _ in COLUMNS))
        rows: dict[str, list[float]] = {}
        defaults = gc.get_threshold()
        for column, (_, synchronous, served) in enumerate(COLUMNS):
            run = uvloop.run if served else asyncio.run
            if served:
                tune_collector()
            tag = f"{synchronous.lower()}-{column}"
            rows.setdefault("baseline: bare sqlite3 INSERT+COMMIT /s", []).append(
                bare_sqlite(folder / f"bare-{tag}.db", synchronous, SINGLE)
            )
            rows.setdefault("single-event appends/s (one at a time)", []).append(
                run(single(folder / f"single-{tag}.db", synchronous, SINGLE))
            )
            appends, _ = run(group(folder / f"group1-{tag}.db", synchronous, per_append=1))
            rows.setdefault(f"group commit: 1-event appends/s ({GROUP_WRITERS} writers)", []).append(appends)
            appends, events = run(group(folder / f"group10-{tag}.db", synchronous, per_append=10))
            rows.setdefault(f"group commit: 10-event appends/s ({GROUP_WRITERS} writers)", []).append(appends)
            rows.setdefault("group commit: events/s in 10-event appends", []).append(events)
            rows.setdefault(f"events/s in {LARGE_APPEND}-event appends (1 writer)", []).append(
                run(large(folder / f"large-{tag}.db", synchronous))
            )
            gc.set_threshold(*defaults)
        for label, values in rows.items():
            print(f"{label:<46}" + "".join(f" {value:>15,.0f}" for value in values))
        baseline = rows["baseline: bare sqlite3 INSERT+COMMIT /s"]
        for label in list(rows)[1:]:
            ratios = [value / base for value, base in zip(rows[label], baseline, strict=True)]
            print(f"ratio to baseline, {label:<27}" + "".join(f" {ratio:>14.2f}x" for ratio in ratios))


if __name__ == "__main__":
    main()
