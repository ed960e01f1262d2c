"""YAML subtleties GitHub's parser has, and hostile input that must be refused quickly."""

import gc
import time

import pytest
from conveyor_workflow._loader import load_workflow
from conveyor_workflow._model import WorkflowError

PATH = "w.yml"
JOB = "jobs:\n  build:\n    runs-on: x\n    steps:\n      - run: echo\n"


def problems(text: str, **kwargs: int) -> list[str]:
    with pytest.raises(WorkflowError) as caught:
        load_workflow(text, PATH, **kwargs)
    return [d.message for d in caught.value.diagnostics]


def test_on_key_is_taken_literally_not_as_yaml_11_true() -> None:
    assert load_workflow(f"on: push\n{JOB}", PATH).on == {"push": {}}


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n", "Yes", "NO"])
def test_yaml_11_booleans_stay_strings(word: str) -> None:
    workflow = load_workflow(f"on: push\nenv:\n  {word}: {word}\n{JOB}", PATH)
    assert workflow.env == {word: word}


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("true", True),
        ("False", False),
        ("~", None),
        ("null", None),
        ("12", 12),
        ("0x1F", 31),
        ("0o17", 15),
        ("017", 17),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("'true'", "true"),
        ('"12"', "12"),
        ("1_000", "1_000"),
        ("2024-01-01", "2024-01-01"),
        ("0b101", "0b101"),
        ("12:30", "12:30"),
    ],
)
def test_scalars_resolve_like_yaml_12(literal: str, expected: object) -> None:
    workflow = load_workflow(
        f"on: push\n{JOB}        with:\n          v: {literal}\n".replace("run: echo", "uses: a/b@v1"), PATH
    )
    assert workflow.jobs["build"].steps[0].with_ == {"v": expected}


def test_anchors_and_aliases_are_expanded() -> None:
    text = (
        "on: push\njobs:\n  a:\n    runs-on: &os ubuntu-latest\n    env: &env {A: '1'}\n    steps: &steps\n"
        "      - run: echo\n  b:\n    runs-on: *os\n    env: *env\n    steps: *steps\n"
    )
    jobs = load_workflow(text, PATH).jobs
    assert jobs["b"].runs_on == "ubuntu-latest"
    assert jobs["b"].env == {"A": "1"}
    assert jobs["b"].steps == jobs["a"].steps


def test_duplicate_keys_are_errors() -> None:
    assert "'on' is already defined" in problems(f"on: push\non: pull_request\n{JOB}")
    assert "'A' is already defined" in problems(f"on: push\nenv:\n  A: 1\n  A: 2\n{JOB}")


def test_multi_document_file_is_an_error() -> None:
    found = problems(f"on: push\n{JOB}---\non: push\n")
    assert found == ["A workflow file must hold a single YAML document; found another one."]


def test_tabs_for_indentation_are_an_error() -> None:
    with pytest.raises(WorkflowError) as caught:
        load_workflow("on: push\njobs:\n\tbuild:\n", PATH)
    diagnostic = caught.value.diagnostics[0]
    assert (diagnostic.line, diagnostic.column) == (3, 1)
    assert "tab" in diagnostic.message


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "---\n"])
def test_empty_file_is_an_error(text: str) -> None:
    assert problems(text) == ["The workflow file is empty; it needs at least 'on' and 'jobs'."]


def test_yaml_syntax_error_has_its_position() -> None:
    with pytest.raises(WorkflowError) as caught:
        load_workflow("on: push\njobs: [\n", PATH)
    assert caught.value.diagnostics[0].line >= 2


def test_non_scalar_keys_are_errors() -> None:
    assert "A sequence was not expected" in problems(f"on: push\nenv:\n  ? [a]\n  : 1\n{JOB}")


def test_nul_character_is_an_error() -> None:
    assert problems("on: push\x00\n") == ["The workflow file contains a NUL character."]


def _fast(text: str, **kwargs: int) -> list[str]:
    # CPU time, so other processes on a busy machine do not count; the collector is run before and kept off
    # during the load, so a full collection of what earlier tests left behind does not count either.
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        found = problems(text, **kwargs)
        elapsed = time.process_time() - started
    finally:
        gc.enable()
    assert elapsed < 0.1
    return found


def test_text_over_max_bytes_is_refused() -> None:
    assert _fast("a" * 1_000_001) == ["The workflow file is larger than 1000000 bytes."]
    assert _fast("é" * 600, max_bytes=1000) == ["The workflow file is larger than 1000 bytes."]


def test_billion_laughs_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for index in range(1, 10):
        previous, name = chr(96 + index), chr(97 + index)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    found = _fast("\n".join(lines) + "\n")
    assert found == ["The workflow expands to more than 250000 YAML nodes (aliases)."]


def test_recursive_alias_is_refused() -> None:
    assert _fast("a: &a [*a]\n") == ["The workflow has an alias inside its own anchor; recursion is not allowed."]


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10_000 + "]" * 10_000,
        "{a: " * 10_000 + "}" * 10_000,
        "- " * 10_000 + "x",
        "a:\n" + "".join(" " * i + "a:\n" for i in range(1, 2000)),
    ],
    ids=["flow-sequences", "flow-mappings", "block-sequences", "block-mappings"],
)
def test_deep_nesting_is_refused_without_recursion_error(text: str) -> None:
    assert len(_fast(text)) == 1


def test_nesting_over_the_depth_cap_is_refused_under_libyamls_limit() -> None:
    found = _fast("on: " + "[" * 150 + "]" * 150 + "\n")
    assert found == ["The workflow nests deeper than 100 levels."]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on: push\non: \ud800\n", "The workflow file is not valid UTF-8 text."),
        ("on: push\n\x07\n", "Invalid YAML: unacceptable character #x0007: control characters are not allowed"),
    ],
)
def test_characters_yaml_refuses_give_a_diagnostic(text: str, expected: str) -> None:
    assert problems(text) == [expected]
