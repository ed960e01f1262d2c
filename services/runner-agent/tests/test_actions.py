"""Action references, `action.yml` metadata and inputs, as GitHub documents them and its runner treats them."""

from __future__ import annotations

from textwrap import dedent

import pytest
from conveyor_runner_agent.domain import (
    ActionDefinition,
    ActionError,
    ActionInput,
    ActionReference,
    ActionRuns,
    DockerImage,
    LocalAction,
    RemoteAction,
    input_env,
    load_action,
    parse_uses,
    resolve_inputs,
)
from conveyor_workflow import Step

# -- parse_uses ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uses", "expected"),
    [
        ("./", LocalAction(".")),
        (".", LocalAction(".")),
        ("./.github/actions/build", LocalAction(".github/actions/build")),
        ("./tools/action/", LocalAction("tools/action")),
        ("actions/checkout@v4", RemoteAction("actions", "checkout", "", "v4")),
        ("actions/setup-node@main", RemoteAction("actions", "setup-node", "", "main")),
        ("my-org/my.repo@release/v1", RemoteAction("my-org", "my.repo", "", "release/v1")),
        (
            "actions/aws/ec2@8f4b7f84864484a7bf31766abe9204da3cbe65b3",
            RemoteAction("actions", "aws", "ec2", "8f4b7f84864484a7bf31766abe9204da3cbe65b3"),
        ),
        ("o/r/deep/sub/dir@v1.2.3", RemoteAction("o", "r", "deep/sub/dir", "v1.2.3")),
        ("  o/r@v1  ", RemoteAction("o", "r", "", "v1")),
        ("docker://alpine:3.8", DockerImage("alpine:3.8")),
        ("docker://ghcr.io/owner/image@sha256:abc", DockerImage("ghcr.io/owner/image@sha256:abc")),
        ("docker://debian", DockerImage("debian")),
    ],
)
def test_parse_uses(uses: str, expected: ActionReference) -> None:
    assert parse_uses(uses) == expected


@pytest.mark.parametrize(
    ("uses", "detail"),
    [
        ("actions/checkout", "the @ref is missing"),
        ("actions/checkout@", "the ref after '@' is empty"),
        ("/checkout@v1", "the owner is empty"),
        ("actions@v1", "the repository is empty"),
        ("actions/@v1", "the repository is empty"),
        ("a/b@c@d", "more than one '@'"),
        ("a/b//c@v1", "has an empty, '.' or '..' segment"),
        ("a/b/../c@v1", "has an empty, '.' or '..' segment"),
        ("a b/c@v1", "the owner 'a b' may only contain"),
        ("-o/r@v1", "the owner '-o' may only contain"),
        ("o/r@-v1", "'-v1' is not a valid git ref"),
        ("o/r@a..b", "'a..b' is not a valid git ref"),
        ("o/r@v 1", "'v 1' is not a valid git ref"),
        ("docker://", "the image after 'docker://' is missing"),
        ("", "the @ref is missing"),
        ("checkout", "the @ref is missing"),
    ],
)
def test_parse_uses_rejects(uses: str, detail: str) -> None:
    with pytest.raises(ActionError) as raised:
        parse_uses(uses)
    assert detail in str(raised.value)
    assert f"Invalid action reference '{uses}'" in str(raised.value)


def test_remote_action_reads_back_as_written() -> None:
    assert str(RemoteAction("o", "r", "sub/dir", "v1")) == "o/r/sub/dir@v1"
    assert str(RemoteAction("o", "r", "", "v1")) == "o/r@v1"
    assert RemoteAction("o", "r", "", "v1").repository == "o/r"


# -- load_action: what each documented key becomes --------------------------------------------------------------


def _load(text: str) -> ActionDefinition:
    return load_action(dedent(text), "action.yml")


def test_top_level_keys() -> None:
    definition = _load(
        """\
        name: 'Hello World'
        description: 'Greet someone and record the time'
        author: Octocat
        branding:
          icon: award
          color: green
        runs:
          using: node20
          main: index.js
        """
    )
    assert (definition.name, definition.description, definition.author) == (
        "Hello World",
        "Greet someone and record the time",
        "Octocat",
    )
    assert definition.inputs == {}
    assert definition.outputs == {}


def test_inputs() -> None:
    definition = _load(
        """\
        inputs:
          num-octocats:
            description: 'Number of Octocats'
            required: false
            default: '1'
          octocat-eye-color:
            description: 'Eye color of the Octocats'
            required: true
          token:
            default: ${{ github.token }}
          old:
            description: old
            deprecationMessage: 'use new instead'
          quoted-required:
            required: 'true'
          numeric-default:
            default: 3
          bool-default:
            default: yes
          bare:
        runs: {using: node20, main: index.js}
        """
    )
    assert definition.inputs == {
        "num-octocats": ActionInput("Number of Octocats", False, "1"),
        "octocat-eye-color": ActionInput("Eye color of the Octocats", True, None),
        "token": ActionInput(None, False, "${{ github.token }}"),
        "old": ActionInput("old", False, None, "use new instead"),
        "quoted-required": ActionInput(None, True, None),
        "numeric-default": ActionInput(None, False, "3"),
        "bool-default": ActionInput(None, False, "yes"),
        "bare": ActionInput(),
    }


def test_outputs() -> None:
    definition = _load(
        """\
        outputs:
          sum:
            description: "The sum"
            value: ${{ steps.add.outputs.sum }}
          plain:
            description: "Set by the script"
        runs:
          using: composite
          steps: []
        """
    )
    assert definition.outputs["sum"].value == "${{ steps.add.outputs.sum }}"
    assert definition.outputs["sum"].description == "The sum"
    assert definition.outputs["plain"].value is None


@pytest.mark.parametrize("using", ["node12", "node16", "node20", "node24", "Node20"])
def test_javascript_runs(using: str) -> None:
    definition = _load(
        f"""\
        runs:
          using: {using}
          pre: setup.js
          pre-if: runner.os == 'Linux'
          main: main.js
          post: cleanup.js
          post-if: success()
        """
    )
    assert definition.runs == ActionRuns(
        using.lower(),
        main="main.js",
        pre="setup.js",
        post="cleanup.js",
        pre_if="runner.os == 'Linux'",
        post_if="success()",
    )
    assert definition.runs.is_node


def test_javascript_conditions_default_to_always() -> None:
    runs = _load("runs: {using: node20, main: index.js}").runs
    assert (runs.pre, runs.post, runs.pre_if, runs.post_if) == (None, None, "always()", "always()")


@pytest.mark.parametrize("image", ["Dockerfile", "docker/Dockerfile", "docker://debian:stretch-slim"])
def test_docker_runs(image: str) -> None:
    definition = _load(
        f"""\
        runs:
          using: 'docker'
          image: '{image}'
          pre-entrypoint: setup.sh
          pre-if: always()
          entrypoint: main.sh
          post-entrypoint: cleanup.sh
          post-if: failure()
          env:
            GREETING: on
            COUNT: 1
          args:
            - ${{{{ inputs.greeting }}}}
            - yes
            - 2
        """
    )
    assert definition.runs == ActionRuns(
        "docker",
        image=image,
        env={"GREETING": "on", "COUNT": "1"},
        args=("${{ inputs.greeting }}", "yes", "2"),
        entrypoint="main.sh",
        pre_entrypoint="setup.sh",
        post_entrypoint="cleanup.sh",
        pre_if="always()",
        post_if="failure()",
    )
    assert not definition.runs.is_node


def test_composite_steps_become_workflow_steps() -> None:
    definition = _load(
        """\
        runs:
          using: "composite"
          steps:
            - run: echo Hello ${{ inputs.who }}
              shell: bash
            - id: random
              name: Random number
              if: ${{ inputs.go == 'yes' }}
              run: echo "n=$RANDOM" >> $GITHUB_OUTPUT
              shell: pwsh
              working-directory: sub
              env:
                A: on
              continue-on-error: true
            - uses: actions/checkout@v4
              name: Nested
              with:
                fetch-depth: 0
                lfs: yes
              env: {B: '2'}
              continue-on-error: ${{ inputs.soft }}
            - uses: ./.github/actions/local
              if: always()
        """
    )
    assert definition.runs.steps == (
        Step.model_validate({"run": "echo Hello ${{ inputs.who }}", "shell": "bash"}),
        Step.model_validate(
            {
                "id": "random",
                "name": "Random number",
                "if_": "${{ inputs.go == 'yes' }}",
                "run": 'echo "n=$RANDOM" >> $GITHUB_OUTPUT',
                "shell": "pwsh",
                "working_directory": "sub",
                "env": {"A": "on"},
                "continue_on_error": True,
            }
        ),
        Step.model_validate(
            {
                "uses": "actions/checkout@v4",
                "name": "Nested",
                "with_": {"fetch-depth": "0", "lfs": "yes"},
                "env": {"B": "2"},
                "continue_on_error": "${{ inputs.soft }}",
            }
        ),
        Step.model_validate({"uses": "./.github/actions/local", "if_": "always()"}),
    )


def test_scalars_are_yaml_1_2_like_a_workflow() -> None:
    definition = _load(
        """\
        name: on
        description: no
        author: 1.0
        runs: {using: node20, main: yes}
        """
    )
    assert (definition.name, definition.description, definition.author, definition.runs.main) == (
        "on",
        "no",
        "1",
        "yes",
    )


# -- load_action: every error says where and what ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "(Line: 1, Col: 1): The action metadata is empty; it needs at least 'runs'."),
        ("- a\n", "(Line: 1, Col: 1): The action metadata must be a mapping"),
        ("name: [\n", "(Line: 2, Col: 1): Invalid YAML: did not find expected node content"),
        ("name: x\n", "(Line: 1, Col: 1): Top level 'runs:' section is required"),
        ("name: x\nname: y\nruns: {using: node20, main: a}\n", "(Line: 2, Col: 1): 'name' is already defined"),
        ("name: [a]\nruns: {using: node20, main: a}\n", "(Line: 1, Col: 7): A sequence was not expected"),
        ("runs: node20\n", "(Line: 1, Col: 7): Expected a mapping for 'runs'"),
        ("runs:\n  main: a.js\n", "(Line: 2, Col: 3): Required property is missing: using"),
        ("runs:\n  using: ''\n", "(Line: 2, Col: 10): Unexpected value ''"),
        ("runs:\n  using: node8\n  main: a\n", "(Line: 2, Col: 10): 'using: node8' is not supported, use 'docker'"),
        ("runs:\n  using: node20\n", "(Line: 2, Col: 3): Required property is missing: main"),
        ("runs:\n  using: node20\n  main: ''\n", "(Line: 3, Col: 9): Unexpected value ''"),
        ("runs:\n  using: node20\n  main: a\n  image: b\n", "(Line: 4, Col: 3): Unexpected value 'image'"),
        ("runs:\n  using: node20\n  main: a\n  steps: []\n", "(Line: 4, Col: 3): Unexpected value 'steps'"),
        ("runs:\n  using: docker\n", "(Line: 2, Col: 3): Required property is missing: image"),
        ("runs:\n  using: docker\n  image: x\n  main: a\n", "(Line: 4, Col: 3): Unexpected value 'main'"),
        ("runs:\n  using: docker\n  image: x\n  args: a b\n", "(Line: 4, Col: 9): Expected a sequence for 'args'"),
        ("runs:\n  using: docker\n  image: x\n  env: [a]\n", "(Line: 4, Col: 8): Expected a mapping for 'env'"),
        ("runs:\n  using: docker\n  image: x\n  env: {A: [1]}\n", "(Line: 4, Col: 12): A sequence was not expected"),
        ("runs:\n  using: composite\n", "(Line: 2, Col: 3): Required property is missing: steps"),
        ("runs:\n  using: composite\n  steps: {}\n", "(Line: 3, Col: 10): Expected a sequence for 'steps'"),
        ("runs:\n  using: composite\n  main: a\n  steps: []\n", "(Line: 3, Col: 3): Unexpected value 'main'"),
        ("runs:\n  using: composite\n  steps:\n    - echo\n", "(Line: 4, Col: 7): Expected a mapping for a step"),
        (
            "runs:\n  using: composite\n  steps:\n    - name: x\n",
            "(Line: 4, Col: 7): Required property is missing: run or uses",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - run: a\n      uses: b/c@d\n",
            "(Line: 4, Col: 7): A step may have either 'run' or 'uses', not both",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - run: echo\n",
            "(Line: 4, Col: 7): Required property is missing: shell",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - run: echo\n      shell: ''\n",
            "(Line: 5, Col: 14): Unexpected value ''",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - run: echo\n      shell: bash\n      with: {a: b}\n",
            "(Line: 6, Col: 7): Unexpected value 'with'",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - uses: a/b@c\n      shell: bash\n",
            "(Line: 5, Col: 7): Unexpected value 'shell'",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - uses: a/b@c\n      working-directory: x\n",
            "(Line: 5, Col: 7): Unexpected value 'working-directory'",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - run: a\n      shell: bash\n      timeout-minutes: 5\n",
            "(Line: 6, Col: 7): Unexpected value 'timeout-minutes'",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - uses: actions/checkout\n",
            "(Line: 4, Col: 13): Invalid action reference 'actions/checkout': the @ref is missing",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - uses: a/b@c\n      id: 1st\n",
            "(Line: 5, Col: 11): The identifier '1st' is invalid.",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - {uses: a/b@c, id: x}\n    - {uses: a/b@c, id: x}\n",
            "(Line: 5, Col: 25): The identifier 'x' may not be used more than once within the same scope.",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - uses: a/b@c\n      continue-on-error: maybe\n",
            "(Line: 5, Col: 26): Unexpected value 'maybe'",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - uses: a/b@c\n      with: [a]\n",
            "(Line: 5, Col: 13): Expected a mapping for 'with'",
        ),
        (
            "inputs: [a]\nruns: {using: node20, main: a}\n",
            "(Line: 1, Col: 9): Expected a mapping for 'inputs'",
        ),
        (
            "inputs:\n  a:\n    default: [1]\nruns: {using: node20, main: a}\n",
            "(Line: 3, Col: 14): A sequence was not expected",
        ),
        (
            "outputs:\n  a:\n    val: 1\nruns: {using: node20, main: a}\n",
            "(Line: 3, Col: 5): Unexpected value 'val'",
        ),
    ],
)
def test_errors_name_file_line_and_column(text: str, expected: str) -> None:
    with pytest.raises(ActionError) as raised:
        load_action(text, "actions/x/action.yml")
    assert f"actions/x/action.yml {expected}" in str(raised.value)
    assert raised.value.diagnostics


def test_every_problem_is_reported_in_file_order() -> None:
    text = "runs:\n  using: composite\n  steps:\n    - run: a\n      bogus: 1\n    - uses: nope\n"
    with pytest.raises(ActionError) as raised:
        load_action(text, "action.yml")
    assert [(d.line, d.message.split(":")[0]) for d in raised.value.diagnostics] == [
        (4, "Required property is missing"),
        (5, "Unexpected value 'bogus'"),
        (6, "Invalid action reference 'nope'"),
    ]


def test_unknown_top_level_and_input_keys_are_ignored_as_on_github() -> None:
    definition = _load(
        """\
        x-custom: [1, 2]
        inputs:
          a:
            type: string
        runs: {using: node20, main: a}
        """
    )
    assert definition.inputs == {"a": ActionInput()}


# -- inputs ----------------------------------------------------------------------------------------------------

_DEFINITION = _load(
    """\
    inputs:
      who:
        default: world
      token:
        default: ${{ github.token }}
      needed:
        required: true
      old:
        deprecationMessage: use 'who'
    runs: {using: composite, steps: []}
    """
)


def _evaluate(text: str) -> str:
    return text.replace("${{ github.token }}", "ghs_secret")


@pytest.mark.parametrize(
    ("given", "inputs", "warnings"),
    [
        ({}, {"who": "world", "token": "ghs_secret", "needed": "", "old": ""}, []),
        (
            {"who": "you", "needed": "x"},
            {"who": "you", "token": "ghs_secret", "needed": "x", "old": ""},
            [],
        ),
        (
            {"WHO": "case"},
            {"WHO": "case", "token": "ghs_secret", "needed": "", "old": ""},
            [],
        ),
        (
            {"old": "1"},
            {"who": "world", "token": "ghs_secret", "needed": "", "old": "1"},
            ["Input 'old' has been deprecated with message: use 'who'"],
        ),
        (
            {"extra": "1", "more": "2"},
            {"who": "world", "token": "ghs_secret", "needed": "", "old": "", "extra": "1", "more": "2"},
            ["Unexpected input(s) 'extra', 'more', valid inputs are ['who', 'token', 'needed', 'old']"],
        ),
    ],
)
def test_resolve_inputs(given: dict[str, str], inputs: dict[str, str], warnings: list[str]) -> None:
    assert resolve_inputs(_DEFINITION, given, _evaluate) == (inputs, warnings)


def test_defaults_are_evaluated_only_when_needed() -> None:
    seen: list[str] = []

    def evaluate(text: str) -> str:
        seen.append(text)
        return text

    resolve_inputs(_DEFINITION, {"token": "given", "who": "x"}, evaluate)
    assert seen == []


def test_docker_actions_also_accept_entrypoint_and_args() -> None:
    definition = _load("inputs: {a: {}}\nruns: {using: docker, image: Dockerfile}\n")
    assert resolve_inputs(definition, {"args": "x", "entryPoint": "y"}, _evaluate)[1] == []
    assert resolve_inputs(definition, {"b": "x"}, _evaluate)[1] == [
        "Unexpected input(s) 'b', valid inputs are ['entryPoint', 'args', 'a']"
    ]


@pytest.mark.parametrize(
    ("inputs", "env"),
    [
        ({"who-to-greet": "Mona"}, {"INPUT_WHO-TO-GREET": "Mona"}),
        ({"num octocats": "1"}, {"INPUT_NUM_OCTOCATS": "1"}),
        ({"MiXeD_case": ""}, {"INPUT_MIXED_CASE": ""}),
        ({"a": "1", "b.c": "2"}, {"INPUT_A": "1", "INPUT_B.C": "2"}),
        ({}, {}),
    ],
)
def test_input_env(inputs: dict[str, str], env: dict[str, str]) -> None:
    assert input_env(inputs) == env
