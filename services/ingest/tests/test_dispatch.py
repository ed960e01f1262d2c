"""Dispatching like GitHub's dispatch APIs: `workflow_dispatch` inputs checked against the workflow's declared types
(pure, then through `POST /api/runs` over a real log and git repository), and `repository_dispatch` with a
`client_payload`."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conveyor_events import RunRequested
from conveyor_ingest import LocalKeyWrapper, Queries, create_app, issue_token
from conveyor_ingest.dispatch import workflow_path
from conveyor_runtime import SqliteEventLog, SqliteProjections, project
from conveyor_workflow import MAX_DISPATCH_INPUTS, Workflow, dispatch_inputs, load_workflow, triggered

DEPLOY = """
on:
  workflow_dispatch:
    inputs:
      target:
        type: string
        required: true
      level:
        type: choice
        options: [info, warning, debug]
        default: warning
      dry-run:
        type: boolean
        default: true
      count:
        type: number
        default: 2
      region:
        type: environment
      note:
        description: untyped, so a string
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - run: echo deploy
"""

PUSH_ONLY = """
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo build
"""

ON_DEPLOY_EVENT = """
on:
  repository_dispatch:
    types: [deploy]
jobs:
  go:
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ github.event.client_payload.version }}
"""

ON_ANY_EVENT = """
on: repository_dispatch
jobs:
  go:
    runs-on: ubuntu-latest
    steps:
      - run: echo any
"""


def deploy() -> Workflow:
    return load_workflow(DEPLOY, ".github/workflows/deploy.yml")


# -- the pure check ---------------------------------------------------------------------------------------------


def test_given_inputs_keep_their_types_in_the_context_and_are_strings_in_the_event() -> None:
    checked = dispatch_inputs(
        deploy(),
        {"target": "prod", "level": "debug", "dry-run": False, "count": "7", "region": "eu", "note": 12},
    )

    assert checked.problems == []
    assert checked.inputs == {
        "target": "prod",
        "level": "debug",
        "dry-run": False,
        "count": 7,
        "region": "eu",
        "note": "12",
    }
    assert checked.event_inputs == {
        "target": "prod",
        "level": "debug",
        "dry-run": "false",
        "count": "7",
        "region": "eu",
        "note": "12",
    }


def test_omitted_inputs_take_their_defaults_and_those_without_one_are_left_out() -> None:
    checked = dispatch_inputs(deploy(), {"target": "prod"})

    assert checked.problems == []
    assert checked.inputs == {"target": "prod", "level": "warning", "dry-run": True, "count": 2}
    assert checked.event_inputs == {"target": "prod", "level": "warning", "dry-run": "true", "count": "2"}


def test_a_null_input_counts_as_not_given() -> None:
    checked = dispatch_inputs(deploy(), {"target": "prod", "count": None})

    assert checked.inputs["count"] == 2


@pytest.mark.parametrize(
    ("given", "typed", "text"),
    [(True, True, "true"), (False, False, "false"), ("true", True, "true"), ("false", False, "false")],
)
def test_a_boolean_is_a_json_boolean_or_its_lower_case_text(given: Any, typed: bool, text: str) -> None:
    checked = dispatch_inputs(deploy(), {"target": "prod", "dry-run": given})

    assert (checked.problems, checked.inputs["dry-run"], checked.event_inputs["dry-run"]) == ([], typed, text)


@pytest.mark.parametrize("given", ["yes", "True", "1", 1, ""])
def test_anything_else_for_a_boolean_is_refused_naming_the_input(given: Any) -> None:
    checked = dispatch_inputs(deploy(), {"target": "prod", "dry-run": given})

    assert checked.problems == [
        f"Provided value '{given}' for input 'dry-run' not in the list of allowed values: true, false"
    ]


@pytest.mark.parametrize(
    ("given", "typed", "text"),
    [(3, 3, "3"), (2.5, 2.5, "2.5"), ("-4", -4, "-4"), (" 1e3 ", 1000, "1e3"), ("0.25", 0.25, "0.25"), (3.0, 3, "3")],
)
def test_a_number_is_a_json_number_or_text_that_reads_as_one(given: Any, typed: float, text: str) -> None:
    checked = dispatch_inputs(deploy(), {"target": "prod", "count": given})

    assert (checked.problems, checked.inputs["count"], checked.event_inputs["count"]) == ([], typed, text)


@pytest.mark.parametrize("given", ["three", "1_000", "0x10", "", "nan", True, "1e999"])
def test_anything_else_for_a_number_is_refused_naming_the_input(given: Any) -> None:
    [problem] = dispatch_inputs(deploy(), {"target": "prod", "count": given}).problems

    assert problem.startswith(f"Provided value '{'true' if given is True else given}' for input 'count' is not a")


def test_a_choice_must_be_one_of_its_options() -> None:
    checked = dispatch_inputs(deploy(), {"target": "prod", "level": "verbose"})

    assert checked.problems == [
        "Provided value 'verbose' for input 'level' not in the list of allowed values: info, warning, debug"
    ]


def test_a_required_input_without_a_default_must_be_given() -> None:
    assert dispatch_inputs(deploy(), {}).problems == ["Required input 'target' not provided"]


def test_a_required_input_with_a_default_takes_it() -> None:
    workflow = load_workflow(
        "on:\n  workflow_dispatch:\n    inputs:\n      mode: {required: true, default: fast}\n"
        "jobs:\n  j:\n    runs-on: x\n    steps: [{run: echo}]\n",
        "w.yml",
    )

    checked = dispatch_inputs(workflow, {})

    assert (checked.problems, checked.inputs) == ([], {"mode": "fast"})


def test_undeclared_inputs_are_unexpected_as_github_words_it() -> None:
    checked = dispatch_inputs(deploy(), {"target": "prod", "colour": "red", "size": "L"})

    assert checked.problems == ['Unexpected inputs provided: ["colour", "size"]']


def test_every_problem_is_reported_at_once() -> None:
    checked = dispatch_inputs(deploy(), {"extra": "x", "count": "many", "level": "loud"})

    assert checked.problems == [
        'Unexpected inputs provided: ["extra"]',
        "Required input 'target' not provided",
        "Provided value 'loud' for input 'level' not in the list of allowed values: info, warning, debug",
        "Provided value 'many' for input 'count' is not a number",
    ]


def test_objects_and_arrays_are_not_input_values() -> None:
    checked = dispatch_inputs(deploy(), {"target": {"name": "prod"}, "note": ["a"]})

    assert checked.problems == [
        "Provided value for input 'target' must be a string, a number or a boolean, not an object",
        "Provided value for input 'note' must be a string, a number or a boolean, not an array",
    ]


def test_more_inputs_than_github_allows_are_refused_before_anything_else() -> None:
    given = {f"input{n}": "x" for n in range(MAX_DISPATCH_INPUTS + 1)}

    checked = dispatch_inputs(deploy(), given)

    assert checked.problems == [
        f"you may only provide up to {MAX_DISPATCH_INPUTS} inputs for a workflow_dispatch event, "
        f"not {MAX_DISPATCH_INPUTS + 1}"
    ]


def test_a_workflow_without_the_trigger_cannot_be_dispatched() -> None:
    checked = dispatch_inputs(load_workflow(PUSH_ONLY, "ci.yml"), {})

    assert checked.problems == ["Workflow does not have 'workflow_dispatch' trigger"]


def test_a_bare_trigger_takes_no_inputs() -> None:
    workflow = load_workflow(PUSH_ONLY.replace("on: push", "on: [push, workflow_dispatch]"), "ci.yml")

    assert dispatch_inputs(workflow, {}).problems == []
    assert dispatch_inputs(workflow, {"x": "1"}).problems == ['Unexpected inputs provided: ["x"]']


@pytest.mark.parametrize(
    ("named", "path"),
    [
        ("deploy.yml", ".github/workflows/deploy.yml"),
        (".github/workflows/deploy.yml", ".github/workflows/deploy.yml"),
        ("./.github/workflows/deploy.yaml", ".github/workflows/deploy.yaml"),
    ],
)
def test_a_workflow_is_named_by_file_name_or_path(named: str, path: str) -> None:
    assert workflow_path(named) == path


# -- through the API --------------------------------------------------------------------------------------------


@dataclass
class Edge:
    http: httpx.AsyncClient
    log: SqliteEventLog
    clone: Path
    sha: str

    async def dispatch(self, **body: Any) -> httpx.Response:
        return await self.http.post("/api/runs", json={"repository": "app", **body})

    async def runs_requested(self) -> list[RunRequested]:
        return [e.event for e in await self.log.read(0, types=["RunRequested"])]  # type: ignore[misc]


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=T", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    clone = tmp_path / "clone"
    workflows = clone / ".github" / "workflows"
    workflows.mkdir(parents=True)
    for name, text in {"deploy.yml": DEPLOY, "ci.yml": PUSH_ONLY, "on-deploy.yml": ON_DEPLOY_EVENT}.items():
        (workflows / name).write_text(text)
    git(clone, "init", "-q", "-b", "main")
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "initial")
    log = SqliteEventLog(tmp_path / "events.db")
    store = SqliteProjections(tmp_path / "projections.db")
    await log.open()
    projector = asyncio.create_task(project(log, store))
    app = create_app(log, Queries(store), LocalKeyWrapper(bytes(range(32))))
    issued = await issue_token(log, "admin", {"*": "admin"})
    assert issued is not None
    headers = {"Authorization": f"Bearer {issued[0]}"}
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://conveyor", headers=headers) as http:
            registered = await http.post("/api/repositories", json={"name": "app", "url": str(clone)})
            assert registered.status_code == 201, registered.text
            yield Edge(http, log, clone, git(clone, "rev-parse", "HEAD"))
    finally:
        projector.cancel()
        await asyncio.gather(projector, return_exceptions=True)
        await log.close()


async def test_an_accepted_workflow_dispatch_appends_the_normalised_inputs(edge: Edge) -> None:
    response = await edge.dispatch(
        event="workflow_dispatch", workflow="deploy.yml", inputs={"target": "prod", "dry-run": "false", "count": 5}
    )

    assert response.status_code == 202, response.text
    [requested] = await edge.runs_requested()
    assert response.json()["id"] == requested.run_id
    assert (requested.event_name, requested.ref, requested.sha, requested.workflows) == (
        "workflow_dispatch",
        "refs/heads/main",
        edge.sha,
        [".github/workflows/deploy.yml"],
    )
    assert requested.inputs == {"target": "prod", "level": "warning", "dry-run": False, "count": 5}
    assert requested.payload == {
        "inputs": {"target": "prod", "level": "warning", "dry-run": "false", "count": "5"},
        "ref": "refs/heads/main",
        "workflow": ".github/workflows/deploy.yml",
    }


async def test_a_workflow_dispatch_reads_the_workflow_at_the_ref_given(edge: Edge) -> None:
    git(edge.clone, "checkout", "-q", "-b", "feature")
    (edge.clone / ".github/workflows/deploy.yml").write_text(DEPLOY.replace("target:", "site:"))
    git(edge.clone, "commit", "-q", "-am", "rename the input")

    on_feature = await edge.dispatch(
        event="workflow_dispatch", workflow="deploy.yml", ref="feature", inputs={"site": "a"}
    )
    on_main = await edge.dispatch(event="workflow_dispatch", workflow="deploy.yml", inputs={"site": "a"})

    assert on_feature.status_code == 202, on_feature.text
    assert on_main.status_code == 422
    assert "Unexpected inputs provided" in on_main.json()["detail"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            {"workflow": "deploy.yml", "inputs": {"target": "x", "dry-run": "maybe"}},
            ["deploy.yml", "'dry-run'", "maybe"],
        ),
        ({"workflow": "deploy.yml", "inputs": {"target": "x", "level": "loud"}}, ["deploy.yml", "'level'", "loud"]),
        (
            {"workflow": "deploy.yml", "inputs": {"target": "x", "count": "ten"}},
            ["deploy.yml", "'count'", "not a number"],
        ),
        ({"workflow": "deploy.yml", "inputs": {}}, ["deploy.yml", "Required input 'target' not provided"]),
        ({"workflow": "deploy.yml", "inputs": {"target": "x", "y": 1}}, ['Unexpected inputs provided: ["y"]']),
        ({"workflow": "ci.yml"}, ["ci.yml", "Workflow does not have 'workflow_dispatch' trigger"]),
        ({"workflow": "missing.yml"}, [".github/workflows/missing.yml", "not found at refs/heads/main"]),
        ({"workflow": "deploy.yml", "ref": "no-such-branch"}, ["no commit for ref 'no-such-branch'"]),
        ({}, ["workflow_dispatch needs 'workflow'"]),
    ],
)
async def test_a_refused_workflow_dispatch_is_422_naming_the_problem_and_appends_nothing(
    edge: Edge, body: dict[str, Any], words: list[str]
) -> None:
    response = await edge.dispatch(event="workflow_dispatch", **body)

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert all(word in detail for word in words), detail
    assert await edge.runs_requested() == []


async def test_an_invalid_workflow_file_is_422_with_its_diagnostics(edge: Edge) -> None:
    (edge.clone / ".github/workflows/broken.yml").write_text("on: workflow_dispatch\njobs: {build: {runs-on: x}}\n")
    git(edge.clone, "add", "-A")
    git(edge.clone, "commit", "-q", "-m", "broken")

    response = await edge.dispatch(event="workflow_dispatch", workflow="broken.yml")

    assert response.status_code == 422
    assert response.json()["detail"] == (
        "workflow '.github/workflows/broken.yml' at refs/heads/main is not a valid workflow: "
        ".github/workflows/broken.yml (Line: 2, Col: 8): No steps defined in `steps` and no workflow called in `uses` "
        "for the following jobs: build"
    )
    assert await edge.runs_requested() == []


async def test_a_repository_dispatch_appends_its_client_payload_at_the_default_branch(edge: Edge) -> None:
    response = await edge.dispatch(
        event="repository_dispatch", event_type="deploy", client_payload={"version": "1.2", "unit": {"a": [1]}}
    )

    assert response.status_code == 202, response.text
    [requested] = await edge.runs_requested()
    assert (requested.event_name, requested.ref, requested.sha, requested.inputs, requested.workflows) == (
        "repository_dispatch",
        "refs/heads/main",
        edge.sha,
        {},
        [],
    )
    assert requested.payload == {
        "action": "deploy",
        "branch": "main",
        "client_payload": {"version": "1.2", "unit": {"a": [1]}},
    }
    assert requested.default_branch == "main"  # a run on any branch restores the caches saved there


async def test_only_workflows_listing_the_dispatched_type_are_triggered(edge: Edge) -> None:
    workflows = [load_workflow(text, name) for name, text in [("on-deploy", ON_DEPLOY_EVENT), ("on-any", ON_ANY_EVENT)]]

    await edge.dispatch(event="repository_dispatch", event_type="deploy")
    await edge.dispatch(event="repository_dispatch", event_type="release")
    deployed, released = await edge.runs_requested()

    assert [w.path for w in workflows if triggered(w, deployed.event_name, deployed.payload)] == ["on-deploy", "on-any"]
    assert [w.path for w in workflows if triggered(w, released.event_name, released.payload)] == ["on-any"]


async def test_a_repository_dispatch_no_workflow_listens_to_is_still_accepted(edge: Edge) -> None:
    response = await edge.dispatch(event="repository_dispatch", event_type="nobody-listens")

    assert response.status_code == 202, response.text
    [requested] = await edge.runs_requested()
    assert requested.payload["action"] == "nobody-listens"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"event": "repository_dispatch"}, "needs 'event_type'"),
        ({"event": "repository_dispatch", "event_type": ""}, "needs 'event_type'"),
        ({"event": "repository_dispatch", "event_type": "x" * 101}, "1 to 100 characters, not 101"),
        (
            {"event": "repository_dispatch", "event_type": "e", "client_payload": {str(n): n for n in range(11)}},
            "'client_payload' may have at most 10 top-level properties, not 11",
        ),
        ({"event": "repository_dispatch", "event_type": "e", "ref": "main"}, "leave 'ref' unset"),
        ({"event": "repository_dispatch", "event_type": "e", "inputs": {"a": "1"}}, "send values in 'client_payload'"),
        ({"event": "push", "event_type": "e"}, "are for repository_dispatch, not push"),
    ],
)
async def test_a_refused_repository_dispatch_is_422_naming_the_field_and_appends_nothing(
    edge: Edge, body: dict[str, Any], words: str
) -> None:
    response = await edge.dispatch(**body)

    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]
    assert await edge.runs_requested() == []


async def test_a_client_payload_of_ten_properties_is_accepted(edge: Edge) -> None:
    payload = {str(n): n for n in range(10)}

    response = await edge.dispatch(event="repository_dispatch", event_type="deploy", client_payload=payload)

    assert response.status_code == 202, response.text


async def test_other_events_still_run_at_the_ref_with_the_inputs_as_given(edge: Edge) -> None:
    response = await edge.dispatch(workflow="ci.yml", inputs={"anything": "goes"})

    assert response.status_code == 202, response.text
    [requested] = await edge.runs_requested()
    assert (requested.event_name, requested.workflows, requested.inputs) == (
        "push",
        [".github/workflows/ci.yml"],
        {"anything": "goes"},
    )
