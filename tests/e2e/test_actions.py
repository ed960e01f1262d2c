"""`uses:` steps end to end: composite actions (nested), JavaScript actions with pre and post, remote ones."""

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

INNER = """
name: Inner
inputs:
  who:
    description: whom to greet
    default: inner-default
outputs:
  shout:
    description: the greeting, loud
    value: ${{ steps.say.outputs.loud }}
runs:
  using: composite
  steps:
    - id: say
      shell: bash
      run: |
        echo "inner greets ${{ inputs.who }} from $GITHUB_ACTION_PATH" | sed "s|$GITHUB_ACTION_PATH|the action path|"
        echo "loud=$(echo '${{ inputs.who }}' | tr a-z A-Z)" >> "$GITHUB_OUTPUT"
"""
OUTER = """
name: Outer
inputs:
  name:
    description: a name
    required: true
outputs:
  result:
    description: what the inner action said
    value: ${{ steps.inner.outputs.shout }}
runs:
  using: composite
  steps:
    - run: echo "outer got ${{ inputs.name }} and env $FROM_STEP"
      shell: bash
    - id: inner
      uses: ./.github/actions/inner
      with:
        who: ${{ inputs.name }}
    - if: ${{ inputs.name == 'fail' }}
      run: exit 4
      shell: bash
"""
NODE_ACTION = """
name: Node
inputs:
  word:
    description: a word
    default: default-word
runs:
  using: node20
  main: main.js
  post: post.js
"""
MAIN_JS = """
const fs = require('fs');
console.log(`main says ${process.env.INPUT_WORD}`);
fs.appendFileSync(process.env.GITHUB_OUTPUT, `said=${process.env.INPUT_WORD}\\n`);
fs.appendFileSync(process.env.GITHUB_STATE, `remember=${process.env.INPUT_WORD}-state\\n`);
"""
POST_JS = "console.log(`post remembers ${process.env.STATE_remember}`);\n"
WORKFLOW = """
on: push
jobs:
  actions:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: outer
        uses: ./.github/actions/outer
        env:
          FROM_STEP: step-env
        with:
          name: world
      - id: node
        uses: ./.github/actions/node
        with:
          word: hello
      - run: echo "outputs ${{ steps.outer.outputs.result }} ${{ steps.node.outputs.said }}"
"""


def tagged_repository(folder: Path, files: dict[str, str]) -> None:
    """A git repository of `files` in `folder`, its one commit tagged v1: a remote action to fetch."""
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "v1"], ["tag", "v1"]):
        subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@e", *args], check=True)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_local_composite_and_javascript_actions(repository: Callable[..., Path], tmp_path: Path) -> None:
    root = repository(
        {
            ".github/workflows/ci.yml": WORKFLOW,
            ".github/actions/inner/action.yml": INNER,
            ".github/actions/outer/action.yaml": OUTER,
            ".github/actions/node/action.yml": NODE_ACTION,
            ".github/actions/node/main.js": MAIN_JS,
            ".github/actions/node/post.js": POST_JS,
        }
    )
    data = tmp_path / "data"
    code, output = invoke("run", "-C", str(root), "--data-dir", str(data))

    assert code == 0, output
    assert "outer got world and env step-env" in output
    assert "inner greets world from the action path" in output
    assert "main says hello" in output
    assert "post remembers hello-state" in output
    assert "outputs WORLD hello" in output
    run_id = re.findall(r"^run ([0-9a-f-]{36}): ", output, re.M)[0]
    run = stored_run(data, run_id)
    assert run is not None
    names = [step["name"] for step in run["jobs"][0]["steps"]]
    assert names[-1] == "Post Run ./.github/actions/node"


def test_a_failing_step_inside_a_composite_action_fails_the_step(repository: Callable[..., Path]) -> None:
    workflow = WORKFLOW.replace("name: world", "name: fail")
    root = repository(
        {
            ".github/workflows/ci.yml": workflow,
            ".github/actions/inner/action.yml": INNER,
            ".github/actions/outer/action.yaml": OUTER,
            ".github/actions/node/action.yml": NODE_ACTION,
            ".github/actions/node/main.js": MAIN_JS,
            ".github/actions/node/post.js": POST_JS,
        }
    )
    code, output = invoke("run", "-C", str(root))

    assert code == 1, output
    assert "Process completed with exit code 4." in output
    assert "main says" not in output  # the steps after the failed one are skipped


def test_a_remote_javascript_action_with_pre_and_post(
    repository: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "remote" / "acme" / "greet"
    pre_action = NODE_ACTION.replace("  post: post.js", "  pre: pre.js\n  post: post.js")
    repository_files = {
        "action.yml": pre_action,
        "main.js": MAIN_JS,
        "post.js": POST_JS,
        "pre.js": "console.log('pre runs first');\n",
    }
    tagged_repository(remote, repository_files)
    monkeypatch.setenv("CONVEYOR_ACTIONS_BASE_URL", str(tmp_path / "remote"))
    workflow = (
        "on: push\njobs:\n  remote:\n    runs-on: x\n    steps:\n      - run: echo first step\n"
        "      - uses: acme/greet@v1\n        with:\n          word: remote\n"
    )
    root = repository({".github/workflows/ci.yml": workflow})
    code, output = invoke("run", "-C", str(root))

    assert code == 0, output
    lines = [line for line in output.splitlines() if "|" in line]
    texts = [line.split("|", 1)[1].strip() for line in lines]
    assert texts[:4] == ["pre runs first", "first step", "main says remote", "post remembers remote-state"]


def test_an_unknown_remote_action_fails_with_a_clear_message(
    repository: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_ACTIONS_BASE_URL", str(tmp_path / "nowhere"))
    workflow = "on: push\njobs:\n  remote:\n    runs-on: x\n    steps:\n      - uses: acme/missing@v9\n"
    root = repository({".github/workflows/ci.yml": workflow})
    code, output = invoke("run", "-C", str(root))

    assert code == 1
    assert "acme/missing" in output


REPORTER = """
name: Reporter
inputs:
  val:
    description: a value from the workflow
  late:
    description: a default read when the step runs
    default: ${{ env.LATE }}
  flag:
    description: a boolean in the workflow
  number:
    description: a number in the workflow
  blank:
    description: nothing in the workflow
runs:
  using: node20
  pre: pre.js
  main: main.js
  post: post.js
"""
REPORTER_MAIN = """
const e = process.env;
console.log(`inputs [${e.INPUT_VAL}] [${e.INPUT_LATE}] [${e.INPUT_FLAG}] [${e.INPUT_NUMBER}] [${e.INPUT_BLANK}]`);
if (e.INPUT_VAL === 'fail') process.exit(1);
"""
ENV_WRITER = """
name: Env writer
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "WRITTEN=inside" >> "$GITHUB_ENV"
    - shell: bash
      run: echo "the next step sees [$WRITTEN] [${{ env.WRITTEN }}]"
"""
LATE_INPUTS = """
on: push
jobs:
  inputs:
    runs-on: x
    steps:
      - uses: actions/checkout@v4
      - id: a
        run: |
          echo "v=from-step-a" >> "$GITHUB_OUTPUT"
          echo "LATE=late-env" >> "$GITHUB_ENV"
      - uses: acme/reporter@v1
        with:
          val: ${{ steps.a.outputs.v }}
          flag: true
          number: 1.0
          blank:
      - uses: acme/reporter@v1
        continue-on-error: true
        with:
          val: fail
      - uses: ./.github/actions/env-writer
"""


def test_action_inputs_post_steps_and_composite_env_follow_github(
    repository: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "remote" / "acme" / "reporter"
    files = {
        "action.yml": REPORTER,
        "pre.js": "console.log('pre');\n",
        "main.js": REPORTER_MAIN,
        "post.js": "console.log(`post after [${process.env.INPUT_VAL}]`);\n",
    }
    tagged_repository(remote, files)
    monkeypatch.setenv("CONVEYOR_ACTIONS_BASE_URL", str(tmp_path / "remote"))
    root = repository(
        {".github/workflows/ci.yml": LATE_INPUTS, ".github/actions/env-writer/action.yml": ENV_WRITER}
    )
    code, output = invoke("run", "-C", str(root))

    assert code == 0, output
    # inputs are evaluated when the step runs, not when its action was fetched; scalars read as GitHub writes them
    assert "inputs [from-step-a] [late-env] [true] [1] []" in output
    # the failing main step still gets its post, as does every action whose pre ran
    assert "inputs [fail]" in output
    assert "Process completed with exit code" not in output  # a JavaScript action's exit code is not an error line
    assert "post after [from-step-a]" in output  # and evaluated again when the post runs
    assert "post after [fail]" in output
    assert "the next step sees [inside] [inside]" in output
