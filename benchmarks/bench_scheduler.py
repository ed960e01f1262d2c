"""The scheduler in-process: decisions per second, and 10,000 runs in progress at once with simulated runners.

Each run is a diamond of four jobs (a → b, c → d). Events go through `Scheduler.on_event`, as the service
handles them (evolve, decide, envelopes with decision ids); the simulated runners start and complete every
queued job in a shuffled order across runs. Baseline, measured in the same run: decoding the same events from
their JSON, the least any consumer of the log does per event.

uv run python -m benchmarks bench_scheduler
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
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
    """Feeds runs to a scheduler and plays the runners; records each event's handling time."""

    def __init__(self) -> None:
        self.scheduler = Scheduler(log=None)  # type: ignore[arg-type]  # only a restarted scheduler reads the log
        self.streams = _Streams()
        self.queued: list[JobQueued] = []
        self.handled = 0
        self.decided = 0
        self.completed = 0
        self.latencies: list[float] = []
        self.fed: list[Envelope] = []

    async def feed(self, event: RunEvent) -> None:
        envelope = self.streams.place(event)
        self.fed.append(envelope)
        started = time.perf_counter()
        decisions = await self.scheduler.on_event(envelope)
        self.latencies.append(time.perf_counter() - started)
        self.handled += 1
        for decision in decisions:
            placed = self.streams.place(decision.event)  # type: ignore[arg-type]
            self.fed.append(placed)
            self.decided += 1
            match placed.event:
                case JobQueued() as queued:
                    self.queued.append(queued)
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
            for queued in batch:
                await self.feed(JobStarted(run_id=queued.run_id, job_id=queued.job_id, runner_id="sim"))
            for queued in batch:
                await self.feed(JobCompleted(run_id=queued.run_id, job_id=queued.job_id,
                                             conclusion=Conclusion.SUCCESS))


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _decode_all(envelopes: list[Envelope]) -> float:
    """Events/s of decoding the same envelopes from JSON (the baseline)."""
    texts = [envelope.to_json() for envelope in envelopes]
    started = time.perf_counter()
    for text in texts:
        envelope_from_json(text)
    return len(texts) / (time.perf_counter() - started)


async def _throughput() -> tuple[float, float, _Simulation]:
    simulation = _Simulation()
    started = time.perf_counter()
    await simulation.open(THROUGHPUT_RUNS)
    await simulation.play_runners(random.Random(1))
    elapsed = time.perf_counter() - started
    assert simulation.completed == THROUGHPUT_RUNS, simulation.completed
    return simulation.handled / elapsed, (simulation.handled + simulation.decided) / elapsed, simulation


async def _concurrent() -> tuple[float, float, list[float]]:
    before = _rss_mib()
    simulation = _Simulation()
    await simulation.open(CONCURRENT_RUNS)
    held = len(simulation.scheduler.state.runs)
    simulation.fed.clear()  # the simulation's own record is not the scheduler's memory
    peak = _rss_mib()
    await simulation.play_runners(random.Random(2))
    assert held == CONCURRENT_RUNS, held
    assert simulation.completed == CONCURRENT_RUNS, simulation.completed
    return before, peak, simulation.latencies


def main() -> None:
    handled_per_s, with_decisions_per_s, simulation = asyncio.run(_throughput())
    baseline = _decode_all(simulation.fed)
    before, peak, latencies = asyncio.run(_concurrent())
    milliseconds = [latency * 1000 for latency in latencies]
    print(f"{'measure':<58} {'value':>12}")
    print(f"{'baseline: envelopes decoded from JSON /s':<58} {baseline:>12,.0f}")
    print(f"{'scheduler: events handled /s (' + str(THROUGHPUT_RUNS) + ' runs of 4 jobs)':<58} {handled_per_s:>12,.0f}")
    print(f"{'scheduler: events handled + decided /s':<58} {with_decisions_per_s:>12,.0f}")
    print(f"{'ratio handled /s to baseline':<58} {handled_per_s / baseline:>12.2f}")
    print(f"{'10,000 runs in progress: RSS before → with them (MiB)':<58} {before:>5.0f} → {peak:>4.0f}")
    print(f"{'10,000 runs: decision p50 (ms)':<58} {statistics.median(milliseconds):>12.3f}")
    print(f"{'10,000 runs: decision p99 (ms)':<58} {_percentile(milliseconds, 0.99):>12.3f}")
    print(f"{'10,000 runs: decision max (ms)':<58} {max(milliseconds):>12.3f}")


if __name__ == "__main__":
    main()
