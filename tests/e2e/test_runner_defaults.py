"""What a step finds on a Conveyor runner, as on GitHub's: its shell, its variables, names and outputs."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conveyor_cli.main import app
from typer.testing import CliRunner

from tests.e2e.read_models import stored_run

pytestmark = pytest.mark.e2e

WORKFLOW = r"""
name: Release train
on: push
env:
  GITHUB_REF: refs/heads/overwritten
  CI: overwritten
concurrency:
  group: ${{ github.workflow }}-${{ github.ref }}
jobs:
  defaults:
    runs-on: ubuntu-latest
    outputs:
      plain: ${{ steps.failing.outputs.written }}
      secret: ${{ secrets.TOKEN }}
    steps:
      - name: "A pipeline whose first command fails passes without a shell"
        run: false | true
      - id: piped
        name: "and fails with bash named, which adds pipefail"
        continue-on-error: true
        shell: bash
        run: false | true
      - id: failing
        name: A failed step keeps what it wrote to GITHUB_OUTPUT
        continue-on-error: true
        run: |
          echo "written=before the failure" >> "$GITHUB_OUTPUT"
          exit 3
      - name: A directory added twice to GITHUB_PATH moves to the front
        run: printf '/opt/a\n/opt/b\n/opt/a\n' >> "$GITHUB_PATH"
      - name: Deploy with ${{ secrets.TOKEN }}
        env:
          GITHUB_SHA: overwritten
          GITHUB_TOKEN: ${{ secrets.TOKEN }}
        run: |
          echo "workflow=[${{ github.workflow }}] GITHUB_WORKFLOW=[$GITHUB_WORKFLOW]"
          echo "ref=[$GITHUB_REF] sha-overwritten=[$([ "$GITHUB_SHA" = overwritten ] && echo yes || echo no)] ci=[$CI]"
          echo "token-set=[$([ -n "$GITHUB_TOKEN" ] && echo yes || echo no)]"
          echo "action=[$GITHUB_ACTION ${{ github.action }}]"
          echo "server=[$GITHUB_SERVER_URL] api=[$GITHUB_API_URL] retention=[$GITHUB_RETENTION_DAYS]"
          echo "repository=[${{ github.repository }}] owner=[$GITHUB_REPOSITORY_OWNER]"
          echo "workflow-ref=[$GITHUB_WORKFLOW_REF] protected=[$GITHUB_REF_PROTECTED] env=[$RUNNER_ENVIRONMENT]"
          echo "tool-cache-set=[$([ -n "$RUNNER_TOOL_CACHE" ] && echo yes || echo no)]"
          echo "written=[${{ steps.failing.outputs.written }}] piped=[${{ steps.piped.outcome }}]"
          echo "path=[$(echo "$PATH" | cut -d: -f1-2)] count=[$(echo "$PATH" | tr : '\n' | grep -cx /opt/a)]"
  dependant:
    needs: defaults
    runs-on: ubuntu-latest
    steps:
      - run: echo "plain=[${{ needs.defaults.outputs.plain }}] secret=[${{ needs.defaults.outputs.secret }}]"
"""


def test_a_steps_shell_variables_name_and_outputs_are_githubs(
    repository: Callable[..., Path], tmp_path: Path
) -> None:
    root = repository({".github/workflows/release.yml": WORKFLOW})
    remote = ["git", "-C", str(root), "remote", "add", "origin", "git@github.com:octo-org/release-train.git"]
    subprocess.run(remote, check=True)
    data = tmp_path / "data"
    result = CliRunner().invoke(app, ["run", "-C", str(root), "--data-dir", str(data), "-s", "TOKEN=t0k3n-value"])
    output = result.output

    assert result.exit_code == 0, output
    assert "workflow=[Release train] GITHUB_WORKFLOW=[Release train]" in output
    assert "ref=[refs/heads/main] sha-overwritten=[no] ci=[overwritten]" in output
    assert "token-set=[yes]" in output
    assert "action=[__run_3 __run_3]" in output
    assert "server=[https://github.com] api=[https://api.github.com] retention=[90]" in output
    # github.repository is owner/name from the origin remote, as act reads it
    assert "repository=[octo-org/release-train] owner=[octo-org]" in output
    workflow_ref = "octo-org/release-train/.github/workflows/release.yml@refs/heads/main"
    assert f"workflow-ref=[{workflow_ref}] protected=[false]" in output
    assert "env=[self-hosted]" in output
    assert "tool-cache-set=[yes]" in output
    assert "written=[before the failure] piped=[failure]" in output
    assert "path=[/opt/a:/opt/b] count=[1]" in output
    assert "t0k3n-value" not in output
    assert "Skip output 'secret' since it may contain secret." in output
    assert "plain=[before the failure] secret=[]" in output

    run_id = re.findall(r"^run ([0-9a-f-]{36}): ", output, re.M)[0]
    run = stored_run(data, run_id)
    assert run is not None
    job, dependant = run["jobs"]
    assert job["outputs"] == {"plain": "before the failure"}
    assert dependant["conclusion"] == "success"
    names = [step["name"] for step in job["steps"]]
    assert "Deploy with ***" in names
    first, piped, failing, _, _ = job["steps"]
    assert (first["outcome"], piped["outcome"], failing["outcome"]) == ("success", "failure", "failure")
    assert failing["outputs"] == {"written": "before the failure"}
