"""`conveyor expr` evaluates one expression and prints JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from conveyor_cli.expr_command import register
from typer.testing import CliRunner


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps typer from collapsing the app into `expr`
        """Does nothing."""

    return app


@pytest.fixture
def context_file(tmp_path: Path) -> Path:
    path = tmp_path / "ctx.json"
    path.write_text(json.dumps({"github": {"ref": "refs/heads/main"}, "matrix": {"os": ["a", "b"]}}))
    return path


def run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["expr", *args])
    return result.exit_code, result.stdout, result.stderr


def test_prints_the_value_as_json(app: typer.Typer, context_file: Path) -> None:
    code, out, _ = run(app, "github.ref == 'refs/heads/main'", "--context", str(context_file))
    assert (code, out) == (0, "true\n")
    code, out, _ = run(app, "${{ matrix.os }}", "--context", str(context_file))
    assert (code, json.loads(out)) == (0, ["a", "b"])


def test_works_without_contexts(app: typer.Typer) -> None:
    code, out, _ = run(app, "format('{0}-{1}', 1.0, null)")
    assert (code, out) == (0, '"1-"\n')


def test_a_bad_expression_exits_1_with_one_line(app: typer.Typer) -> None:
    code, out, err = run(app, "nope.ref")
    assert code == 1
    assert out == ""
    assert err == "Unrecognized named-value: 'nope'. Located at position 1 within expression: nope.ref\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "is not valid JSON"), ("[1, 2]", "must hold a JSON object")],
)
def test_a_bad_context_file_exits_1(app: typer.Typer, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "ctx.json"
    path.write_text(content)
    code, _, err = run(app, "1", "--context", str(path))
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert err.count("\n") == 1


def test_a_missing_context_file_exits_1(app: typer.Typer, tmp_path: Path) -> None:
    code, _, err = run(app, "1", "--context", str(tmp_path / "absent.json"))
    assert code == 1
    assert "Cannot read context file" in err
