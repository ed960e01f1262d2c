"""The model's contract: GitHub-like diagnostics and JSON round-trips of loaded workflows."""

import pickle

import pytest
from conveyor_workflow._loader import load_workflow
from conveyor_workflow._model import Diagnostic, Job, Step, Workflow, WorkflowError
from pydantic import ValidationError

FULL = """\
name: CI
run-name: Build ${{ github.ref }}
on:
  push: {branches: [main]}
  workflow_dispatch:
    inputs:
      level: {type: choice, options: [a, b], default: a}
permissions: read-all
env: {A: 1, B: true, C: 1.5}
defaults: {run: {shell: bash}}
concurrency: {group: ci, cancel-in-progress: true}
jobs:
  build:
    name: Build ${{ matrix.os }}
    runs-on: ${{ matrix.os }}
    timeout-minutes: 30
    continue-on-error: ${{ matrix.experimental }}
    strategy:
      matrix: {os: [ubuntu-latest, macos-latest], experimental: [false]}
    outputs: {v: "${{ steps.s.outputs.v }}"}
    steps:
      - id: s
        uses: actions/checkout@v4
        with: {fetch-depth: 0}
      - run: make
        timeout-minutes: 5
        continue-on-error: true
        working-directory: src
  call:
    needs: [build]
    uses: octo/repo/.github/workflows/deploy.yml@v1
    with: {env: prod}
    secrets: inherit
"""


def test_diagnostic_reads_like_github() -> None:
    diagnostic = Diagnostic(path=".github/workflows/ci.yml", line=7, column=9, message="Unexpected value 'foo'")
    assert str(diagnostic) == ".github/workflows/ci.yml (Line: 7, Col: 9): Unexpected value 'foo'"


def test_workflow_error_joins_diagnostics_by_newline_and_pickles() -> None:
    first = Diagnostic(path="a.yml", line=1, column=1, message="one")
    second = Diagnostic(path="a.yml", line=2, column=3, message="two")
    error = WorkflowError([first, second])
    assert str(error) == "a.yml (Line: 1, Col: 1): one\na.yml (Line: 2, Col: 3): two"
    assert pickle.loads(pickle.dumps(error)).diagnostics == [first, second]


def test_models_are_frozen() -> None:
    step = Step(run="echo")
    with pytest.raises(ValidationError):
        step.run = "other"  # type: ignore[misc]


def test_loaded_workflow_round_trips_through_json() -> None:
    workflow = load_workflow(FULL, ".github/workflows/ci.yml")
    dumped = workflow.model_dump(mode="json")
    assert Workflow.model_validate(dumped) == workflow
    for job in workflow.jobs.values():
        assert Job.model_validate(job.model_dump(mode="json")) == job


def test_round_trip_keeps_expression_strings_and_booleans_apart() -> None:
    workflow = load_workflow(FULL, "ci.yml")
    build = Workflow.model_validate(workflow.model_dump(mode="json")).jobs["build"]
    assert build.continue_on_error == "${{ matrix.experimental }}"
    assert build.steps[1].continue_on_error is True
    assert build.timeout_minutes == 30
    assert workflow.jobs["call"].secrets == "inherit"
