"""Matrix runs end to end: legs with their own names and values, and fail-fast stopping the others."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conveyor_cli.main import app
from typer.testing import CliRunner

from tests.e2e.read_models import stored_run

pytestmark = pytest.mark.e2e

WORKFLOW = """
on: push
jobs:
  test:
    name: test ${{ matrix.speed }}
    runs-on: x
    strategy:
      matrix:
        speed: [fast, slow]
    steps:
      - run: |
          if [ "${{ matrix.speed }}" = fast ]; then echo "fast leg fails"; exit 1; fi
          echo "slow leg starts"; sleep 60; echo "slow leg ends"
  after:
    needs: test
    if: always()
    runs-on: x
    steps:
      - run: echo "test was ${{ needs.test.result }}"
"""


def test_fail_fast_cancels_the_other_legs(repository: Callable[..., Path], tmp_path: Path) -> None:
    root = repository({".github/workflows/ci.yml": WORKFLOW})
    data = tmp_path / "data"
    started = time.monotonic()
    result = CliRunner().invoke(app, ["run", "-C", str(root), "--data-dir", str(data)])
    output = result.output

    assert result.exit_code == 1, output
    assert time.monotonic() - started < 45
    assert "fast leg fails" in output
    assert "slow leg ends" not in output
    assert "test was failure" in output
    run_id = re.findall(r"^run ([0-9a-f-]{36}): ", output, re.M)[0]
    run = stored_run(data, run_id)
    assert run is not None
    conclusions = {job["name"]: job["conclusion"] for job in run["jobs"]}
    assert conclusions == {"test fast": "failure", "test slow": "cancelled", "after": "success"}


STRATEGY = """
on: push
jobs:
  legs:
    runs-on: x
    strategy:
      fail-fast: false
      max-parallel: 2
      matrix:
        os: [linux, mac, windows]
    steps:
      - run: echo "leg ${{ matrix.os }} is ${{ strategy.job-index }} of ${{ strategy.job-total }}"
      - run: echo "fail-fast ${{ strategy.fail-fast }}, max-parallel ${{ strategy.max-parallel }}"
  alone:
    runs-on: x
    steps:
      - run: echo "alone is ${{ strategy.job-index }} of ${{ strategy.job-total }}"
"""


def test_each_leg_reads_its_own_strategy_context(repository: Callable[..., Path]) -> None:
    root = repository({".github/workflows/ci.yml": STRATEGY})
    result = CliRunner().invoke(app, ["run", "-C", str(root)])

    assert result.exit_code == 0, result.output
    assert "leg linux is 0 of 3" in result.output
    assert "leg mac is 1 of 3" in result.output
    assert "leg windows is 2 of 3" in result.output
    assert "fail-fast false, max-parallel 2" in result.output
    assert "alone is 0 of 1" in result.output
