"""Conveyor's `retry:` beyond GitHub: a failed job is queued again as a new attempt."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conveyor_cli.main import app
from typer.testing import CliRunner

pytestmark = pytest.mark.e2e


def test_a_flaky_job_passes_on_its_second_attempt(repository: Callable[..., Path], tmp_path: Path) -> None:
    marker = tmp_path / "first-attempt-happened"
    workflow = f"""
on: push
jobs:
  flaky:
    runs-on: x
    retry: {{max-attempts: 2, on: any}}
    steps:
      - run: |
          if [ -e {marker} ]; then echo "second attempt passes"; exit 0; fi
          touch {marker}; echo "first attempt fails"; exit 1
  steady:
    runs-on: x
    retry: 3
    steps:
      - run: exit 1
"""
    root = repository({".github/workflows/ci.yml": workflow})
    result = CliRunner().invoke(app, ["run", "-C", str(root)])
    output = result.output

    assert "first attempt fails" in output
    assert "second attempt passes" in output
    # retry: 3 retries lost runners only, not failed steps: the steady failure is not run again
    assert output.count("Process completed with exit code 1.") == 2
    assert result.exit_code == 1
