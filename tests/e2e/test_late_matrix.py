"""A matrix computed from a needed job's outputs, end to end: the legs run with their values, or the job fails."""

from __future__ import annotations

import re
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
  setup:
    runs-on: x
    outputs:
      matrix: ${{ steps.m.outputs.matrix }}
    steps:
      - id: m
        run: echo 'matrix=MATRIX' >> "$GITHUB_OUTPUT"
  build:
    needs: setup
    runs-on: x
    strategy:
      matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}
    outputs:
      seen: ${{ steps.s.outputs.seen }}
    steps:
      - id: s
        run: |
          echo "os=${{ matrix.os }} extra=${{ matrix.extra }}"
          echo "seen=${{ matrix.os }}" >> "$GITHUB_OUTPUT"
  report:
    needs: build
    if: always()
    runs-on: x
    steps:
      - run: echo "build was ${{ needs.build.result }}, last seen ${{ needs.build.outputs.seen }}"
"""


def run(repository: Callable[..., Path], tmp_path: Path, matrix: str) -> tuple[int, str, Path]:
    root = repository({".github/workflows/ci.yml": WORKFLOW.replace("MATRIX", matrix)})
    data = tmp_path / "data"
    result = CliRunner(env={"COLUMNS": "400"}).invoke(app, ["run", "-C", str(root), "--data-dir", str(data)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output, data


def jobs_of(output: str, data: Path) -> dict[str, str | None]:
    match = re.search(r"^run ([0-9a-f-]{36}): ", output, re.M)
    assert match, output
    found = stored_run(data, match.group(1))
    assert found is not None
    return {job["name"]: job["conclusion"] for job in found["jobs"]}


def test_the_legs_of_a_matrix_from_needs_run_with_their_values(
    repository: Callable[..., Path], tmp_path: Path
) -> None:
    code, output, data = run(repository, tmp_path, '{"os":["a","b"],"include":[{"os":"c","extra":"x"}]}')

    assert code == 0, output
    assert re.search(r"^\[build \(a\)\]   \| os=a extra=$", output, re.M)
    assert re.search(r"^\[build \(b\)\]   \| os=b extra=$", output, re.M)
    assert "[build (c, x)]   | os=c extra=x" in output
    assert "[report]   | build was success, last seen " in output
    assert re.search(r"^run [0-9a-f-]{36}: success$", output, re.M)
    assert jobs_of(output, data) == {  # the job as planned, before its legs were known, is gone
        "setup": "success", "build (a)": "success", "build (b)": "success", "build (c, x)": "success",
        "report": "success",
    }


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        pytest.param("{}", "Matrix must define at least one vector", id="empty"),
        pytest.param("not json", "Error parsing fromJson", id="invalid JSON"),
    ],
)
def test_a_matrix_from_needs_that_cannot_be_expanded_fails_the_run_with_the_reason(
    repository: Callable[..., Path], tmp_path: Path, matrix: str, message: str
) -> None:
    code, output, _ = run(repository, tmp_path, matrix)

    assert code == 1, output
    assert "Error when evaluating 'strategy' for job 'build' of .github/workflows/ci.yml" in output
    assert message in output
    assert "[report]   | build was failure, last seen " in output
    assert re.search(r"^run [0-9a-f-]{36}: failure$", output, re.M)


CALLER = """
on: push
jobs:
  setup:
    runs-on: x
    outputs:
      targets: ${{ steps.t.outputs.targets }}
    steps:
      - id: t
        run: echo 'targets=[{"os":"a","sizes":"[1,2]"},{"os":"b","sizes":"[3]"}]' >> "$GITHUB_OUTPUT"
  deploy:
    needs: setup
    strategy:
      matrix:
        target: ${{ fromJSON(needs.setup.outputs.targets) }}
    uses: ./.github/workflows/deploy.yml
    with:
      os: ${{ matrix.target.os }}
      sizes: ${{ matrix.target.sizes }}
  report:
    needs: deploy
    runs-on: x
    steps:
      - run: echo "deploy was ${{ needs.deploy.result }}, last at ${{ needs.deploy.outputs.where }}"
"""

DEPLOY = """
on:
  workflow_call:
    inputs:
      os: {type: string, required: true}
      sizes: {type: string, required: true}
    outputs:
      where:
        value: ${{ jobs.size.outputs.where }}
jobs:
  size:
    runs-on: x
    strategy:
      matrix:
        size: ${{ fromJSON(inputs.sizes) }}
    outputs:
      where: ${{ steps.w.outputs.where }}
    steps:
      - id: w
        run: |
          echo "deploying ${{ inputs.os }} at size ${{ matrix.size }}"
          echo "where=${{ inputs.os }}-${{ matrix.size }}" >> "$GITHUB_OUTPUT"
"""


def test_a_matrix_from_needs_over_a_reusable_workflow_runs_each_call_with_its_inputs(
    repository: Callable[..., Path], tmp_path: Path
) -> None:
    root = repository({".github/workflows/ci.yml": CALLER, ".github/workflows/deploy.yml": DEPLOY})
    data = tmp_path / "data"
    result = CliRunner(env={"COLUMNS": "400"}).invoke(app, ["run", "-C", str(root), "--data-dir", str(data)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    output = result.output

    assert result.exit_code == 0, output
    for os, size in (("a", 1), ("a", 2), ("b", 3)):
        assert f"| deploying {os} at size {size}" in output
    assert re.search(r"^\[report\]   \| deploy was success, last at [ab]-[123]$", output, re.M), output
    names = set(jobs_of(output, data))
    assert {name for name in names if name.startswith("deploy")} == {
        "deploy (a, [1,2]) / size (1)", "deploy (a, [1,2]) / size (2)", "deploy (b, [3]) / size (3)",
    }
