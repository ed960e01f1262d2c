"""Benchmark load_workflow on a realistic ~500-line workflow against yaml.safe_load of the same text.

Run: uv run python benchmarks/bench_workflow_load.py [iterations]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import yaml
from conveyor_workflow import load_workflow

TARGET_P50_MS = 5.0


def realistic_workflow(jobs: int = 10) -> str:
    """A CI workflow much like real ones: triggers, matrix, containers, services, many steps."""
    lines = [
        "name: CI",
        "run-name: CI for ${{ github.ref_name }} by @${{ github.actor }}",
        "on:",
        "  push:",
        "    branches: [main, 'releases/**']",
        "    paths-ignore: ['docs/**', '**.md']",
        "  pull_request:",
        "    types: [opened, synchronize, reopened]",
        "  schedule:",
        "    - cron: '17 3 * * 1-5'",
        "  workflow_dispatch:",
        "    inputs:",
        "      debug: {type: boolean, default: false, description: Debug logging}",
        "      level: {type: choice, options: [info, debug], default: info}",
        "permissions:",
        "  contents: read",
        "  pull-requests: write",
        "concurrency:",
        "  group: ci-${{ github.workflow }}-${{ github.ref }}",
        "  cancel-in-progress: ${{ github.event_name == 'pull_request' }}",
        "env:",
        "  PYTHONUNBUFFERED: 1",
        "  REGISTRY: ghcr.io",
        "defaults:",
        "  run:",
        "    shell: bash",
        "jobs:",
    ]
    for index in range(jobs):
        lines += [
            f"  job{index}:",
            f"    name: Job {index} (${{{{ matrix.os }}}}, ${{{{ matrix.python }}}})",
            *([f"    needs: [job{index - 1}]"] if index else []),
            "    if: github.event_name != 'schedule' || github.ref == 'refs/heads/main'",
            "    runs-on: ${{ matrix.os }}",
            "    timeout-minutes: 30",
            "    strategy:",
            "      fail-fast: false",
            "      matrix:",
            "        os: [ubuntu-latest, macos-latest]",
            "        python: ['3.11', '3.12', '3.13']",
            "        include:",
            "          - {os: ubuntu-latest, python: '3.14', experimental: true}",
            "    continue-on-error: ${{ matrix.experimental == true }}",
            "    services:",
            "      postgres:",
            "        image: postgres:16",
            "        env: {POSTGRES_PASSWORD: postgres}",
            "        ports: ['5432:5432']",
            "        options: --health-cmd pg_isready --health-interval 10s",
            "    outputs:",
            "      version: ${{ steps.version.outputs.value }}",
            "    env:",
            "      DATABASE_URL: postgres://postgres:postgres@localhost:5432/test",
            "      TOKEN: ${{ secrets.API_TOKEN }}",
            "    steps:",
            "      - uses: actions/checkout@v4",
            "        with: {fetch-depth: 0}",
            "      - uses: actions/setup-python@v5",
            "        with:",
            "          python-version: ${{ matrix.python }}",
            "          cache: pip",
            "      - name: Install",
            "        run: |",
            "          python -m pip install --upgrade pip",
            "          pip install -e '.[test]'",
            "      - id: version",
            '        run: echo "value=$(python -c \'import app; print(app.__version__)\')" >> "$GITHUB_OUTPUT"',
            "      - name: Test",
            "        run: pytest -q --junitxml=report.xml",
            "        env:",
            "          COVERAGE: ${{ inputs.debug && '1' || '0' }}",
            "        timeout-minutes: 20",
            "      - if: failure() && steps.version.outcome == 'success'",
            "        uses: actions/upload-artifact@v4",
            "        with:",
            f"          name: report-{index}-${{{{ matrix.os }}}}-${{{{ matrix.python }}}}",
            "          path: report.xml",
        ]
    return "\n".join(lines) + "\n"


def timings(functions: list[Callable[[], object]], iterations: int) -> list[list[float]]:
    """Sorted milliseconds per function; the functions take turns, so a busy machine slows them alike."""
    samples: list[list[float]] = [[] for _ in functions]
    for _ in range(iterations):
        for function, own in zip(functions, samples, strict=True):
            started = time.perf_counter()
            function()
            own.append((time.perf_counter() - started) * 1000)
    return [sorted(own) for own in samples]


def percentile(samples: list[float], fraction: float) -> float:
    return samples[min(len(samples) - 1, int(len(samples) * fraction))]


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    text = realistic_workflow()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    load_workflow(text, "ci.yml")  # warm up, and fail loudly if the benchmark workflow is invalid
    ours, baseline = timings(
        [lambda: load_workflow(text, ".github/workflows/ci.yml"), lambda: yaml.load(text, Loader=loader)], iterations
    )
    p50, p99 = percentile(ours, 0.5), percentile(ours, 0.99)
    base50, base99 = percentile(baseline, 0.5), percentile(baseline, 0.99)
    print(f"workflow: {text.count(chr(10))} lines, {len(text)} bytes, {iterations} iterations")
    print(f"load_workflow      p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   mean {statistics.fmean(ours):7.3f} ms")
    print(f"yaml.safe_load ({loader.__name__}) p50 {base50:7.3f} ms   p99 {base99:7.3f} ms")
    print(f"ratio p50 {p50 / base50:5.2f}x   p99 {p99 / base99:5.2f}x")
    print(f"target p50 <= {TARGET_P50_MS} ms: {'met' if p50 <= TARGET_P50_MS else 'MISSED'}")


if __name__ == "__main__":
    main()
