"""`python -m benchmarks [NAME...]`: run every benchmark (or the named ones) one after another."""

from __future__ import annotations

import importlib
import sys

ALL = [
    "bench_event_log",
    "bench_dispatch",
    "bench_runner",
    "bench_expressions",
    "bench_workflow_load",
    "bench_scheduler",
    "bench_webhooks",
    "bench_projections",
    "bench_consumer",
    "bench_distributed",
    "bench_results",
]


def main() -> None:
    for name in sys.argv[1:] or ALL:
        print(f"\n== {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()


if __name__ == "__main__":
    main()
