"""Evaluations per second of simple expressions, against Python's own `eval` of compiled equivalents.

uv run python benchmarks/bench_expressions.py
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from conveyor_workflow import evaluate

CONTEXTS: dict[str, Any] = {
    "github": {"ref": "refs/heads/main", "event_name": "push", "event": {"pull_request": {"draft": False}}},
    "matrix": {"os": "ubuntu-latest", "node": 18},
    "env": {"CI": "true"},
}

# (GitHub expression, a Python expression computing the same over plain dicts)
CASES = [
    (
        "github.ref == 'refs/heads/main' && matrix.os != 'windows'",
        "github['ref'] == 'refs/heads/main' and matrix['os'] != 'windows'",
    ),
    ("github.event_name == 'push'", "github['event_name'] == 'push'"),
    ("matrix.node >= 16", "matrix['node'] >= 16"),
    ("!github.event.pull_request.draft", "not github['event']['pull_request']['draft']"),
    ("startsWith(github.ref, 'refs/heads/')", "github['ref'].startswith('refs/heads/')"),
    ("env.CI || 'false'", "env['CI'] or 'false'"),
]


def rate(call: Callable[[], Any], seconds: float = 0.4) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(1000):
            call()
        count += 1000
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    print(f"{'expression':60} {'conveyor/s':>12} {'python eval/s':>14} {'ratio':>7}")
    totals = [0.0, 0.0]
    for expression, python in CASES:
        code = compile(python, "<bench>", "eval")
        ours = rate(functools.partial(evaluate, expression, CONTEXTS))
        theirs = rate(functools.partial(eval, code, {}, CONTEXTS))
        totals[0] += ours
        totals[1] += theirs
        print(f"{expression:60} {ours:12,.0f} {theirs:14,.0f} {theirs / ours:6.1f}x")
    mean_ours, mean_theirs = totals[0] / len(CASES), totals[1] / len(CASES)
    print(f"{'mean':60} {mean_ours:12,.0f} {mean_theirs:14,.0f} {mean_theirs / mean_ours:6.1f}x")
    print(f"target >= 100,000 evaluations/s: {'met' if mean_ours >= 100_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
