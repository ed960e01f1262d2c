"""The planner's pure decisions: which workflows a request triggers and the jobs they plan."""

from __future__ import annotations

from conveyor_events import JobPlanned, RunPlanned, RunRejected, RunRequested
from conveyor_planner.domain import job_id_for, plan_run

CI = """
name: CI
run-name: CI of ${{ github.ref_name }}
on:
  push:
    branches: [main]
jobs:
  build:
    runs-on: ubuntu-latest
    steps: [{run: make}]
  test:
    needs: build
    if: github.ref == 'refs/heads/main'
    strategy:
      matrix:
        python: ["3.11", "3.12"]
    runs-on: [self-hosted, "${{ matrix.python }}"]
    steps: [{run: make test}]
  report:
    needs: [test]
    runs-on: ubuntu-latest
    steps: [{run: echo done}]
"""


def request(ref: str = "refs/heads/main", event: str = "push", **more: object) -> RunRequested:
    return RunRequested(
        run_id="run-1", repository="/repo", ref=ref, sha="a" * 40, event_name=event, payload={"ref": ref}, **more
    )


def test_a_triggered_workflow_plans_its_jobs_then_itself() -> None:
    events = plan_run(request(), {".github/workflows/ci.yml": CI})

    *jobs, planned = events
    assert isinstance(planned, RunPlanned)
    assert (planned.workflow, planned.workflow_name, planned.index, planned.count) == (
        ".github/workflows/ci.yml", "CI", 1, 1
    )
    assert planned.run_name == "CI of ${{ github.ref_name }}"  # evaluated by the scheduler, with the run's number
    assert all(isinstance(job, JobPlanned) for job in jobs)
    by_id = {job.job_id: job for job in jobs if isinstance(job, JobPlanned)}
    assert list(by_id) == ["ci.build", "ci.test.1", "ci.test.2", "ci.report"]
    assert planned.jobs == list(by_id)
    assert by_id["ci.test.1"].needs == ["ci.build"]
    assert by_id["ci.report"].needs == ["ci.test.1", "ci.test.2"]
    assert by_id["ci.test.2"].matrix == {"python": "3.12"}
    assert by_id["ci.test.2"].name == "test (3.12)"
    assert by_id["ci.test.2"].runs_on == ["self-hosted", "3.12"]
    assert by_id["ci.test.1"].condition == "github.ref == 'refs/heads/main'"


def test_a_workflow_the_event_does_not_trigger_is_not_planned() -> None:
    other = "on: pull_request\njobs:\n  a:\n    runs-on: x\n    steps: [{run: 'true'}]\n"
    events = plan_run(request(), {".github/workflows/ci.yml": CI, ".github/workflows/pr.yml": other})

    assert [e.workflow for e in events if isinstance(e, RunPlanned)] == [".github/workflows/ci.yml"]


def test_nothing_triggered_rejects_the_run() -> None:
    [rejected] = plan_run(request(ref="refs/heads/feature"), {".github/workflows/ci.yml": CI})

    assert isinstance(rejected, RunRejected)
    assert rejected.count == 0
    assert rejected.reason == "no workflow is triggered by 'push'"


def test_no_workflow_files_rejects_the_run() -> None:
    [rejected] = plan_run(request(), {})

    assert isinstance(rejected, RunRejected)
    assert rejected.reason == "no workflow files in .github/workflows"


def test_an_invalid_workflow_is_rejected_with_every_problem_and_the_others_still_run() -> None:
    broken = "on: push\njobs:\n  a:\n    runs-on: x\n    stepz: []\n  b:\n    needs: nope\n    runs-on: x\n"
    events = plan_run(request(), {".github/workflows/ci.yml": CI, ".github/workflows/broken.yml": broken})

    rejected = [e for e in events if isinstance(e, RunRejected)]
    planned = [e for e in events if isinstance(e, RunPlanned)]
    assert [(e.workflow, e.index, e.count) for e in rejected] == [(".github/workflows/broken.yml", 1, 2)]
    assert [(e.workflow, e.index, e.count) for e in planned] == [(".github/workflows/ci.yml", 2, 2)]
    problems = rejected[0].problems
    assert len(problems) >= 2
    assert all(problem.path == ".github/workflows/broken.yml" and problem.line > 0 for problem in problems)


def test_a_request_for_named_workflows_plans_only_those() -> None:
    other = CI.replace("name: CI", "name: Other")
    files = {".github/workflows/ci.yml": CI, ".github/workflows/other.yml": other}

    events = plan_run(request(workflows=[".github/workflows/other.yml"]), files)

    assert [e.workflow_name for e in events if isinstance(e, RunPlanned)] == ["Other"]


def test_job_ids() -> None:
    assert job_id_for(".github/workflows/ci.yml", "build") == "ci.build"
    assert job_id_for(".github/workflows/release.yaml", "publish", 3) == "release.publish.3"
