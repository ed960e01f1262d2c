"""The scheduler in-process: decisions per second, and 10,000 runs in progress at once with simulated runners.

Each run is a diamond of four jobs (a → b, c → d). Events go through `Scheduler.on_event`, as the service
handles them (evolve, decide, envelopes with decision ids); the simulated runners start and complete every
queued job in a shuffled order across runs. The rate is given twice: over the wall time, which includes the
harness (placing envelopes, playing the runners), and over the time spent in `on_event` alone. Baseline,
measured in the same run: decoding the same events from their JSON, the least any consumer of the log does per
event. The process's garbage collector is tuned as a service's (`tune_collector`).

The 10,000 runs are held in a process of their own (`--hold`), so what the throughput part allocated is not
counted: its RSS before the runs, with them all open, and at its peak (VmHWM) over the whole simulation.

uv run python -m benchmarks bench_scheduler
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
from array import array
from pathlib import Path

from conveyor_events import (
    Conclusion,
    Envelope,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobStarted,
    RunCompleted,
    RunEvent,
    RunPlanned,
    RunRequested,
    envelope_from_json,
)
from conveyor_runtime import tune_collector
from conveyor_scheduler.handlers import Scheduler

THROUGHPUT_RUNS = 3_000
CONCURRENT_RUNS = 10_000
JOBS = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}


class _Streams:
    """Places envelopes as the log would: a sequence per run, one global position."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.position = 0

    def place(self, event: RunEvent) -> Envelope:
        self.position += 1
        version = self.versions.get(event.run_id, 0) + 1
        self.versions[event.run_id] = version
        return Envelope.wrap(event, stream=event.run_id).placed(version, self.position)


def _opening(run_id: str) -> list[RunEvent]:
    request = RunRequested(run_id=run_id, repository="/bench", ref="refs/heads/main", sha="b" * 40)
    jobs = [
        JobPlanned(run_id=run_id, job_id=f"ci.{key}", workflow="ci.yml", job_key=key, name=key,
                   needs=[f"ci.{need}" for need in needs], runs_on=["x"])
        for key, needs in JOBS.items()
    ]
    planned = RunPlanned(run_id=run_id, workflow="ci.yml", workflow_name="CI", index=1, count=1,
                         jobs=[job.job_id for job in jobs])
    return [request, *jobs, planned]


class _Simulation:
    """Feeds runs to a scheduler and plays the runners; records each event's handling time, and every envelope's
    JSON when `record` (for the baseline). The JSON rather than the envelopes: a service lets go of an envelope
    once handled, and 60,000 envelopes held would make the collector's passes inside `on_event` longer."""

    def __init__(self, *, record: bool) -> None:
        self.scheduler = Scheduler(log=None)  # type: ignore[arg-type]  # only a restarted scheduler reads the log
        self.streams = _Streams()
        self.queued: list[tuple[str, str]] = []
        """The jobs queued and not yet started, as a runner knows them: run and job id."""
        self.handled = 0
        self.decided = 0
        self.completed = 0
        self.latencies = array("d")
        self.record = record
        self.fed: list[str] = []

    async def feed(self, event: RunEvent) -> None:
        envelope = self.streams.place(event)
        if self.record:
            self.fed.append(envelope.to_json())
        started = time.perf_counter()
        decisions = await self.scheduler.on_event(envelope)
        self.latencies.append(time.perf_counter() - started)
        self.handled += 1
        for decision in decisions:
            placed = self.streams.place(decision.event)  # type: ignore[arg-type]
            if self.record:
                self.fed.append(placed.to_json())
            self.decided += 1
            match placed.event:
                case JobQueued() as queued:
                    self.queued.append((queued.run_id, queued.job_id))
                case RunCompleted():
                    self.completed += 1

    async def open(self, runs: int) -> None:
        for number in range(runs):
            for event in _opening(f"run-{number}"):
                await self.feed(event)

    async def play_runners(self, rng: random.Random) -> None:
        """Start and complete queued jobs, in a shuffled order, until no job is queued."""
        while self.queued:
            batch, self.queued = self.queued, []
            rng.shuffle(batch)
            for run_id, job_id in batch:
                await self.feed(JobStarted(run_id=run_id, job_id=job_id, runner_id="sim"))
            for run_id, job_id in batch:
                await self.feed(JobCompleted(run_id=run_id, job_id=job_id, conclusion=Conclusion.SUCCESS))


def _status_mib(field: str) -> float:
    """A memory figure of this process from /proc (VmRSS: now, VmHWM: the peak so far), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _decode_all(texts: list[str]) -> float:
    """Events/s of decoding the same envelopes from their JSON (the baseline)."""
    started = time.perf_counter()
    for text in texts:
        envelope_from_json(text)
    return len(texts) / (time.perf_counter() - started)


async def _throughput() -> tuple[_Simulation, float]:
    simulation = _Simulation(record=True)
    started = time.perf_counter()
    await simulation.open(THROUGHPUT_RUNS)
    await simulation.play_runners(random.Random(1))
    elapsed = time.perf_counter() - started
    assert simulation.completed == THROUGHPUT_RUNS, simulation.completed
    return simulation, elapsed


async def _hold() -> dict[str, float]:
    """Open 10,000 runs at once, then play their runners to the end: memory and each event's handling time."""
    before = _status_mib("VmRSS")
    simulation = _Simulation(record=False)
    await simulation.open(CONCURRENT_RUNS)
    held = len(simulation.scheduler.state.runs)
    with_them = _status_mib("VmRSS")
    await simulation.play_runners(random.Random(2))
    assert held == CONCURRENT_RUNS, held
    assert simulation.completed == CONCURRENT_RUNS, simulation.completed
    milliseconds = [latency * 1000 for latency in simulation.latencies]
    return {
        "before": before,
        "with_them": with_them,
        "peak": _status_mib("VmHWM"),
        "p50": statistics.median(milliseconds),
        "p99": _percentile(milliseconds, 0.99),
        "max": max(milliseconds),
    }


def main() -> None:
    tune_collector()
    simulation, elapsed = asyncio.run(_throughput())
    in_scheduler = sum(simulation.latencies)
    baseline = _decode_all(simulation.fed)
    held = json.loads(
        subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_scheduler", "--hold"],
            check=True,
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        ).stdout
    )
    handled = simulation.handled
    rows = [
        ("baseline: envelopes decoded from JSON /s", f"{baseline:,.0f}"),
        (f"events handled /s, wall time ({THROUGHPUT_RUNS} runs of 4 jobs)", f"{handled / elapsed:,.0f}"),
        ("events handled /s, time in on_event", f"{handled / in_scheduler:,.0f}"),
        ("events handled + decided /s, time in on_event", f"{(handled + simulation.decided) / in_scheduler:,.0f}"),
        ("ratio handled /s (time in on_event) to baseline", f"{handled / in_scheduler / baseline:.2f}"),
        ("10,000 runs: RSS before → with them open (MiB)", f"{held['before']:.0f} → {held['with_them']:.0f}"),
        ("10,000 runs: peak RSS over the simulation (MiB)", f"{held['peak']:.0f}"),
        ("10,000 runs: decision p50 (ms)", f"{held['p50']:.3f}"),
        ("10,000 runs: decision p99 (ms)", f"{held['p99']:.3f}"),
        ("10,000 runs: decision max (ms)", f"{held['max']:.3f}"),
    ]
    print(f"{'measure':<58} {'value':>12}")
    for measure, value in rows:
        print(f"{measure:<58} {value:>12}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--hold"]:
        tune_collector()
        print(json.dumps(asyncio.run(_hold())))
    else:
        main()
