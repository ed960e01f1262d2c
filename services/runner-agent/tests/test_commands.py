"""Workflow commands, from GitHub's "Workflow commands for GitHub Actions" and its runner's behaviour."""

from __future__ import annotations

from typing import Any

import pytest
from conveyor_runner_agent.domain import (
    AddPath,
    Annotation,
    CommandFailed,
    CommandProcessor,
    Effect,
    GroupEnd,
    GroupStart,
    Mask,
    Output,
    SaveState,
    SetEnv,
    parse_command,
)
from hypothesis import given
from hypothesis import strategies as st

DEPRECATED_SET_OUTPUT = (
    "The `set-output` command is deprecated and will be disabled soon. Please upgrade to using Environment Files. "
    "For more information see: "
    "https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/"
)
SET_ENV_DISABLED = (
    "The `set-env` command is disabled. Please upgrade to using Environment Files or opt into unsecure command "
    "execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to `true`. For more "
    "information see: https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/"
)


def run(lines: list[str], **options: Any) -> tuple[list[str], list[Effect]]:
    processor = CommandProcessor(**options)
    shown: list[str] = []
    effects: list[Effect] = []
    for line in lines:
        result = processor.process(line)
        shown.extend(result.lines)
        effects.extend(result.effects)
    return shown, effects


@pytest.mark.parametrize(
    ("line", "name", "properties", "data"),
    [
        ("::warning::hello", "warning", {}, "hello"),
        ("  ::warning::indented", "warning", {}, "indented"),
        ("::WARNING::upper case name", "warning", {}, "upper case name"),
        ("::error file=app.js,line=1::Missing ;", "error", {"file": "app.js", "line": "1"}, "Missing ;"),
        ("::notice title=a%3Ab%2Cc%25d::x", "notice", {"title": "a:b,c%d"}, "x"),
        ("::debug::100%25 done%0Anext line%0D", "debug", {}, "100% done\nnext line\r"),
        ("::debug::a%3Ab%2Cc", "debug", {}, "a%3Ab%2Cc"),
        ("::debug::%2525", "debug", {}, "%25"),
        ("::debug::%0a stays", "debug", {}, "%0a stays"),
        ("::set-output name=x::a::b", "set-output", {"name": "x"}, "a::b"),
        ("::error file=a,=b,c=,d::m", "error", {"file": "a"}, "m"),
        ("::group::", "group", {}, ""),
    ],
)
def test_parse_command_reads_name_properties_and_unescaped_data(
    line: str, name: str, properties: dict[str, str], data: str
) -> None:
    command = parse_command(line)
    assert command is not None
    assert (command.name, dict(command.properties), command.data) == (name, properties, data)


@pytest.mark.parametrize(
    "line",
    ["plain output", "::warning", "echo ::warning::x", "::unknown-command::x", "::::", "## [error]x", ""],
)
def test_parse_command_leaves_ordinary_output_alone(line: str) -> None:
    assert parse_command(line) is None


@pytest.mark.parametrize(
    ("line", "shown", "effects"),
    [
        ("hello world", ["hello world"], []),
        ("::add-mask::s3cret", [], [Mask("s3cret")]),
        ("::group::Build", ["##[group]Build"], [GroupStart("Build")]),
        ("::endgroup::", ["##[endgroup]"], [GroupEnd()]),
        ("::warning::careful", ["##[warning]careful"], [Annotation("warning", "careful")]),
        ("::notice::fyi", ["##[notice]fyi"], [Annotation("notice", "fyi")]),
        ("::error::two%0Alines", ["##[error]two", "##[error]lines"], [Annotation("error", "two\nlines")]),
        ("::debug::hidden", [], []),
        ("::echo::on", [], []),
        ("::add-matcher::.github/matcher.json", [], []),
        ("::unknown::shown", ["::unknown::shown"], []),
    ],
)
def test_each_command_shows_and_does_what_github_does(line: str, shown: list[str], effects: list[Effect]) -> None:
    assert run([line]) == (shown, effects)


def test_an_annotation_carries_its_file_position_and_title() -> None:
    _, effects = run(["::error file=src/app.py,line=10,endLine=12,title=Bad code::Oops"])
    assert effects == [Annotation("error", "Oops", file="src/app.py", line=10, end_line=12, title="Bad code")]


def test_annotation_properties_are_case_insensitive_and_file_relative_to_the_workspace() -> None:
    _, effects = run(["::warning FILE=/w/repo/src/a.py,Line=3,COL=4,endColumn=9::m"], workspace="/w/repo")
    assert effects == [Annotation("warning", "m", file="src/a.py", line=3, col=4, end_line=None, end_col=9)]


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ("line=3,col=4,endColumn=9", (3, 4, None, 9)),
        ("endLine=5", (5, None, 5, None)),
        ("line=2,endColumn=7", (2, 7, None, 7)),
        ("col=4", (None, None, None, None)),
        ("line=2,endLine=4,col=1", (2, None, 4, None)),
        ("line=5,endLine=3", (None, None, None, None)),
        ("line=1,col=8,endColumn=2", (1, None, None, None)),
        ("line=x,col=2", (None, None, None, None)),
        ("line= 7 ", (7, None, None, None)),
        ("line=1_0", (None, None, None, None)),
    ],
)
def test_inconsistent_positions_are_repaired_as_github_does(properties: str, expected: tuple[int | None, ...]) -> None:
    _, [annotation] = run([f"::error {properties}::m"])
    assert isinstance(annotation, Annotation)
    assert (annotation.line, annotation.col, annotation.end_line, annotation.end_col) == expected


def test_debug_messages_show_only_with_step_debug() -> None:
    assert run(["::debug::details"], debug=True)[0] == ["##[debug]details"]
    assert run(["::debug::details"])[0] == []


def test_echo_on_shows_command_lines_but_never_a_mask_value() -> None:
    shown, effects = run(["::echo::on", "::set-output name=a::1", "::add-mask::hush", "::echo::off", "::group::g"])
    assert shown == [
        "::set-output name=a::1",
        f"##[warning]{DEPRECATED_SET_OUTPUT}",
        "::add-mask::***",
        "::echo::off",
        "##[group]g",
    ]
    assert Mask("hush") in effects


def test_step_debug_turns_echo_on_from_the_start() -> None:
    processor = CommandProcessor(debug=True)
    assert processor.echo
    assert processor.process("::group::g").lines == ("::group::g", "##[group]g")


def test_set_output_still_sets_the_output_with_githubs_deprecation_warning() -> None:
    shown, effects = run(["::set-output name=result::42"])
    assert shown == [f"##[warning]{DEPRECATED_SET_OUTPUT}"]
    assert effects == [Annotation("warning", DEPRECATED_SET_OUTPUT), Output("result", "42")]


def test_save_state_is_saved_with_its_deprecation_warning() -> None:
    _, effects = run(["::save-state name=pid::123"])
    assert effects[-1] == SaveState("pid", "123")
    assert isinstance(effects[0], Annotation)
    assert "`save-state` command is deprecated" in effects[0].message


def test_set_output_without_a_name_fails_the_step() -> None:
    shown, effects = run(["::set-output::42"])
    message = "Required field 'name' is missing in ##[set-output] command."
    assert shown[-2:] == ["##[error]Unable to process command '::set-output::42' successfully.", f"##[error]{message}"]
    assert effects[-1] == CommandFailed(message)


@pytest.mark.parametrize(
    ("line", "command"), [("::set-env name=A::1", "set-env"), ("::add-path::/opt/bin", "add-path")]
)
def test_set_env_and_add_path_are_disabled_and_fail_the_step(line: str, command: str) -> None:
    shown, effects = run([line])
    message = SET_ENV_DISABLED.replace("`set-env`", f"`{command}`")
    assert shown == [f"##[error]Unable to process command '{line}' successfully.", f"##[error]{message}"]
    assert effects == [
        Annotation("error", f"Unable to process command '{line}' successfully."),
        Annotation("error", message),
        CommandFailed(message),
    ]


def test_unsecure_commands_work_when_allowed_except_node_options() -> None:
    lines = ["::set-env name=A::1", "::add-path::/opt/bin", "::set-env name=node_options::--x"]
    _, effects = run(lines, allow_unsecure_commands=True)
    assert effects[:2] == [SetEnv("A", "1"), AddPath("/opt/bin")]
    refused = "Can't update NODE_OPTIONS environment variable using ::set-env:: command."
    assert effects[2] == Annotation("error", refused)
    assert not any(isinstance(effect, CommandFailed) for effect in effects)


def test_an_empty_mask_is_refused_with_a_warning() -> None:
    shown, effects = run(["::add-mask::   "])
    assert shown == ["##[warning]Can't add secret mask for empty string in ##[add-mask] command."]
    assert not any(isinstance(effect, Mask) for effect in effects)


def test_an_invalid_echo_value_fails_the_step() -> None:
    processor = CommandProcessor()
    result = processor.process("::echo::loud")
    assert result.lines[0] == "##[error]Unable to process command '::echo::loud' successfully."
    assert isinstance(result.effects[-1], CommandFailed)


def test_stop_commands_shows_everything_verbatim_until_the_token() -> None:
    lines = ["::stop-commands::tok3n", "::warning::not a warning", "::add-mask::not-a-mask", "::TOK3N::"]
    lines.append("::warning::w")
    shown, effects = run(lines)
    assert shown == ["::stop-commands::tok3n", "::warning::not a warning", "::add-mask::not-a-mask", "::TOK3N::",
                     "##[warning]w"]
    assert effects == [Annotation("warning", "w")]


@pytest.mark.parametrize("token", ["", "pause-logging", "warning", "Set-Output"])
def test_a_guessable_stop_token_is_refused_and_commands_keep_working(token: str) -> None:
    processor = CommandProcessor()
    refused = processor.process(f"::stop-commands::{token}")
    assert isinstance(refused.effects[-1], CommandFailed)
    assert "You cannot use a endToken" in refused.effects[-1].message
    assert not processor.stopped
    assert processor.process("::add-mask::abc").effects == (Mask("abc"),)


def test_a_guessable_stop_token_is_accepted_when_allowed() -> None:
    processor = CommandProcessor(allow_unsecure_stop_tokens=True)
    processor.process("::stop-commands::pause-logging")
    assert processor.stopped
    assert processor.process("::pause-logging::").lines == ("::pause-logging::",)
    assert not processor.stopped


def test_an_empty_stop_token_allowed_as_unsecure_never_resumes() -> None:
    processor = CommandProcessor(allow_unsecure_stop_tokens=True)
    processor.process("::stop-commands::")
    assert processor.process("::::").lines == ("::::",)
    assert processor.process("::warning::w").effects == ()
    assert processor.stopped


def test_processed_text_joins_the_lines_or_is_none_when_hidden() -> None:
    processor = CommandProcessor()
    assert processor.process("::add-mask::x1").text is None
    assert processor.process("::error::a%0Ab").text == "##[error]a\n##[error]b"


@given(st.text())
def test_shown_lines_never_gain_a_newline(line: str) -> None:
    result = CommandProcessor(debug=True).process(line)
    if "\n" not in line:
        assert all("\n" not in shown for shown in result.lines)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n")), max_size=20))
def test_while_stopped_every_line_is_shown_verbatim(lines: list[str]) -> None:
    processor = CommandProcessor()
    processor.process("::stop-commands::9f86d081884c7d65")
    shown = [processor.process(line) for line in lines if "9f86d081884c7d65" not in line.lower()]
    assert [result.lines for result in shown] == [(line,) for line in lines if "9f86d081884c7d65" not in line.lower()]
    assert all(result.effects == () for result in shown)


@given(st.text(alphabet=st.characters(blacklist_characters="\r\n:"), min_size=1).filter(lambda t: t == t.lstrip()))
def test_lines_that_are_not_commands_are_shown_unchanged(line: str) -> None:
    assert CommandProcessor().process(line).lines == (line,)
