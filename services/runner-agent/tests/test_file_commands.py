"""Reading `$GITHUB_OUTPUT`, `$GITHUB_ENV` and `$GITHUB_PATH` as GitHub's runner does."""

from __future__ import annotations

import pytest
from conveyor_runner_agent.domain import FileCommandError, parse_env_file, parse_path_file, shell_command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("name=value\n", {"name": "value"}),
        ("a=1\nb=two words\n", {"a": "1", "b": "two words"}),
        ("a=1\na=2\n", {"a": "2"}),
        ("empty=\n", {"empty": ""}),
        ("url=https://x?a=b=c\n", {"url": "https://x?a=b=c"}),
        ("crlf=value\r\n", {"crlf": "value"}),
        ("no-final-newline=x", {"no-final-newline": "x"}),
        ("\n\nspaced=x\n\n", {"spaced": "x"}),
        ("story<<EOF\nline one\nline two\nEOF\n", {"story": "line one\nline two"}),
        ("json<<ghadelimiter_1\n{\"a\": 1}\nghadelimiter_1\nnext=2\n", {"json": '{"a": 1}', "next": "2"}),
        ("blank<<END\n\nEND\n", {"blank": ""}),
        ("eq<<END\nx=y\nEND\n", {"eq": "x=y"}),
    ],
)
def test_env_file(text: str, expected: dict[str, str]) -> None:
    assert parse_env_file(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("just words\n", "GITHUB_OUTPUT line 1: expected 'name=value' or 'name<<DELIMITER'"),
        ("=value\n", "GITHUB_OUTPUT line 1: the name is empty"),
        ("story<<EOF\nnever closed\n", "the delimiter 'EOF' of 'story' is never found"),
        ("x<<\n", "a '<<' block needs a delimiter"),
    ],
)
def test_env_file_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(FileCommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_env_file(text)


def test_path_file() -> None:
    assert parse_path_file("/opt/a/bin\n\n  /opt/b/bin  \n") == ["/opt/a/bin", "/opt/b/bin"]


@pytest.mark.parametrize(
    ("shell", "argv"),
    [
        (None, ["bash", "-e", "/s"]),
        ("bash", ["bash", "--noprofile", "--norc", "-eo", "pipefail", "/s"]),
        ("sh", ["sh", "-e", "/s"]),
        ("python", ["python", "/s"]),
        ("perl {0}", ["perl", "/s"]),
        ("bash -x {0}", ["bash", "-x", "/s"]),
    ],
)
def test_shells(shell: str | None, argv: list[str]) -> None:
    assert shell_command(shell).argv("/s") == argv


def test_a_step_in_a_job_container_that_names_no_shell_runs_sh() -> None:
    assert shell_command(None, in_container=True).argv("/s") == ["sh", "-e", "/s"]
    assert shell_command("bash", in_container=True).argv("/s")[:2] == ["bash", "--noprofile"]


def test_a_powershell_script_stops_at_the_first_error_and_exits_with_the_last_code() -> None:
    script = shell_command("pwsh").script("Write-Output hi")
    assert script.startswith("$ErrorActionPreference = 'stop'\nWrite-Output hi\n")
    assert script.endswith("if ((Test-Path -LiteralPath variable:\\LASTEXITCODE)) { exit $LASTEXITCODE }\n")
    assert shell_command(None).script("echo hi") == shell_command("bash").script("echo hi") == "echo hi"


def test_a_custom_shell_needs_the_script_placeholder() -> None:
    with pytest.raises(ValueError, match="has no '\\{0\\}'"):
        shell_command("fish")
