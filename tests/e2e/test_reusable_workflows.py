"""`conveyor run` of workflows calling reusable workflows of their repository (`uses: ./.github/workflows/x.yml`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.read_models import stored_run
from tests.e2e.test_conveyor_run import conveyor, run_id_of

pytestmark = pytest.mark.e2e

CALLER = """
name: CI
on: push
jobs:
  setup:
    runs-on: ubuntu-latest
    outputs:
      prefix: ${{ steps.p.outputs.prefix }}
    steps:
      - id: p
        run: echo "prefix=s3" >> "$GITHUB_OUTPUT"
  call:
    name: Build it
    needs: setup
    uses: ./.github/workflows/build.yml
    with:
      target: release
      level: 3
    secrets:
      token: ${{ needs.setup.outputs.prefix }}${{ secrets.DEPLOY_TOKEN }}
  report:
    needs: call
    runs-on: ubuntu-latest
    steps:
      - run: echo "artifact=${{ needs.call.outputs.artifact }} result=${{ needs.call.result }}"
"""

BUILD = """
on:
  workflow_call:
    inputs:
      target: {type: string, required: true}
      level: {type: number, default: 1}
      debug: {type: boolean, default: false}
    secrets:
      token: {required: true}
    outputs:
      artifact:
        value: ${{ jobs.package.outputs.name }}
jobs:
  compile:
    runs-on: ubuntu-latest
    outputs:
      bin: ${{ steps.c.outputs.bin }}
    steps:
      - id: c
        env:
          TOKEN: ${{ secrets.token }}
        run: |
          echo "compiling ${{ inputs.target }} at level ${{ inputs.level }} debug=${{ inputs.debug }}"
          echo "bin=app-${{ inputs.target }}" >> "$GITHUB_OUTPUT"
          if [ "$TOKEN" = "s3cret" ]; then echo "the token was passed"; fi
          echo "other=[${{ secrets.OTHER }}] job=${{ github.job }}"
  package:
    needs: compile
    runs-on: ubuntu-latest
    outputs:
      name: ${{ steps.p.outputs.name }}
    steps:
      - id: p
        run: echo "name=${{ needs.compile.outputs.bin }}.tar" >> "$GITHUB_OUTPUT"
"""

FAILING_CALLER = """
on: push
jobs:
  call:
    uses: ./.github/workflows/broken.yml
  after:
    needs: call
    runs-on: ubuntu-latest
    steps:
      - run: echo "after the call"
"""

BROKEN = """
on: workflow_call
jobs:
  breaks:
    runs-on: ubuntu-latest
    steps:
      - run: exit 4
  never:
    needs: breaks
    runs-on: ubuntu-latest
    steps:
      - run: echo "after the break"
"""


def test_a_called_workflow_gets_inputs_and_only_the_passed_secret_and_its_outputs_reach_dependants(
    repository: Callable[..., Path],
) -> None:
    root = repository({".github/workflows/ci.yml": CALLER, ".github/workflows/build.yml": BUILD})

    code, output = conveyor("run", "-C", str(root), "-s", "DEPLOY_TOKEN=cret", "-s", "OTHER=hidden")

    assert code == 0, output  # the secret passed reads the caller's needs
    assert "[Build it / compile]   | compiling release at level 3 debug=false" in output
    assert "[Build it / compile]   | the token was passed" in output
    assert "[Build it / compile]   | other=[] job=compile" in output
    assert "[report]   | artifact=app-release.tar result=success" in output
    assert "s3cret" not in output
    assert re.search(r"^run [0-9a-f-]{36}: success$", output, re.M)


def test_a_failing_called_job_fails_the_caller_and_skips_its_dependant(
    repository: Callable[..., Path], tmp_path: Path
) -> None:
    root = repository({".github/workflows/ci.yml": FAILING_CALLER, ".github/workflows/broken.yml": BROKEN})
    data = tmp_path / "data"

    code, output = conveyor("run", "-C", str(root), "--data-dir", str(data))

    assert code == 1, output
    assert "after the break" not in output
    assert "after the call" not in output
    run = stored_run(data, run_id_of(output))
    assert run is not None
    assert run["conclusion"] == "failure"
    assert {job["key"]: job["conclusion"] for job in run["jobs"]} == {
        "call/breaks": "failure",
        "call/never": "skipped",
        "after": "skipped",
    }


def test_a_call_with_a_missing_required_input_rejects_the_run(repository: Callable[..., Path]) -> None:
    caller = CALLER.replace("      target: release\n", "")
    root = repository({".github/workflows/ci.yml": caller, ".github/workflows/build.yml": BUILD})

    code, output = conveyor("run", "-C", str(root), "-s", "DEPLOY_TOKEN=s3cret")

    assert code == 1, output
    assert "job 'call': input 'target' is required by ./.github/workflows/build.yml but not given" in output
    assert "compiling" not in output


GROUPED_CALLER = """
name: Deploy
on: push
concurrency: ${{ github.workflow }}-${{ github.ref }}
jobs:
  call:
    uses: ./.github/workflows/steps.yml
"""
GROUPED_CALLED = """
on: workflow_call
concurrency: ${{ github.workflow }}-${{ github.ref }}
jobs:
  step:
    runs-on: ubuntu-latest
    steps:
      - run: echo "never runs"
"""


def test_a_called_workflow_in_its_callers_concurrency_group_is_cancelled_as_a_deadlock(
    repository: Callable[..., Path], tmp_path: Path
) -> None:
    # github.workflow is the caller's in the called workflow too, so both name one group
    root = repository({".github/workflows/ci.yml": GROUPED_CALLER, ".github/workflows/steps.yml": GROUPED_CALLED})
    data = tmp_path / "data"

    code, output = conveyor("run", "-C", str(root), "--data-dir", str(data))

    assert code == 1, output
    assert "never runs" not in output
    run = stored_run(data, run_id_of(output))
    assert run is not None
    assert run["conclusion"] == "cancelled"
    [job] = run["jobs"]
    assert (job["conclusion"], job["error"]) == (
        "cancelled", "cancelled: deadlock in concurrency group 'deploy-refs/heads/main'"
    )
