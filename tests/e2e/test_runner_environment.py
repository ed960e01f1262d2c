"""What a step's output does on a Conveyor runner, as on GitHub's: workflow commands, masks, odd bytes."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conveyor_cli.main import app
from typer.testing import CliRunner

from tests.e2e.read_models import stored_log, stored_run

pytestmark = pytest.mark.e2e

WORKFLOW = r"""
on: push
jobs:
  commands:
    runs-on: ubuntu-latest
    outputs:
      legacy: ${{ steps.old.outputs.legacy }}
    steps:
      - name: Masks and groups
        run: |
          echo "::add-mask::s3cr3t-value"
          echo "the value is s3cr3t-value"
          echo "::group::Details"
          echo "inside the group"
          echo "::endgroup::"
          echo "::warning file=app.py,line=3,col=5,title=Careful::something odd"
          echo "# Summary" >> "$GITHUB_STEP_SUMMARY"
          echo "all is well with s3cr3t-value" >> "$GITHUB_STEP_SUMMARY"
      - id: old
        run: echo "::set-output name=legacy::still-works"
      - name: Odd bytes
        run: |
          printf 'nul:\0:end\n'
          printf 'bad:\xff\xfe:utf8\n'
          printf 'no newline at the end'
      - name: Refused
        continue-on-error: true
        run: echo "::set-env name=EVIL::1"
      - run: echo "EVIL is '${EVIL:-}' and legacy is '${{ steps.old.outputs.legacy }}'"
"""


def test_workflow_commands_masks_and_odd_output(repository: Callable[..., Path], tmp_path: Path) -> None:
    root = repository({".github/workflows/ci.yml": WORKFLOW})
    data = tmp_path / "data"
    result = CliRunner().invoke(app, ["run", "-C", str(root), "--data-dir", str(data)])
    output = result.output

    assert result.exit_code == 0, output
    assert "s3cr3t-value" not in output
    assert "the value is ***" in output
    assert "##[group]Details" in output
    assert "::group::" not in output
    assert "nul:\u2400:end" in output
    assert "bad:\ufffd\ufffd:utf8" in output
    assert "no newline at the end" in output
    assert "EVIL is '' and legacy is 'still-works'" in output
    assert output.count("The `set-env` command is disabled") == 1  # shown where it happened, not again at the end

    run_id = re.findall(r"^run ([0-9a-f-]{36}): ", output, re.M)[0]
    run = stored_run(data, run_id)
    assert run is not None
    [job] = run["jobs"]
    assert job["outputs"] == {"legacy": "still-works"}
    first, _, _, refused, _ = job["steps"]
    assert first["annotations"] == [
        {"level": "warning", "message": "something odd", "file": "app.py", "line": 3, "column": 5, "title": "Careful"}
    ]
    assert first["summary"] == "# Summary\nall is well with ***\n"
    assert (refused["outcome"], refused["conclusion"]) == ("failure", "success")
    assert any(a["level"] == "error" and "set-env" in a["message"] for a in refused["annotations"])


def test_a_job_log_is_capped_with_one_marker(
    repository: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_JOB_LOG_LIMIT", "4096")
    chatty = "on: push\njobs:\n  chatty:\n    runs-on: x\n    steps:\n      - run: seq 1 5000\n"
    root = repository({".github/workflows/ci.yml": chatty})
    data = tmp_path / "data"
    result = CliRunner().invoke(app, ["run", "-C", str(root), "--data-dir", str(data)])

    assert result.exit_code == 0, result.output
    run_id = re.findall(r"^run ([0-9a-f-]{36}): ", result.output, re.M)[0]
    lines = stored_log(data, run_id, "ci.chatty")
    assert sum(len(text) + 1 for text in lines[:-2]) <= 4096
    assert lines[-2].startswith("##[warning]The job's log reached its limit of 4096 bytes")
    assert lines[-1].startswith("##[warning]")
    assert "lines (" in lines[-1]
    assert "5000" not in lines
