"""The runner's own costs: per-step overhead, log line to stored `StepLogged`, and container job start.

Baseline, measured in the same run: bare `bash --noprofile --norc -eo pipefail -c true`, started and waited
for. Every service runs in this process as `conveyor up` runs them.

uv run python -m benchmarks bench_runner
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from conveyor_events import Envelope, JobStarted, RunCompleted, StepCompleted, StepLogged, StepStarted
from conveyor_ingest import request_run
from conveyor_runtime import RuntimeSettings

STEPS = 50
RUNS = 4
LOG_LINES = 300
CONTAINER_JOBS = 8
IMAGE = "conveyor/debian:bookworm"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def workflow(steps: str, container: str = "") -> str:
    return f"on: push\njobs:\n  bench:\n    runs-on: ubuntu-latest\n{container}    steps:\n{steps}"


async def baseline(count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "true")
        await process.wait()
        samples.append(time.perf_counter() - started)
    return samples


async def run_and_collect(root: Path, data: Path, runs: int, watch: list[str]) -> list[tuple[float, Envelope]]:
    """Dispatch `runs` runs one after another; every watched envelope of them with the time it was seen."""
    from conveyor_cli.system import EmbeddedSystem

    system = EmbeddedSystem(RuntimeSettings(data_dir=data))
    seen: list[tuple[float, Envelope]] = []
    async with system.running():
        for _ in range(runs):
            request = request_run(repository=str(root), ref="refs/heads/main", sha="0" * 40, workdir=str(root))
            position = await system.log.head()
            await system.log.append([Envelope.wrap(request, stream=request.run_id)])
            async for envelope in system.log.subscribe(position, types=[*watch, RunCompleted.event_type()]):
                if envelope.stream != request.run_id:
                    continue
                seen.append((time.time(), envelope))
                if envelope.type == RunCompleted.event_type():
                    break
    return seen


def repository(folder: Path, text: str) -> Path:
    (folder / ".github" / "workflows").mkdir(parents=True)
    (folder / ".github" / "workflows" / "ci.yml").write_text(text)
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    return folder


def step_overheads(seen: list[tuple[float, Envelope]]) -> list[float]:
    started: dict[tuple[str, int], float] = {}
    durations = []
    for _, envelope in seen:
        event = envelope.event
        if isinstance(event, StepStarted):
            started[(envelope.stream, event.step_index)] = envelope.occurred_at.timestamp()
        elif isinstance(event, StepCompleted) and (envelope.stream, event.step_index) in started:
            durations.append(envelope.occurred_at.timestamp() - started[(envelope.stream, event.step_index)])
    return durations


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        bare = asyncio.run(baseline(STEPS * RUNS))
        steps = "".join("      - run: 'true'\n" for _ in range(STEPS))
        seen = asyncio.run(
            run_and_collect(
                repository(folder / "steps", workflow(steps)),
                folder / "d1",
                RUNS,
                [StepStarted.event_type(), StepCompleted.event_type()],
            )
        )
        step = step_overheads(seen)
        over = [duration - statistics.median(bare) for duration in step]
        print(
            f"baseline: bare bash -c true            p50 {statistics.median(bare) * 1000:7.2f} ms  "
            f"p99 {percentile(bare, 0.99) * 1000:7.2f} ms"
        )
        print(
            f"run: true step, started -> completed   p50 {statistics.median(step) * 1000:7.2f} ms  "
            f"p99 {percentile(step, 0.99) * 1000:7.2f} ms  ({len(step)} steps)"
        )
        print(
            f"per-step overhead over the baseline    p50 {statistics.median(over) * 1000:7.2f} ms  "
            f"p99 {percentile(over, 0.99) * 1000:7.2f} ms  (target p50 <= 3 ms, p99 <= 10 ms)"
        )

        chatty = f"      - run: for i in $(seq {LOG_LINES}); do date +%s.%N; sleep 0.002; done\n"
        seen = asyncio.run(
            run_and_collect(repository(folder / "logs", workflow(chatty)), folder / "d2", 1, [StepLogged.event_type()])
        )
        delays = [
            arrived - float(line.text)
            for arrived, envelope in seen
            if isinstance(envelope.event, StepLogged)
            for line in envelope.event.lines
            if line.text.replace(".", "").isdigit()
        ]
        print(
            f"log line written -> StepLogged stored   p50 {statistics.median(delays) * 1000:7.2f} ms  "
            f"p99 {percentile(delays, 0.99) * 1000:7.2f} ms  ({len(delays)} lines; target p99 <= 50 ms)"
        )

        engine = subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True, check=False)
        if engine.returncode != 0:
            print(f"container job start: not measured ({IMAGE} is not built; run scripts/containers.sh)")
            return
        container = f"    container: {IMAGE}\n"
        seen = asyncio.run(
            run_and_collect(
                repository(folder / "box", workflow("      - run: 'true'\n", container)),
                folder / "d3",
                CONTAINER_JOBS,
                [JobStarted.event_type(), StepStarted.event_type()],
            )
        )
        starts: dict[str, float] = {}
        waits = []
        for _, envelope in seen:
            if isinstance(envelope.event, JobStarted):
                starts[envelope.stream] = envelope.occurred_at.timestamp()
            elif isinstance(envelope.event, StepStarted) and envelope.stream in starts:
                waits.append(envelope.occurred_at.timestamp() - starts.pop(envelope.stream))
        print(
            f"container job start (image present)   p50 {statistics.median(waits) * 1000:7.1f} ms  "
            f"p99 {percentile(waits, 0.99) * 1000:7.1f} ms  ({len(waits)} jobs)"
        )


if __name__ == "__main__":
    main()
