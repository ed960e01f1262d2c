"""The `workflow_run` decision, pure: what each event of a run's history requests, as GitHub would."""

from __future__ import annotations

from typing import Any

import pytest
from conveyor_events import (
    Conclusion,
    JobCompleted,
    JobPlanned,
    JobSkipped,
    MatrixExpanded,
    RunCompleted,
    RunEvent,
    RunNumbered,
    RunPlanned,
    RunRequested,
    RunRerunRequested,
)
from conveyor_planner.domain import (
    MAX_CHAIN_DEPTH,
    ChainLimitReached,
    Decision,
    WorkflowRunRequest,
    chain_depth,
    wanted,
    workflow_run_triggers,
)

CI = ".github/workflows/ci.yml"
LINT = ".github/workflows/lint.yml"


def source(**more: Any) -> RunRequested:
    fields: dict[str, Any] = {"payload": {"ref": "refs/heads/feature"}, **more}
    return RunRequested(run_id="run-1", repository="/repo", ref="refs/heads/feature", sha="a" * 40, **fields)


def planned(path: str, name: str, jobs: dict[str, dict[str, Any]]) -> list[RunEvent]:
    stem = path.rsplit("/", 1)[-1].removesuffix(".yml")
    plans: list[RunEvent] = [
        JobPlanned(run_id="run-1", job_id=f"{stem}.{key}", workflow=path, job_key=key, name=key, spec=spec)
        for key, spec in jobs.items()
    ]
    ids = [f"{stem}.{key}" for key in jobs]
    return [
        *plans,
        RunPlanned(run_id="run-1", workflow=path, workflow_name=name, index=1, count=1, jobs=ids),
        # the scheduler's first decision: what the request is made on, with the run's number and title
        RunNumbered(run_id="run-1", workflow=path, repository="/repo", number=7, title=f"{name}: a title"),
    ]


def done(job_id: str, conclusion: Conclusion = Conclusion.SUCCESS) -> RunEvent:
    if conclusion == Conclusion.SKIPPED:
        return JobSkipped(run_id="run-1", job_id=job_id, reason="if: false")
    return JobCompleted(run_id="run-1", job_id=job_id, conclusion=conclusion)


def requests(decided: list[Decision]) -> list[RunRequested]:
    assert all(isinstance(decision, WorkflowRunRequest) for decision in decided), decided
    return [decision.request for decision in decided if isinstance(decision, WorkflowRunRequest)]


def runs(history: list[RunEvent]) -> list[tuple[str, str, str | None]]:
    """(action, workflow name, conclusion) of every request the history makes, event by event."""
    made = [workflow_run_triggers(history[: end + 1]) for end in range(len(history))]
    return [
        (r.payload["action"], r.payload["workflow_run"]["name"], r.payload["workflow_run"]["conclusion"])
        for decided in made
        for r in requests(decided)
    ]


CI_PLANNED = planned(CI, "CI", {"build": {}, "test": {}})


def test_a_planned_workflow_requests_a_workflow_run_like_githubs() -> None:
    [request] = requests(workflow_run_triggers([source(actor="octocat"), *CI_PLANNED]))

    assert (request.event_name, request.repository, request.ref, request.sha) == (
        "workflow_run",
        "/repo",
        "refs/heads/feature",
        "a" * 40,
    )
    assert request.payload["action"] == "requested"
    assert request.payload["workflow_run"] == {
        "id": "run-1",
        "name": "CI",
        "display_title": "CI: a title",
        "run_number": 7,
        "path": CI,
        "head_branch": "feature",
        "head_sha": "a" * 40,
        "event": "push",
        "status": "queued",
        "conclusion": None,
        "run_attempt": 1,
        "actor": {"login": "octocat"},
        "triggering_actor": {"login": "octocat"},
    }
    assert request.payload["workflow"] == {"name": "CI", "path": CI}
    assert request.payload["conveyor"] == {"workflow_run_depth": 1}
    assert request.workdir is None


@pytest.mark.parametrize(
    ("build", "test", "expected"),
    [
        (Conclusion.SUCCESS, Conclusion.SUCCESS, "success"),
        (Conclusion.FAILURE, Conclusion.SUCCESS, "failure"),
        (Conclusion.CANCELLED, Conclusion.SUCCESS, "cancelled"),
        (Conclusion.FAILURE, Conclusion.CANCELLED, "failure"),
        (Conclusion.SUCCESS, Conclusion.SKIPPED, "success"),
        (Conclusion.SKIPPED, Conclusion.SKIPPED, "success"),
    ],
)
def test_a_workflow_completes_when_its_last_job_concludes_with_githubs_conclusion(
    build: Conclusion, test: Conclusion, expected: str
) -> None:
    history = [source(), *CI_PLANNED, done("ci.build", build), done("ci.test", test)]

    assert runs(history) == [("requested", "CI", None), ("completed", "CI", expected)]
    [completed] = requests(workflow_run_triggers(history))
    assert completed.payload["workflow_run"]["status"] == "completed"


def test_a_late_matrix_completes_its_workflow_when_its_legs_conclude() -> None:
    legs = ["ci.test.1", "ci.test.2"]
    expanded = MatrixExpanded(run_id="run-1", job_id="ci.test", matrix={"os": ["a", "b"]}, legs=legs)
    leg_plans = [
        JobPlanned(run_id="run-1", job_id=leg, workflow=CI, job_key="test", name=f"test ({leg})", spec={})
        for leg in legs
    ]
    history = [source(), *CI_PLANNED, done("ci.build"), expanded, *leg_plans, done("ci.test.1")]

    assert runs(history) == [("requested", "CI", None)]
    assert runs([*history, done("ci.test.2", Conclusion.FAILURE)])[-1] == ("completed", "CI", "failure")


def test_a_failure_that_continues_on_error_does_not_fail_the_workflow() -> None:
    flaky = planned(CI, "CI", {"flaky": {"continue_on_error": True}})
    history = [source(), *flaky, done("ci.flaky", Conclusion.FAILURE)]

    assert runs(history)[-1] == ("completed", "CI", "success")


def test_the_run_completing_completes_each_workflow_once() -> None:
    lint = planned(LINT, "Lint", {"lint": {}})
    history = [source(), *CI_PLANNED, *lint, done("lint.lint"), done("ci.build"), done("ci.test", Conclusion.FAILURE)]
    history.append(RunCompleted(run_id="run-1", conclusion=Conclusion.FAILURE))

    assert runs(history) == [
        ("requested", "CI", None),
        ("requested", "Lint", None),
        ("completed", "Lint", "success"),
        ("completed", "CI", "failure"),
    ]


def test_a_failure_the_scheduler_may_retry_waits_for_the_run_to_complete() -> None:
    history = [source(), *planned(CI, "CI", {"build": {"retry": 2}}), done("ci.build", Conclusion.FAILURE)]
    assert runs(history) == [("requested", "CI", None)]

    history += [done("ci.build", Conclusion.FAILURE), RunCompleted(run_id="run-1", conclusion=Conclusion.FAILURE)]
    assert runs(history)[-1] == ("completed", "CI", "failure")


def test_jobs_a_cancelled_run_never_ran_count_as_cancelled() -> None:
    history = [source(), *CI_PLANNED, done("ci.build"), RunCompleted(run_id="run-1", conclusion=Conclusion.CANCELLED)]

    assert runs(history)[-1] == ("completed", "CI", "cancelled")


@pytest.mark.parametrize(
    ("event_name", "depth", "next_depth"),
    [("push", None, 1), ("workflow_run", None, 2), ("workflow_run", 1, 2), ("workflow_run", 2, 3)],
)
def test_each_workflow_run_is_one_level_deeper(event_name: str, depth: int | None, next_depth: int) -> None:
    payload = {} if depth is None else {"conveyor": {"workflow_run_depth": depth}}
    [request] = requests(workflow_run_triggers([source(event_name=event_name, payload=payload), *CI_PLANNED]))

    assert request.payload["conveyor"]["workflow_run_depth"] == next_depth
    assert chain_depth(request) == next_depth


def test_a_run_at_githubs_chain_limit_triggers_nothing() -> None:
    payload = {"conveyor": {"workflow_run_depth": MAX_CHAIN_DEPTH}}
    history = [source(event_name="workflow_run", payload=payload), *CI_PLANNED]

    assert workflow_run_triggers(history) == [ChainLimitReached(workflow=CI, action="requested", depth=3)]


def test_a_run_of_a_working_tree_triggers_nothing() -> None:
    history = [source(workdir="/src"), *CI_PLANNED, done("ci.build"), done("ci.test")]
    history.append(RunCompleted(run_id="run-1", conclusion=Conclusion.SUCCESS))

    assert runs(history) == []


def test_ids_are_the_same_on_redelivery_and_differ_by_action_workflow_and_attempt() -> None:
    history = [source(), *CI_PLANNED, *planned(LINT, "Lint", {"lint": {}}), done("lint.lint")]
    first = [workflow_run_triggers(history[: end + 1]) for end in range(len(history))]
    again = [workflow_run_triggers(history[: end + 1]) for end in range(len(history))]

    assert first == again
    made = [d for decided in first for d in decided if isinstance(d, WorkflowRunRequest)]
    assert len({d.event_id for d in made}) == len({d.request.run_id for d in made}) == len(made) == 3


def test_a_rerun_is_a_new_attempt_of_the_workflows_it_runs_again() -> None:
    lint = planned(LINT, "Lint", {"lint": {}})
    history = [source(), *CI_PLANNED, *lint, done("lint.lint"), done("ci.build", Conclusion.FAILURE), done("ci.test")]
    history += [RunCompleted(run_id="run-1", conclusion=Conclusion.FAILURE), RunRerunRequested(run_id="run-1")]
    history += [done("ci.build"), RunCompleted(run_id="run-1", conclusion=Conclusion.SUCCESS)]

    made = [workflow_run_triggers(history[: end + 1]) for end in range(len(history))]
    attempts = [
        (r.payload["action"], r.payload["workflow_run"]["name"], r.payload["workflow_run"]["run_attempt"])
        for decided in made
        for r in requests(decided)
    ]
    assert attempts[-2:] == [("requested", "CI", 2), ("completed", "CI", 2)]
    assert ("completed", "Lint", 2) not in attempts


def test_a_payload_naming_the_default_branch_moves_the_run_there() -> None:
    repository = {"full_name": "octo/demo", "default_branch": "main"}
    [decision] = workflow_run_triggers([source(payload={"repository": repository}), *CI_PLANNED])

    assert isinstance(decision, WorkflowRunRequest)
    assert decision.default_branch == "main"
    assert decision.request.payload["repository"] == repository
    assert decision.request.payload["workflow_run"]["head_branch"] == "feature"


AFTER_CI = """
name: After CI
on:
  workflow_run:
    workflows: [CI]
    types: [completed]
    branches: [feature]
jobs:
  show: {runs-on: x, steps: [{run: echo}]}
"""


@pytest.mark.parametrize(
    ("history_end", "files", "expected"),
    [
        (len(CI_PLANNED) + 1, {"after.yml": AFTER_CI}, False),
        (len(CI_PLANNED) + 3, {"after.yml": AFTER_CI}, True),
        (len(CI_PLANNED) + 3, {"after.yml": AFTER_CI.replace("[CI]", "[Lint]")}, False),
        (len(CI_PLANNED) + 3, {"after.yml": AFTER_CI.replace("[feature]", "[main]")}, False),
        (len(CI_PLANNED) + 3, {"after.yml": "on: [workflow_run\n"}, False),
    ],
)
def test_a_request_is_wanted_only_when_a_workflow_listens(
    history_end: int, files: dict[str, str], expected: bool
) -> None:
    history = [source(), *CI_PLANNED, done("ci.build"), done("ci.test")]
    [request] = requests(workflow_run_triggers(history[:history_end]))

    assert wanted(request, files) is expected
