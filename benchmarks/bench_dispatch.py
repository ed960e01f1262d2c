"""Time from dispatch (the `RunRequested` append) to the first line of the first step stored as `StepLogged`.

Every service runs in this process on a SQLite log, as `conveyor up` runs them; each run is one job of one
`run: echo` step, dispatched after the previous run ended. Baseline, measured in the same run: starting
`bash -c true` and waiting for it, which every step pays at least once.

uv run python -m benchmarks bench_dispatch
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from conveyor_events import Envelope, RunCompleted, StepLogged
from conveyor_ingest import request_run
from conveyor_runtime import RuntimeSettings

RUNS = 200
WORKFLOW = """on: push
jobs:
  one:
    runs-on: ubuntu-latest
    steps:
      - run: echo first-output
"""


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def bash_baseline(count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec("bash", "-c", "true")
        await process.wait()
        samples.append(time.perf_counter() - started)
    return samples


async def dispatch_latencies(root: Path, data: Path, count: int) -> list[float]:
    from conveyor_cli.system import EmbeddedSystem

    system = EmbeddedSystem(RuntimeSettings(data_dir=data))
    samples = []
    async with system.running():
        watched = [StepLogged.event_type(), RunCompleted.event_type()]
        for _ in range(count):
            request = request_run(repository=str(root), ref="refs/heads/main", sha="0" * 40, workdir=str(root))
            position = await system.log.head()
            started = time.perf_counter()
            await system.log.append([Envelope.wrap(request, stream=request.run_id)])
            first = None
            async for envelope in system.log.subscribe(position, types=watched):
                if envelope.stream != request.run_id:
                    continue
                if first is None and envelope.type == "StepLogged":
                    first = time.perf_counter() - started
                if envelope.type == "RunCompleted":
                    break
            assert first is not None
            samples.append(first)
    return samples


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "repo"
        (root / ".github" / "workflows").mkdir(parents=True)
        (root / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        baseline = asyncio.run(bash_baseline(RUNS))
        samples = asyncio.run(dispatch_latencies(root, Path(scratch) / "data", RUNS))
    base_p50 = statistics.median(baseline) * 1000
    p50, p99 = statistics.median(samples) * 1000, percentile(samples, 0.99) * 1000
    print(f"runs: {RUNS}")
    print(f"baseline: bash -c true             p50 {base_p50:7.2f} ms  p99 {percentile(baseline, 0.99) * 1000:7.2f} ms")
    print(f"dispatch -> first output stored     p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
    print(f"ratio to baseline (p50)             {p50 / base_p50:7.2f}x")


if __name__ == "__main__":
    main()
