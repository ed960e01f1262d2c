"""`conveyor run` with act's flags: workflows, jobs, payload, secrets, vars, inputs and env files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conveyor_cli.main import app
from typer.testing import CliRunner

pytestmark = pytest.mark.e2e

FLAGS = """
on:
  push:
  workflow_dispatch:
    inputs:
      level: {type: number, required: true}
      verbose: {type: boolean, default: false}
jobs:
  first:
    runs-on: ubuntu-latest
    outputs:
      word: ${{ steps.w.outputs.word }}
    steps:
      - id: w
        run: echo "word=from-first" >> "$GITHUB_OUTPUT"
  second:
    needs: first
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "need=${{ needs.first.outputs.word }}"
          echo "var=${{ vars.COLOR }} input=${{ inputs.level }} env=$FROM_ENV_FILE"
          echo "typed=${{ inputs.level == 3 && inputs.verbose == false }} given=${{ github.event.inputs.level }}"
          echo "event=${{ github.event_name }} ref=${{ github.ref }} head=${{ github.event.head_commit.message }}"
          echo "secret=${{ secrets.TOKEN }}"
          echo "secret in env: $TOKEN_ENV"
        env:
          TOKEN_ENV: ${{ secrets.TOKEN }}
  unrelated:
    runs-on: ubuntu-latest
    steps:
      - run: echo "unrelated ran"
"""
OTHER = "on: push\njobs:\n  other:\n    runs-on: x\n    steps:\n      - run: echo other-workflow\n"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def project(repository: Callable[..., Path]) -> Path:
    return repository({".github/workflows/flags.yml": FLAGS, ".github/workflows/other.yml": OTHER})


def test_a_job_and_the_jobs_it_needs_with_vars_inputs_env_and_payload(project: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "run.env"
    env_file.write_text("FROM_ENV_FILE=loaded\n")
    payload = tmp_path / "event.json"
    payload.write_text(json.dumps({"ref": "refs/heads/release", "head_commit": {"message": "ship it"}}))

    code, output = invoke(
        "run", "workflow_dispatch", "-C", str(project), "-j", "second", "--var", "COLOR=blue",
        "--input", "level=3", "--env-file", str(env_file), "-e", str(payload),
    )

    assert code == 0, output
    assert "need=from-first" in output
    assert "var=blue input=3 env=loaded" in output
    assert "typed=true given=3" in output  # inputs typed and defaulted as the workflow declares them
    assert "event=workflow_dispatch ref=refs/heads/release head=ship it" in output
    assert "unrelated ran" not in output
    assert "other-workflow" not in output


def test_secrets_reach_steps_and_never_the_log(project: Path, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("TOKEN=hunter2-very-secret\n")

    code, output = invoke("run", "-C", str(project), "-j", "second", "--secret-file", str(secrets))

    assert code == 0, output
    assert "hunter2-very-secret" not in output
    assert "secret=***" in output
    assert "secret in env: ***" in output


PULL_REQUEST = """
on: pull_request
jobs:
  show:
    runs-on: ubuntu-latest
    steps:
      - run: echo "ref=$GITHUB_REF name=${{ github.ref_name }} head=${{ github.head_ref }} by=${{ github.actor }}"
"""


def test_a_pull_request_payload_sets_the_ref_and_the_actor(repository: Callable[..., Path], tmp_path: Path) -> None:
    root = repository({".github/workflows/pr.yml": PULL_REQUEST})
    payload = tmp_path / "event.json"
    sides = {"base": {"ref": "main", "sha": "0" * 40}, "head": {"ref": "login-form", "sha": "1" * 40}}
    body = {"action": "opened", "number": 12, "pull_request": sides, "sender": {"login": "mona"}}
    payload.write_text(json.dumps(body))

    code, output = invoke("run", "pull_request", "-C", str(root), "-e", str(payload))

    assert code == 0, output
    assert "ref=refs/pull/12/merge name=12/merge head=login-form by=mona" in output


def test_only_the_workflow_files_given(project: Path) -> None:
    code, output = invoke("run", "-C", str(project), "-W", str(project / ".github/workflows/other.yml"))

    assert code == 0, output
    assert "other-workflow" in output
    assert "unrelated ran" not in output


def test_a_dispatch_without_a_required_input_is_refused(project: Path) -> None:
    code, output = invoke("run", "workflow_dispatch", "-C", str(project), "-j", "second")

    assert code != 0
    assert "Required input 'level' not provided" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--var", "novalue"], "--var 'novalue': expected NAME=VALUE"),
        (["-s", "CONVEYOR_TEST_UNSET_SECRET"], "no CONVEYOR_TEST_UNSET_SECRET in the environment"),
        (["--secret-file", "/nonexistent.env"], "/nonexistent.env: no such file"),
        (["-W", "missing.yml"], "missing.yml: no such workflow file or directory"),
        (["-e", "/nonexistent.json"], "/nonexistent.json: not a readable JSON event payload"),
    ],
)
def test_bad_flags_are_one_clear_line(project: Path, args: list[str], message: str) -> None:
    code, output = invoke("run", "-C", str(project), *args)

    assert code == 2
    assert message in output
