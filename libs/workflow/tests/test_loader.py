"""load_workflow against GitHub's documented workflow syntax: every key, valid and invalid forms."""

import textwrap
from pathlib import Path
from typing import Any

import pytest
from conveyor_workflow._load_events import ACTIVITY_TYPES
from conveyor_workflow._loader import load_workflow
from conveyor_workflow._model import Workflow, WorkflowError

PATH = ".github/workflows/ci.yml"
JOB = "jobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n"
FIXTURES = Path(__file__).parent / "workflows"


def load(text: str) -> Workflow:
    return load_workflow(textwrap.dedent(text), PATH)


def problems(text: str) -> list[str]:
    with pytest.raises(WorkflowError) as caught:
        load(text)
    return [str(d) for d in caught.value.diagnostics]


def job_with(body: str) -> str:
    """A workflow whose only job `build` has `body` (lines at job-key level) before its steps."""
    lines = textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", "    ")
    return f"on: push\njobs:\n  build:\n{lines}    steps:\n      - run: echo\n"


def step_with(body: str) -> str:
    lines = textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", "        ").replace("        ", "      - ", 1)
    return f"on: push\njobs:\n  build:\n    runs-on: x\n    steps:\n{lines}"


# ---------------------------------------------------------------- valid forms


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        ("push", {"push": {}}),
        ("[push, pull_request]", {"push": {}, "pull_request": {}}),
        ("\n  push:\n  fork:", {"push": {}, "fork": {}}),
        ("\n  push:\n    branches: main", {"push": {"branches": ["main"]}}),
        (
            "\n  push:\n    branches: [main, 'releases/**']\n    tags: [v*]\n    paths: ['**.py']",
            {"push": {"branches": ["main", "releases/**"], "tags": ["v*"], "paths": ["**.py"]}},
        ),
        (
            "\n  push:\n    branches-ignore: [dev]\n    tags-ignore: [x]\n    paths-ignore: [docs/**]",
            {"push": {"branches-ignore": ["dev"], "tags-ignore": ["x"], "paths-ignore": ["docs/**"]}},
        ),
        (
            "\n  pull_request:\n    types: [opened, synchronize]\n    branches: [main]",
            {"pull_request": {"types": ["opened", "synchronize"], "branches": ["main"]}},
        ),
        ("\n  pull_request_target:\n    types: opened", {"pull_request_target": {"types": ["opened"]}}),
        ("\n  issues:\n    types: [opened]", {"issues": {"types": ["opened"]}}),
        ("\n  release:\n    types: [published]", {"release": {"types": ["published"]}}),
        ("\n  repository_dispatch:\n    types: [deploy]", {"repository_dispatch": {"types": ["deploy"]}}),
        (
            "\n  workflow_run:\n    workflows: [CI]\n    types: [completed]\n    branches: [main]",
            {"workflow_run": {"workflows": ["CI"], "types": ["completed"], "branches": ["main"]}},
        ),
        (
            "\n  schedule:\n    - cron: '30 5 * * 1,3'\n    - cron: '*/15 0-6 1 JAN-MAR SUN'",
            {"schedule": [{"cron": "30 5 * * 1,3"}, {"cron": "*/15 0-6 1 JAN-MAR SUN"}]},
        ),
        ("\n  workflow_dispatch:", {"workflow_dispatch": {}}),
        ("\n  create: {}\n  delete:", {"create": {}, "delete": {}}),
    ],
)
def test_on_forms(on: str, expected: dict[str, Any]) -> None:
    assert load(f"on: {on}\n{JOB}").on == expected


def test_workflow_dispatch_inputs_of_every_type() -> None:
    workflow = load(
        textwrap.dedent(
            """\
        on:
          workflow_dispatch:
            inputs:
              name: {description: Who, required: true, default: octo, type: string}
              dry: {type: boolean, default: false}
              count: {type: number, default: 3}
              level: {type: choice, options: [info, debug], default: info}
              target: {type: environment}
              bare:
        """
        )
        + JOB
    )
    inputs = workflow.on["workflow_dispatch"]["inputs"]
    assert inputs["name"] == {"description": "Who", "required": True, "default": "octo", "type": "string"}
    assert inputs["dry"]["default"] is False
    assert inputs["count"]["default"] == 3
    assert inputs["level"]["options"] == ["info", "debug"]
    assert inputs["target"] == {"type": "environment"}
    assert inputs["bare"] == {}


def test_workflow_call_inputs_outputs_secrets() -> None:
    workflow = load(
        textwrap.dedent(
            """\
        on:
          workflow_call:
            inputs:
              env: {type: string, required: true, default: "${{ github.ref }}"}
              debug: {type: boolean, default: false}
            outputs:
              version: {description: v, value: "${{ jobs.build.outputs.v }}"}
            secrets:
              token: {required: true}
              other:
        """
        )
        + JOB
    )
    call = workflow.on["workflow_call"]
    assert call["inputs"]["env"]["default"] == "${{ github.ref }}"
    assert call["outputs"]["version"]["value"] == "${{ jobs.build.outputs.v }}"
    assert call["secrets"] == {"token": {"required": True}, "other": {}}


def test_top_level_keys() -> None:
    workflow = load(
        textwrap.dedent(
            """\
        name: CI
        run-name: Deploy by @${{ github.actor }} ${{ inputs.x }} ${{ vars.Y }}
        on: push
        permissions: {contents: read, id-token: write, pull-requests: none}
        env:
          STR: text
          NUM: 42
          FLOAT: 1.50
          BOOL: true
          NULL:
          YES: yes
          SECRET: ${{ secrets.TOKEN }}
        defaults: {run: {shell: bash, working-directory: ./src}}
        concurrency: ci-${{ github.ref }}
        """
        )
        + JOB
    )
    assert workflow.name == "CI"
    assert workflow.run_name == "Deploy by @${{ github.actor }} ${{ inputs.x }} ${{ vars.Y }}"
    assert workflow.permissions == {"contents": "read", "id-token": "write", "pull-requests": "none"}
    assert workflow.env == {
        "STR": "text",
        "NUM": "42",
        "FLOAT": "1.5",
        "BOOL": "true",
        "NULL": "",
        "YES": "yes",
        "SECRET": "${{ secrets.TOKEN }}",
    }
    assert workflow.defaults == {"run": {"shell": "bash", "working-directory": "./src"}}
    assert workflow.concurrency == "ci-${{ github.ref }}"


def test_every_documented_permission_scope_and_level_loads() -> None:
    scopes = """\
        actions: write
        artifact-metadata: write
        attestations: write
        checks: write
        contents: write
        copilot-requests: write
        deployments: write
        discussions: write
        id-token: write
        issues: write
        models: read
        packages: write
        pages: write
        pull-requests: write
        repository-projects: write
        security-events: write
        statuses: write
        vulnerability-alerts: read
    """
    permissions = textwrap.indent(textwrap.dedent(scopes), "  ")
    workflow = load_workflow(f"on: push\npermissions:\n{permissions}{JOB}", PATH)
    assert workflow.permissions["artifact-metadata"] == "write"
    assert workflow.permissions["id-token"] == "write"
    assert len(workflow.permissions) == 18


@pytest.mark.parametrize("event", sorted(ACTIVITY_TYPES))
def test_every_documented_activity_type_loads(event: str) -> None:
    types = ", ".join(ACTIVITY_TYPES[event])
    workflows = "\n    workflows: [CI]" if event == "workflow_run" else ""
    workflow = load_workflow(f"on:\n  {event}:\n    types: [{types}]{workflows}\n{JOB}", PATH)
    assert workflow.on[event]["types"] == list(ACTIVITY_TYPES[event])


def test_a_repository_dispatch_takes_any_type() -> None:
    workflow = load_workflow(f"on:\n  repository_dispatch:\n    types: [deploy-staging]\n{JOB}", PATH)
    assert workflow.on["repository_dispatch"]["types"] == ["deploy-staging"]


def test_an_empty_script_loads_but_a_missing_one_does_not() -> None:
    assert load(step_with("run: ''")).jobs["build"].steps[0].run == ""
    assert f"{P} (Line: 6, Col: 13): Unexpected value ''" in problems(step_with("run:"))


def test_a_concurrency_queue_loads() -> None:
    workflow = load_workflow(f"on: push\nconcurrency: {{group: deploy, queue: max}}\n{JOB}", PATH)
    assert workflow.concurrency == {"group": "deploy", "queue": "max"}


def test_the_case_function_is_allowed_where_expressions_are() -> None:
    workflow = load(step_with("run: echo ${{ case(github.event_name == 'push', 'pushed', 'other') }}"))
    assert "case(" in (workflow.jobs["build"].steps[0].run or "")


@pytest.mark.parametrize("value", ["read-all", "write-all", "{}"])
def test_permissions_shorthands(value: str) -> None:
    assert load(f"on: push\npermissions: {value}\n{JOB}").permissions == ({} if value == "{}" else value)


def test_job_keys() -> None:
    workflow = load(
        """\
        on: push
        jobs:
          first:
            runs-on: ubuntu-latest
            steps: [{run: echo}]
          build:
            name: Build ${{ matrix.os }}
            needs: first
            if: ${{ needs.first.result == 'success' }}
            runs-on: {group: large, labels: [linux, x64]}
            environment: {name: prod, url: "${{ steps.deploy.outputs.url }}"}
            concurrency: {group: "${{ github.ref }}", cancel-in-progress: false}
            outputs: {url: "${{ steps.deploy.outputs.url }}"}
            env: {TOKEN: "${{ secrets.T }}"}
            defaults: {run: {shell: "${{ matrix.shell }}"}}
            timeout-minutes: 10
            strategy:
              fail-fast: false
              max-parallel: 2
              matrix:
                os: [ubuntu-latest, windows-latest]
                node: [18, 20]
                include: [{os: ubuntu-latest, experimental: true}]
                exclude: [{os: windows-latest, node: 18}]
            continue-on-error: false
            container:
              image: node:20
              credentials: {username: u, password: "${{ secrets.P }}"}
              env: {NODE_ENV: development}
              ports: [80, "8080:80"]
              volumes: [my_docker_volume:/volume_mount]
              options: --cpus 1
            services:
              redis: {image: redis, ports: ["6379:6379"]}
            permissions: {contents: write}
            steps:
              - id: deploy
                run: ./deploy
        """
    )
    build = workflow.jobs["build"]
    assert list(workflow.jobs) == ["first", "build"]
    assert build.needs == ("first",)
    assert build.if_ == "${{ needs.first.result == 'success' }}"
    assert build.runs_on == {"group": "large", "labels": ["linux", "x64"]}
    assert build.environment == {"name": "prod", "url": "${{ steps.deploy.outputs.url }}"}
    assert build.concurrency == {"group": "${{ github.ref }}", "cancel-in-progress": False}
    assert build.outputs == {"url": "${{ steps.deploy.outputs.url }}"}
    assert build.timeout_minutes == 10
    assert build.strategy == {
        "fail-fast": False,
        "max-parallel": 2,
        "matrix": {
            "os": ["ubuntu-latest", "windows-latest"],
            "node": [18, 20],
            "include": [{"os": "ubuntu-latest", "experimental": True}],
            "exclude": [{"os": "windows-latest", "node": 18}],
        },
    }
    assert build.container["ports"] == [80, "8080:80"]
    assert build.services == {"redis": {"image": "redis", "ports": ["6379:6379"]}}
    assert build.permissions == {"contents": "write"}
    assert build.steps[0].id == "deploy"


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        ("runs-on: [self-hosted, linux]", "runs_on", ["self-hosted", "linux"]),
        ("runs-on: ${{ matrix.os }}", "runs_on", "${{ matrix.os }}"),
        ("runs-on: {labels: big}", "runs_on", {"labels": ["big"]}),
        ("runs-on: x\nenvironment: staging", "environment", "staging"),
        ("runs-on: x\ncontainer: node:20", "container", "node:20"),
        ("runs-on: x\ntimeout-minutes: ${{ inputs.t }}", "timeout_minutes", "${{ inputs.t }}"),
        ("runs-on: x\ncontinue-on-error: ${{ matrix.exp }}", "continue_on_error", "${{ matrix.exp }}"),
        ("runs-on: x\nneeds: []", "needs", ()),
        ("runs-on: x\nif: github.event_name == 'push'", "if_", "github.event_name == 'push'"),
        ("runs-on: x\nif: always()", "if_", "always()"),
        ("runs-on: x\nif: true", "if_", "true"),
        (
            "runs-on: x\nstrategy: {matrix: '${{ fromJSON(needs.a.outputs.m) }}'}",
            "strategy",
            {"matrix": "${{ fromJSON(needs.a.outputs.m) }}"},
        ),
    ],
)
def test_job_value_forms(body: str, field: str, expected: Any) -> None:
    assert getattr(load(job_with(body)).jobs["build"], field) == expected


def test_reusable_workflow_jobs() -> None:
    workflow = load(
        """\
        on: push
        jobs:
          local:
            uses: ./.github/workflows/build.yml
            with: {debug: true, ref: "${{ github.ref }}"}
            secrets: {token: "${{ secrets.TOKEN }}"}
          remote:
            needs: local
            if: success()
            name: Remote
            permissions: read-all
            concurrency: deploy
            strategy: {matrix: {env: [a, b]}}
            uses: octo/pipelines/.github/workflows/deploy.yaml@v2
            secrets: inherit
        """
    )
    local, remote = workflow.jobs["local"], workflow.jobs["remote"]
    assert local.uses == "./.github/workflows/build.yml"
    assert local.with_ == {"debug": True, "ref": "${{ github.ref }}"}
    assert local.secrets == {"token": "${{ secrets.TOKEN }}"}
    assert local.steps == ()
    assert remote.secrets == "inherit"
    assert remote.uses == "octo/pipelines/.github/workflows/deploy.yaml@v2"


def test_step_keys() -> None:
    workflow = load(
        """\
        on: push
        jobs:
          build:
            runs-on: x
            steps:
              - id: checkout
                name: Check out ${{ github.sha }}
                if: ${{ success() && hashFiles('**/go.sum') != '' }}
                uses: actions/checkout@v4
                with: {fetch-depth: 0, token: "${{ secrets.T }}", args: --x}
                env: {A: "${{ env.B }}"}
                continue-on-error: true
                timeout-minutes: 1.5
              - run: |
                  echo one
                  echo two
                shell: pwsh
                working-directory: ./app
                if: steps.checkout.outcome == 'success'
              - uses: docker://alpine:3.20
              - uses: ./.github/actions/local
              - uses: octo/monorepo/path/to/action@main
        """
    )
    first, second, *rest = workflow.jobs["build"].steps
    assert first.id == "checkout"
    assert first.with_ == {"fetch-depth": 0, "token": "${{ secrets.T }}", "args": "--x"}
    assert first.env == {"A": "${{ env.B }}"}
    assert first.continue_on_error is True
    assert first.timeout_minutes == 1.5
    assert second.run == "echo one\necho two\n"
    assert second.shell == "pwsh"
    assert second.working_directory == "./app"
    assert second.if_ == "steps.checkout.outcome == 'success'"
    assert [s.uses for s in rest] == [
        "docker://alpine:3.20",
        "./.github/actions/local",
        "octo/monorepo/path/to/action@main",
    ]


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("valid_*.yml")), ids=lambda p: p.name)
def test_fixture_workflows_load(fixture: Path) -> None:
    load_workflow(fixture.read_text(), str(fixture))


# ---------------------------------------------------------------- invalid forms

P = PATH


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"on: push\nfoo: 1\n{JOB}", f"{P} (Line: 2, Col: 1): Unexpected value 'foo'", id="unknown-top"),
        pytest.param(JOB, f"{P} (Line: 1, Col: 1): Required property is missing: on", id="missing-on"),
        pytest.param("on: push\n", f"{P} (Line: 1, Col: 1): Required property is missing: jobs", id="missing-jobs"),
        pytest.param(f"on: pushed\n{JOB}", f"{P} (Line: 1, Col: 5): Unexpected value 'pushed'", id="unknown-event"),
        pytest.param(f"on: [push, nope]\n{JOB}", f"{P} (Line: 1, Col: 12): Unexpected value 'nope'", id="list-event"),
        pytest.param(f"on: {{}}\n{JOB}", f"{P} (Line: 1, Col: 5): No event triggers defined in `on`", id="no-events"),
        pytest.param(
            f"on:\n  push:\n    branch: main\n{JOB}", f"{P} (Line: 3, Col: 5): Unexpected value 'branch'", id="filter"
        ),
        pytest.param(
            f"on:\n  issues:\n    branches: main\n{JOB}",
            f"{P} (Line: 3, Col: 5): Unexpected value 'branches'",
            id="filter-not-for-event",
        ),
        pytest.param(
            f"on:\n  push:\n    branches: [a]\n    branches-ignore: [b]\n{JOB}",
            f"{P} (Line: 4, Col: 5): you may only define one of `branches` and `branches-ignore` for a single event",
            id="branches-and-ignore",
        ),
        pytest.param(
            f"on:\n  push:\n    tags: [a]\n    tags-ignore: [b]\n{JOB}",
            f"{P} (Line: 4, Col: 5): you may only define one of `tags` and `tags-ignore` for a single event",
            id="tags-and-ignore",
        ),
        pytest.param(
            f"on:\n  pull_request:\n    paths: [a]\n    paths-ignore: [b]\n{JOB}",
            f"{P} (Line: 4, Col: 5): you may only define one of `paths` and `paths-ignore` for a single event",
            id="paths-and-ignore",
        ),
        pytest.param(
            f"on:\n  push:\n    branches: ['${{{{ github.ref }}}}']\n{JOB}",
            f"{P} (Line: 3, Col: 16): A template expression is not allowed in this context",
            id="expression-in-on",
        ),
        pytest.param(
            f"on:\n  workflow_run:\n    types: [completed]\n{JOB}",
            f"{P} (Line: 3, Col: 5): Required property is missing: workflows",
            id="workflow-run-workflows",
        ),
        pytest.param(
            f"on:\n  schedule:\n    - cron: '* * * *'\n{JOB}",
            f"{P} (Line: 3, Col: 13): Invalid cron expression '* * * *': expected 5 fields, found 4",
            id="cron-fields",
        ),
        pytest.param(
            f"on:\n  schedule:\n    - cron: '61 * * * *'\n{JOB}",
            f"{P} (Line: 3, Col: 13): Invalid cron expression '61 * * * *': minute '61' is out of range 0-59",
            id="cron-range",
        ),
        pytest.param(
            f"on:\n  schedule:\n    - cron: '0 0 * * MON#2'\n{JOB}",
            f"{P} (Line: 3, Col: 13): Invalid cron expression '0 0 * * MON#2': day of week 'MON#2' is not a number, "
            "range, list or step",
            id="cron-not-posix",
        ),
        pytest.param(
            f"on:\n  schedule:\n    - cron: '0 0 * * FRI-TUE'\n{JOB}",
            f"{P} (Line: 3, Col: 13): Invalid cron expression '0 0 * * FRI-TUE': day of week 'FRI-TUE' is a "
            "descending range",
            id="cron-descending-names",
        ),
        pytest.param(
            f"on:\n  schedule:\n    - cron: '0 0 * * * 2024'\n{JOB}",
            f"{P} (Line: 3, Col: 13): Invalid cron expression '0 0 * * * 2024': expected 5 fields, found 6",
            id="cron-six-fields",
        ),
        pytest.param(
            f"on:\n  schedule:\n    - crom: x\n{JOB}", f"{P} (Line: 3, Col: 7): Unexpected value 'crom'", id="cron-key"
        ),
        pytest.param(
            f"on:\n  schedule: '0 0 * * *'\n{JOB}",
            f"{P} (Line: 2, Col: 13): Unexpected value '0 0 * * *'",
            id="schedule-not-list",
        ),
        pytest.param(
            f"on:\n  workflow_dispatch:\n    inputs:\n      x: {{type: text}}\n{JOB}",
            f"{P} (Line: 4, Col: 17): Unexpected value 'text'",
            id="dispatch-type",
        ),
        pytest.param(
            f"on:\n  workflow_dispatch:\n    inputs:\n      x: {{type: choice}}\n{JOB}",
            f"{P} (Line: 4, Col: 7): Input 'x' of type choice needs a non-empty 'options' list",
            id="choice-without-options",
        ),
        pytest.param(
            f"on:\n  workflow_dispatch:\n    inputs:\n      x: {{type: choice, options: [a], default: b}}\n{JOB}",
            f"{P} (Line: 4, Col: 48): Input 'x': the default 'b' is not an option",
            id="choice-default",
        ),
        pytest.param(
            f"on:\n  workflow_dispatch:\n    inputs:\n      x: {{type: boolean, default: maybe}}\n{JOB}",
            f"{P} (Line: 4, Col: 35): Input 'x' has type boolean; its default 'maybe' is not a boolean",
            id="boolean-default",
        ),
        pytest.param(
            f"on:\n  workflow_dispatch:\n    inputs:\n      x: {{type: number, default: many}}\n{JOB}",
            f"{P} (Line: 4, Col: 34): Input 'x' has type number; its default 'many' is not a number",
            id="number-default",
        ),
        pytest.param(
            f"on:\n  workflow_dispatch:\n    inputs:\n      x: {{typo: 1}}\n{JOB}",
            f"{P} (Line: 4, Col: 11): Unexpected value 'typo'",
            id="dispatch-input-key",
        ),
        pytest.param(
            "on:\n  workflow_dispatch:\n    inputs:\n" + "".join(f"      i{n}: {{}}\n" for n in range(26)) + JOB,
            f"{P} (Line: 3, Col: 5): you may only define up to 25 `inputs` for a `workflow_dispatch` event",
            id="dispatch-too-many-inputs",
        ),
        pytest.param(
            f"on:\n  workflow_call:\n    inputs:\n      x: {{required: true}}\n{JOB}",
            f"{P} (Line: 4, Col: 10): Required property is missing: type",
            id="call-input-type",
        ),
        pytest.param(
            f"on:\n  workflow_call:\n    inputs:\n      x: {{type: choice}}\n{JOB}",
            f"{P} (Line: 4, Col: 17): Unexpected value 'choice'",
            id="call-input-choice",
        ),
        pytest.param(
            f"on:\n  workflow_call:\n    outputs:\n      x: {{description: d}}\n{JOB}",
            f"{P} (Line: 4, Col: 10): Required property is missing: value",
            id="call-output-value",
        ),
        pytest.param(
            f"on:\n  workflow_call:\n    secrets:\n      x: {{needed: true}}\n{JOB}",
            f"{P} (Line: 4, Col: 11): Unexpected value 'needed'",
            id="call-secret-key",
        ),
        pytest.param(
            f"on:\n  workflow_call:\n    outputs:\n      x: {{value: '${{{{ steps.a.outputs.b }}}}'}}\n{JOB}",
            f"{P} (Line: 4, Col: 18): Unrecognized named-value: 'steps'. Located at position 1 within expression: "
            "steps.a.outputs.b",
            id="call-output-context",
        ),
        pytest.param(
            f"on: push\npermissions: read\n{JOB}", f"{P} (Line: 2, Col: 14): Unexpected value 'read'", id="perm-value"
        ),
        pytest.param(
            f"on: push\npermissions: {{code: read}}\n{JOB}",
            f"{P} (Line: 2, Col: 15): Unexpected value 'code'",
            id="perm-scope",
        ),
        pytest.param(
            f"on: push\npermissions: {{contents: admin}}\n{JOB}",
            f"{P} (Line: 2, Col: 25): Unexpected value 'admin'",
            id="perm-level",
        ),
        pytest.param(
            f"on: push\nenv: {{A: [1]}}\n{JOB}", f"{P} (Line: 2, Col: 10): A sequence was not expected", id="env-seq"
        ),
        pytest.param(
            f"on: push\nenv: [A]\n{JOB}", f"{P} (Line: 2, Col: 6): A sequence was not expected", id="env-not-map"
        ),
        pytest.param(
            f"on: push\nenv: {{A: '${{{{ matrix.x }}}}'}}\n{JOB}",
            f"{P} (Line: 2, Col: 10): Unrecognized named-value: 'matrix'. Located at position 1 within expression: "
            "matrix.x",
            id="matrix-in-workflow-env",
        ),
        pytest.param(
            f"on: push\nrun-name: '${{{{ secrets.X }}}}'\n{JOB}",
            f"{P} (Line: 2, Col: 11): Unrecognized named-value: 'secrets'. Located at position 1 within expression: "
            "secrets.X",
            id="secrets-in-run-name",
        ),
        pytest.param(
            f"on: push\ndefaults: {{run: {{sh: bash}}}}\n{JOB}",
            f"{P} (Line: 2, Col: 18): Unexpected value 'sh'",
            id="defaults-key",
        ),
        pytest.param(
            f"on: push\ndefaults: {{run: {{shell: '${{{{ env.S }}}}'}}}}\n{JOB}",
            f"{P} (Line: 2, Col: 25): A template expression is not allowed in this context",
            id="defaults-expression",
        ),
        pytest.param(
            f"on: push\nconcurrency: {{cancel-in-progress: true}}\n{JOB}",
            f"{P} (Line: 2, Col: 14): Required property is missing: group",
            id="concurrency-group",
        ),
        pytest.param(
            f"on: push\nconcurrency: '${{{{ env.X }}}}'\n{JOB}",
            f"{P} (Line: 2, Col: 14): Unrecognized named-value: 'env'. Located at position 1 within expression: env.X",
            id="concurrency-context",
        ),
        pytest.param(
            "on: push\njobs: {}\n",
            f"{P} (Line: 2, Col: 7): The workflow must contain at least one job with no dependencies.",
            id="no-jobs",
        ),
        pytest.param(
            "on: push\njobs:\n  build: run\n",
            f"{P} (Line: 3, Col: 10): Invalid type for job 'build': a mapping was expected",
            id="job-not-map",
        ),
        pytest.param(
            job_with("runs-on: x\nfoo: 1"), f"{P} (Line: 5, Col: 5): Unexpected value 'foo'", id="job-unknown-key"
        ),
        pytest.param(
            "on: push\njobs:\n  build:\n    steps:\n      - run: echo\n",
            f"{P} (Line: 4, Col: 5): Required property is missing: runs-on",
            id="job-runs-on",
        ),
        pytest.param(
            "on: push\njobs:\n  build:\n    runs-on: x\n",
            f"{P} (Line: 3, Col: 3): No steps defined in `steps` and no workflow called in `uses` for the following "
            "jobs: build",
            id="job-no-steps",
        ),
        pytest.param(
            "on: push\njobs:\n  1build:\n    runs-on: x\n    steps: [{run: a}]\n",
            f"{P} (Line: 3, Col: 3): The identifier '1build' is invalid. IDs may only contain alphanumeric "
            "characters, '_', and '-'. IDs must start with a letter or '_' and must be less than 100 characters.",
            id="job-id",
        ),
        pytest.param(
            "on: push\njobs:\n  b${{ x }}:\n    runs-on: x\n    steps: [{run: a}]\n",
            f"{P} (Line: 3, Col: 3): A template expression is not allowed in this context",
            id="job-id-expression",
        ),
        pytest.param(
            "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: a}]\n"
            "  a:\n    runs-on: y\n    steps: [{run: b}]\n",
            f"{P} (Line: 6, Col: 3): 'a' is already defined",
            id="job-duplicate",
        ),
        pytest.param(
            "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: a}]\n  b:\n    needs: x\n    runs-on: y\n"
            "    steps: [{run: b}]\n",
            f"{P} (Line: 6, Col: 3): Job 'b' depends on unknown job 'x'.",
            id="needs-unknown",
        ),
        pytest.param(
            "on: push\njobs:\n  a:\n    needs: b\n    runs-on: x\n    steps: [{run: a}]\n  b:\n    needs: a\n"
            "    runs-on: y\n    steps: [{run: b}]\n",
            f"{P} (Line: 3, Col: 3): The workflow must contain at least one job with no dependencies.",
            id="needs-no-root",
        ),
        pytest.param(
            "on: push\njobs:\n  r:\n    runs-on: x\n    steps: [{run: a}]\n  a:\n    needs: [r, b]\n    runs-on: x\n"
            "    steps: [{run: a}]\n  b:\n    needs: a\n    runs-on: y\n    steps: [{run: b}]\n",
            f"{P} (Line: 10, Col: 3): Job 'b' depends on job 'a' which creates a cycle in the dependency graph.",
            id="needs-cycle",
        ),
        pytest.param(
            job_with("runs-on: x\nneeds: '${{ x }}'"),
            f"{P} (Line: 5, Col: 12): A template expression is not allowed in this context",
            id="needs-expression",
        ),
        pytest.param(
            job_with("runs-on: x\nif: steps.a.outcome"),
            f"{P} (Line: 5, Col: 9): Unrecognized named-value: 'steps'. Located at position 1 within expression: "
            "steps.a.outcome",
            id="steps-in-job-if",
        ),
        pytest.param(
            job_with("runs-on: x\nif: ${{ secrets.A != '' }}"),
            f"{P} (Line: 5, Col: 9): Unrecognized named-value: 'secrets'. Located at position 1 within expression: "
            "secrets.A != ''",
            id="secrets-in-job-if",
        ),
        pytest.param(
            job_with("runs-on: x\nif: hashFiles('a') != ''"),
            f"{P} (Line: 5, Col: 9): Unrecognized function: 'hashFiles'. Located at position 1 within expression: "
            "hashFiles('a') != ''",
            id="hashfiles-in-job-if",
        ),
        pytest.param(
            job_with("runs-on: ${{ steps.a.outputs.os }}"),
            f"{P} (Line: 4, Col: 14): Unrecognized named-value: 'steps'. Located at position 1 within expression: "
            "steps.a.outputs.os",
            id="steps-in-runs-on",
        ),
        pytest.param(
            job_with("runs-on: x\nstrategy: {max-parallel: '${{ matrix.x }}'}"),
            f"{P} (Line: 5, Col: 30): Unrecognized named-value: 'matrix'. Located at position 1 within expression: "
            "matrix.x",
            id="matrix-in-strategy",
        ),
        pytest.param(
            job_with("runs-on: x\nname: ${{ success() }}"),
            f"{P} (Line: 5, Col: 11): Unrecognized function: 'success'. Located at position 1 within expression: "
            "success()",
            id="status-function-in-name",
        ),
        pytest.param(
            job_with("runs-on: x\nenv: {A: '${{ steps.x.outputs.y }}'}"),
            f"{P} (Line: 5, Col: 14): Unrecognized named-value: 'steps'. Located at position 1 within expression: "
            "steps.x.outputs.y",
            id="steps-in-job-env",
        ),
        pytest.param(
            job_with("runs-on: x\ntimeout-minutes: soon"),
            f"{P} (Line: 5, Col: 22): Unexpected value 'soon'",
            id="timeout-type",
        ),
        pytest.param(
            job_with("runs-on: x\ncontinue-on-error: yes"),
            f"{P} (Line: 5, Col: 24): Unexpected value 'yes'",
            id="continue-on-error-yes-is-not-bool",
        ),
        pytest.param(
            job_with("runs-on: {size: big}"), f"{P} (Line: 4, Col: 15): Unexpected value 'size'", id="runs-on-key"
        ),
        pytest.param(
            job_with("runs-on: x\nenvironment: {url: u}"),
            f"{P} (Line: 5, Col: 18): Required property is missing: name",
            id="environment-name",
        ),
        pytest.param(
            job_with("runs-on: x\nstrategy: {matrix: {os: a}}"),
            f"{P} (Line: 5, Col: 29): Unexpected value 'a'",
            id="matrix-vector-not-list",
        ),
        pytest.param(
            job_with("runs-on: x\nstrategy: {matrix: {include: [a]}}"),
            f"{P} (Line: 5, Col: 35): Unexpected value 'a'",
            id="matrix-include-not-map",
        ),
        pytest.param(
            job_with("runs-on: x\nstrategy: {fail-fast: 'no'}"),
            f"{P} (Line: 5, Col: 27): Unexpected value 'no'",
            id="fail-fast-type",
        ),
        pytest.param(
            job_with("runs-on: x\nservices: {db: {ports: [1]}}"),
            f"{P} (Line: 5, Col: 20): Required property is missing: image",
            id="service-image",
        ),
        pytest.param(
            job_with("runs-on: x\ncontainer: {image: a, entrypoint: b}"),
            f"{P} (Line: 5, Col: 27): Unexpected value 'entrypoint'",
            id="container-key",
        ),
        pytest.param(
            "on: push\njobs:\n  c:\n    uses: octo/repo/deploy.yml@v1\n",
            f"{P} (Line: 4, Col: 11): Invalid workflow reference 'octo/repo/deploy.yml@v1': references to workflows "
            "must be of the form '{owner}/{repo}/.github/workflows/{file}@{ref}', or './.github/workflows/{file}' "
            "when local",
            id="call-reference",
        ),
        pytest.param(
            "on: push\njobs:\n  c:\n    uses: ./.github/workflows/a.yml\n    runs-on: x\n",
            f"{P} (Line: 5, Col: 5): Unexpected value 'runs-on'",
            id="call-with-runs-on",
        ),
        pytest.param(
            "on: push\njobs:\n  c:\n    uses: ./.github/workflows/a.yml\n    with: {a: '${{ secrets.S }}'}\n",
            f"{P} (Line: 5, Col: 15): Unrecognized named-value: 'secrets'. Located at position 1 within expression: "
            "secrets.S",
            id="secrets-in-call-with",
        ),
        pytest.param(
            step_with("run: a\nuses: actions/checkout@v4"),
            f"{P} (Line: 7, Col: 9): A step may have either 'run' or 'uses', not both",
            id="step-run-and-uses",
        ),
        pytest.param(
            step_with("name: nothing"),
            f"{P} (Line: 6, Col: 9): Required property is missing: run or uses",
            id="step-neither",
        ),
        pytest.param(step_with("run: a\nfoo: b"), f"{P} (Line: 7, Col: 9): Unexpected value 'foo'", id="step-key"),
        pytest.param(
            step_with("run: a\nwith: {a: b}"), f"{P} (Line: 7, Col: 9): Unexpected value 'with'", id="run-step-with"
        ),
        pytest.param(
            step_with("uses: a/b@v1\nshell: bash"),
            f"{P} (Line: 7, Col: 9): Unexpected value 'shell'",
            id="uses-step-shell",
        ),
        pytest.param(
            step_with("uses: actions/checkout"),
            f"{P} (Line: 6, Col: 15): Expected format {{org}}/{{repo}}[/path]@ref. Actual 'actions/checkout'",
            id="step-uses-format",
        ),
        pytest.param(
            step_with("uses: actions/checkout@${{ x }}"),
            f"{P} (Line: 6, Col: 15): A template expression is not allowed in this context",
            id="step-uses-expression",
        ),
        pytest.param(
            step_with("run: a\nid: 2nd"),
            f"{P} (Line: 7, Col: 13): The identifier '2nd' is invalid. IDs may only contain alphanumeric characters, "
            "'_', and '-'. IDs must start with a letter or '_' and must be less than 100 characters.",
            id="step-id",
        ),
        pytest.param(
            "on: push\njobs:\n  b:\n    runs-on: x\n    steps:\n      - {id: s, run: a}\n      - {id: s, run: b}\n",
            f"{P} (Line: 7, Col: 14): The identifier 's' may not be used more than once within the same scope.",
            id="step-id-duplicate",
        ),
        pytest.param(
            step_with("run: a\nif: secrets.X"),
            f"{P} (Line: 7, Col: 13): Unrecognized named-value: 'secrets'. Located at position 1 within expression: "
            "secrets.X",
            id="secrets-in-step-if",
        ),
        pytest.param(
            step_with("run: a\nenv: {A: '${{ jobs.x }}'}"),
            f"{P} (Line: 7, Col: 18): Unrecognized named-value: 'jobs'. Located at position 1 within expression: "
            "jobs.x",
            id="jobs-in-step-env",
        ),
        pytest.param(
            step_with("run: echo ${{ github.sha"),
            f"{P} (Line: 6, Col: 14): The expression is not closed. An unescaped ${{{{ sequence was found, but the "
            "closing }} sequence was not found.",
            id="unclosed-expression",
        ),
        pytest.param(
            step_with("run: a\ntimeout-minutes: [1]"),
            f"{P} (Line: 7, Col: 26): A sequence was not expected",
            id="step-timeout-type",
        ),
        pytest.param(
            "on: push\njobs:\n  b:\n    runs-on: x\n    steps: run\n",
            f"{P} (Line: 5, Col: 12): Unexpected value 'run'",
            id="steps-not-list",
        ),
        pytest.param(
            "on: push\nenv: {FOO: 1, foo: 2}\n" + JOB,
            f"{P} (Line: 2, Col: 15): 'foo' is already defined",
            id="keys-differing-in-case",
        ),
        pytest.param(
            "on: push\njobs:\n  __build:\n    runs-on: x\n    steps: [{run: a}]\n",
            f"{P} (Line: 3, Col: 3): The identifier '__build' is invalid. IDs starting with '__' are reserved.",
            id="reserved-job-id",
        ),
        pytest.param(
            step_with("id: __step\nrun: a"),
            f"{P} (Line: 6, Col: 13): The identifier '__step' is invalid. IDs starting with '__' are reserved.",
            id="reserved-step-id",
        ),
        pytest.param(
            step_with("uses: actions/setup-node@v4\nwith: {node-version: [18, 20]}"),
            f"{P} (Line: 7, Col: 30): A sequence was not expected",
            id="step-with-list",
        ),
        pytest.param(
            "on: push\njobs:\n  call:\n    uses: ./.github/workflows/x.yml\n    with:\n      config: {a: 1}\n",
            f"{P} (Line: 6, Col: 15): A mapping was not expected",
            id="call-with-mapping",
        ),
        pytest.param(
            step_with("run: a\nshell: ${{ matrix.shell }}"),
            f"{P} (Line: 7, Col: 16): A template expression is not allowed in this context",
            id="expression-in-step-shell",
        ),
        pytest.param(
            f"on: push\npermissions:\n  id-token: read\n{JOB}",
            f"{P} (Line: 3, Col: 13): Unexpected value 'read'",
            id="id-token-read",
        ),
        pytest.param(
            f"on: push\npermissions:\n  models: write\n{JOB}",
            f"{P} (Line: 3, Col: 11): Unexpected value 'write'",
            id="models-write",
        ),
        pytest.param(
            f"on:\n  pull_request:\n    types: [opened, opend]\n{JOB}",
            f"{P} (Line: 3, Col: 21): Unexpected value 'opend'",
            id="misspelt-activity-type",
        ),
        pytest.param(
            f"on:\n  issues:\n    types: synchronize\n{JOB}",
            f"{P} (Line: 3, Col: 12): Unexpected value 'synchronize'",
            id="activity-type-of-another-event",
        ),
        pytest.param(
            f"on: push\nconcurrency: {{group: x, queue: all}}\n{JOB}",
            f"{P} (Line: 2, Col: 32): Unexpected value 'all'",
            id="concurrency-queue-value",
        ),
        pytest.param(
            f"on: push\nconcurrency: {{group: x, queue: max, cancel-in-progress: true}}\n{JOB}",
            f"{P} (Line: 2, Col: 25): `queue: max` cannot be combined with `cancel-in-progress: true`",
            id="concurrency-queue-max-cancelling",
        ),
        pytest.param("- on\n- jobs\n", f"{P} (Line: 1, Col: 1): A sequence was not expected", id="root-list"),
        pytest.param("hello\n", f"{P} (Line: 1, Col: 1): Unexpected value 'hello'", id="root-scalar"),
    ],
)
def test_invalid_workflows(text: str, expected: str) -> None:
    assert expected in problems(text)


def test_every_problem_is_reported_in_file_order() -> None:
    found = problems(
        """\
        on: pushy
        foo: 1
        jobs:
          a:
            needs: ghost
            runs-on: x
            steps:
              - name: no run
          b:
            runs-on: ${{ steps.x }}
            steps: [{run: a, bar: 1}]
        """
    )
    assert len(found) >= 5
    lines = [int(d.split("Line: ")[1].split(",")[0]) for d in found]
    assert lines == sorted(lines)
    assert any("Unexpected value 'pushy'" in d for d in found)
    assert any("Unexpected value 'foo'" in d for d in found)
    assert any("depends on unknown job 'ghost'" in d for d in found)
    assert any("Required property is missing: run or uses" in d for d in found)
    assert any("Unexpected value 'bar'" in d for d in found)


def test_conveyor_extensions_retry_and_max_in_progress() -> None:
    workflow = load_workflow(
        "on: push\nconcurrency: {group: deploy, max-in-progress: 2}\njobs:\n"
        "  a:\n    runs-on: x\n    retry: {max-attempts: 3, on: any}\n    steps: [{run: 'true'}]\n"
        "  b:\n    runs-on: x\n    retry: 2\n    steps: [{run: 'true'}]\n",
        "w.yml",
    )
    assert workflow.concurrency == {"group": "deploy", "max-in-progress": 2}
    assert workflow.jobs["a"].retry == {"max-attempts": 3, "on": "any"}
    assert workflow.jobs["b"].retry == 2


@pytest.mark.parametrize(
    ("retry", "message"),
    [
        ("0", "Unexpected value '0': a whole number of at least 1 is expected"),
        ("{max-attempts: 2, on: sometimes}", "Unexpected value 'sometimes': retry on is 'infrastructure' or 'any'"),
        ("{on: any}", "Required property is missing: max-attempts"),
    ],
)
def test_bad_retry_values(retry: str, message: str) -> None:
    with pytest.raises(WorkflowError) as caught:
        load_workflow(f"on: push\njobs:\n  a:\n    runs-on: x\n    retry: {retry}\n    steps: [{{run: 'true'}}]\n", "w")
    assert message in [d.message for d in caught.value.diagnostics]
