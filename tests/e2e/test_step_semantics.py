"""What a step reads and what its failures do, as GitHub documents them, run through `conveyor run`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.read_models import stored_run
from tests.e2e.test_conveyor_run import conveyor, run_id_of

pytestmark = pytest.mark.e2e

STEP_ENV = """
on: push
env:
  WHERE: workflow
jobs:
  env:
    runs-on: x
    env:
      A: job
    steps:
      - run: mkdir -p stepdir
      - name: named with A=${{ env.A }}
        if: env.A == 'step'
        working-directory: ${{ env.DIR }}
        env:
          A: step
          B: ${{ env.A }}-b
          DIR: stepdir
          CONT: 'false'
        continue-on-error: ${{ env.CONT }}
        run: echo "A=$A B=$B in $(basename "$PWD")"
"""


def test_a_steps_own_env_is_what_the_rest_of_the_step_reads(repository: Callable[..., Path]) -> None:
    code, output = conveyor("run", "-C", str(repository({".github/workflows/ci.yml": STEP_ENV})))

    assert code == 0, output
    assert "[env] ⭐ named with A=step" in output  # its name and `if:` read the step's own env
    # a value of the map reads the env around the step, not the map's other values
    assert "A=step B=job-b in stepdir" in output


FAILURES = """
on: push
jobs:
  failing:
    runs-on: x
    outputs:
      kept: ${{ steps.first.outputs.value }}
    steps:
      - id: first
        run: echo "value=kept" >> "$GITHUB_OUTPUT"
      - id: noshell
        shell: no-such-shell {0}
        continue-on-error: true
        run: echo never
      - run: echo "after the missing shell, ${{ steps.noshell.outcome }}/${{ steps.noshell.conclusion }}"
      - working-directory: /no/such/folder
        run: echo never
      - if: always()
        run: echo "cleanup sees job.status=${{ job.status }}"
  flagged:
    runs-on: x
    env:
      CONT: 'false'
    steps:
      - continue-on-error: ${{ env.CONT }}
        run: exit 3
      - if: failure()
        run: echo "a string that says false is false"
  node-options:
    runs-on: x
    steps:
      - run: |
          echo "NODE_OPTIONS=--max-old-space-size=64" >> "$GITHUB_ENV"
          echo "OTHER=set" >> "$GITHUB_ENV"
      - run: echo "NODE_OPTIONS=[$NODE_OPTIONS] OTHER=[$OTHER]"
"""


def test_a_step_that_cannot_start_fails_itself_not_the_job(repository: Callable[..., Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    root = repository({".github/workflows/ci.yml": FAILURES})

    code, output = conveyor("run", "-C", str(root), "--data-dir", str(data))

    assert code == 1, output
    assert "no-such-shell: No such file or directory" in output
    assert "after the missing shell, failure/success" in output  # continue-on-error held
    assert "working-directory '/no/such/folder' does not exist" in output
    assert "cleanup sees job.status=failure" in output
    assert "a string that says false is false" in output
    assert "NODE_OPTIONS=[] OTHER=[set]" in output
    assert "NODE_OPTIONS cannot be set with $GITHUB_ENV" in output
    run = stored_run(data, run_id_of(output))
    assert run is not None
    jobs = {job["key"]: job for job in run["jobs"]}
    assert (jobs["failing"]["conclusion"], jobs["failing"]["outputs"]) == ("failure", {"kept": "kept"})
    assert jobs["flagged"]["conclusion"] == "failure"


TIMED_OUT = """
on: push
jobs:
  slow:
    runs-on: x
    timeout-minutes: 0.05
    steps:
      - run: sleep 30
      - if: cancelled()
        run: echo "job.status=${{ job.status }}"
"""


def test_job_status_is_cancelled_while_a_stopped_job_runs_its_always_steps(repository: Callable[..., Path]) -> None:
    code, output = conveyor("run", "-C", str(repository({".github/workflows/ci.yml": TIMED_OUT})))

    assert code == 1, output
    assert "job.status=cancelled" in output


FILES_AND_LIMITS = """
on: push
jobs:
  files:
    runs-on: x
    steps:
      - run: |
          echo "FROM_CONTEXT=yes" >> "${{ github.env }}"
          echo "/opt/from-context" >> "${{ github.path }}"
          test -s "${{ github.event_path }}" && echo "the event is at github.event_path"
      - run: echo "FROM_CONTEXT=$FROM_CONTEXT first-path=${PATH%%:*}"
      - id: big
        run: |
          head -c 1100000 /dev/zero | tr '\\0' a >> "$GITHUB_STEP_SUMMARY"
          for n in $(seq 15); do echo "::warning::warned $n"; done
      - env:
          ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS: 'TRUE'
        run: |
          echo "::stop-commands::pause-logging"
          echo "::warning::not a command while stopped"
          echo "::pause-logging::"
"""


def test_file_command_paths_summaries_and_annotations_as_github_keeps_them(
    repository: Callable[..., Path], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    code, output = conveyor("run", "-C", str(repository({".github/workflows/ci.yml": FILES_AND_LIMITS})),
                            "--data-dir", str(data))

    assert code == 0, output
    assert "the event is at github.event_path" in output
    assert "FROM_CONTEXT=yes first-path=/opt/from-context" in output
    assert "::warning::not a command while stopped" in output  # a stop token word is allowed when asked for
    run = stored_run(data, run_id_of(output))
    assert run is not None
    [job] = run["jobs"]
    big = job["steps"][2]
    assert big["summary"] == ""  # more than 1 MiB: refused whole, as GitHub refuses it
    levels = [annotation["level"] for annotation in big["annotations"]]
    assert levels.count("warning") == 10
    assert any("GITHUB_STEP_SUMMARY was not kept" in annotation["message"] for annotation in big["annotations"])


SCHEDULED = """
on:
  schedule:
    - cron: '30 5 * * 1,3'
    - cron: '30 5 * * 2,4'
jobs:
  which:
    runs-on: x
    steps:
      - if: github.event.schedule == '30 5 * * 1,3'
        run: echo "the first schedule fired"
      - if: github.event.schedule != '30 5 * * 1,3'
        run: echo "another schedule fired"
"""


def test_a_local_schedule_run_names_the_cron_that_fired(repository: Callable[..., Path], tmp_path: Path) -> None:
    root = repository({".github/workflows/ci.yml": SCHEDULED})
    payload = tmp_path / "event.json"
    payload.write_text('{"schedule": "30 5 * * 2,4"}')

    code, first = conveyor("run", "schedule", "-C", str(root))
    given_code, given = conveyor("run", "schedule", "-C", str(root), "-e", str(payload))

    assert (code, given_code) == (0, 0), first + given
    assert "the first schedule fired" in first
    assert "another schedule fired" not in first
    assert "another schedule fired" in given
