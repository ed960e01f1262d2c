"""`conveyor run` of a workflow calling a reusable workflow of another repository
(`uses: octo/shared/.github/workflows/build.yml@v1`), fetched from `CONVEYOR_ACTIONS_BASE_URL`."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_conveyor_run import conveyor

pytestmark = pytest.mark.e2e

CALLER = """
on: push
jobs:
  call:
    uses: octo/shared/.github/workflows/build.yml@v1
    with:
      target: release
  report:
    needs: call
    runs-on: ubuntu-latest
    steps:
      - run: echo "artifact=${{ needs.call.outputs.artifact }}"
"""

BUILD = """
on:
  workflow_call:
    inputs:
      target: {type: string, required: true}
    outputs:
      artifact:
        value: ${{ jobs.package.outputs.name }}
jobs:
  package:
    runs-on: ubuntu-latest
    outputs:
      name: ${{ steps.p.outputs.name }}
    steps:
      - id: p
        run: |
          echo "packaging ${{ inputs.target }}"
          echo "name=app-${{ inputs.target }}.tar" >> "$GITHUB_OUTPUT"
"""


def test_a_remote_reusable_workflow_runs_with_its_input_and_its_output_reaches_the_dependant(
    repository: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "remote" / "octo" / "shared"
    (shared / ".github" / "workflows").mkdir(parents=True)
    (shared / ".github" / "workflows" / "build.yml").write_text(BUILD)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "v1"], ["tag", "v1"]):
        subprocess.run(["git", "-C", str(shared), "-c", "user.name=t", "-c", "user.email=t@e", *args], check=True)
    monkeypatch.setenv("CONVEYOR_ACTIONS_BASE_URL", str(tmp_path / "remote"))
    root = repository({".github/workflows/ci.yml": CALLER})

    code, output = conveyor("run", "-C", str(root), "--data-dir", str(tmp_path / "data"))

    assert code == 0, output
    assert "[call / package]   | packaging release" in output
    assert "[report]   | artifact=app-release.tar" in output
    cached = tmp_path / "data" / "workflows" / "octo" / "shared" / "v1"
    assert (cached / ".github" / "workflows" / "build.yml").is_file()
