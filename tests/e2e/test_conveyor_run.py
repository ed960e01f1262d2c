"""`conveyor run` end to end: every service in one process, real bash steps, the example repositories."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conveyor_cli.main import app
from typer.testing import CliRunner

from tests.e2e.read_models import stored_run

pytestmark = pytest.mark.e2e


def conveyor(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def run_id_of(output: str) -> str:
    match = re.search(r"^run ([0-9a-f-]{36}): ", output, re.M)
    assert match, output
    return match.group(1)


def test_a_successful_run_passes_outputs_between_steps_and_jobs(example: Callable[[str], Path]) -> None:
    code, output = conveyor("run", "-C", str(example("hello")))

    assert code == 0, output
    assert "[build]   | Hello, world from the job level" in output
    assert "[build]   | scope is step" in output
    assert "[build]   | packaged 1.2.3" in output
    assert "[test]   | testing app-1.2.3.tar" in output
    assert re.search(r"^run [0-9a-f-]{36}: success$", output, re.M)


def test_a_failing_step_fails_the_run_and_skips_dependants(example: Callable[[str], Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, output = conveyor("run", "-C", str(example("failing")), "--data-dir", str(data))

    assert code == 1, output
    assert "something went wrong" in output
    assert "##[error]Process completed with exit code 3." in output
    assert "unreachable" not in output
    assert "the build failed" in output  # if: failure() step
    assert "cleaning up after failure" in output  # if: always() job
    assert "notifying about the failure" in output  # if: failure() job
    assert "deploying" not in output

    run = stored_run(data, run_id_of(output))
    assert run is not None
    assert run["conclusion"] == "failure"
    jobs = {job["key"]: job for job in run["jobs"]}
    assert {key: job["conclusion"] for key, job in jobs.items()} == {
        "compile": "failure",
        "deploy": "skipped",
        "cleanup": "success",
        "notify": "success",
    }
    steps = [(step["name"], step["outcome"]) for step in jobs["compile"]["steps"]]
    assert steps == [
        ('Run echo "compiling"', "success"),
        ("Break", "failure"),
        ("Never runs", "skipped"),
        ("Report the failure", "success"),
    ]


def test_env_levels_and_conditions(repository: Callable[..., Path]) -> None:
    workflow = """
on: push
env:
  LEVEL: workflow
  ONLY_WORKFLOW: w
jobs:
  first:
    runs-on: ubuntu-latest
    env:
      LEVEL: job
    outputs:
      answer: ${{ steps.ask.outputs.answer }}
      story: ${{ steps.ask.outputs.story }}
    steps:
      - id: ask
        run: |
          echo "answer=42" >> "$GITHUB_OUTPUT"
          { echo "story<<EOF"; echo "line one"; echo "line two"; echo "EOF"; } >> "$GITHUB_OUTPUT"
          echo "FROM_ENV_FILE=carried" >> "$GITHUB_ENV"
      - name: Levels
        env:
          LEVEL: step
        run: echo "level=$LEVEL only=$ONLY_WORKFLOW carried=$FROM_ENV_FILE answer=${{ steps.ask.outputs.answer }}"
      - name: Skipped on success
        if: failure()
        run: echo "must not print"
      - name: Condition on an output
        if: steps.ask.outputs.answer == '42'
        run: echo "the answer is right"
  second:
    needs: first
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "got ${{ needs.first.outputs.answer }} and ${{ needs.first.result }}"
          test "$(printf '%s' "${{ needs.first.outputs.story }}" | wc -l)" = 1
"""
    root = repository({".github/workflows/ci.yml": workflow})
    code, output = conveyor("run", "-C", str(root))

    assert code == 0, output
    assert "level=step only=w carried=carried answer=42" in output
    assert "must not print" not in output
    assert "the answer is right" in output
    assert "got 42 and success" in output


def test_only_workflows_the_event_triggers_run(repository: Callable[..., Path]) -> None:
    job = "jobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo {}\n"
    root = repository(
        {
            ".github/workflows/push.yml": "on: push\n" + job.format("on-push"),
            ".github/workflows/pr.yml": "on: pull_request\n" + job.format("on-pr"),
        }
    )
    code, output = conveyor("run", "push", "-C", str(root))

    assert code == 0, output
    assert "on-push" in output
    assert "on-pr" not in output


def test_a_service_that_cannot_handle_the_run_ends_it_with_the_reason(
    example: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead letter of the run's means nobody will take it further: say so rather than wait forever."""
    from conveyor_planner.handlers import Planner

    async def broken(self: Planner, envelope: object) -> list[object]:
        raise RuntimeError("the planner's disk is gone")

    monkeypatch.setattr(Planner, "on_run_requested", broken)
    code, output = conveyor("run", "-C", str(example("hello")))

    assert code == 1, output
    assert "the planner could not handle RunRequested" in output
    assert "RuntimeError: the planner's disk is gone" in output
