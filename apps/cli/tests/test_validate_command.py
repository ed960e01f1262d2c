"""`conveyor validate` on files and directories, through a throwaway Typer app."""

from pathlib import Path

import pytest
import typer
from conveyor_cli.validate_command import register
from typer.testing import CliRunner

VALID = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n"
INVALID = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    foo: 1\n    steps:\n      - name: x\n"


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:  # a second command keeps Typer from collapsing `validate` into the app itself
        """Unused."""

    return app


def invoke(app: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", *args])
    return result.exit_code, result.output


def test_valid_file_prints_ok_and_exits_0(app: typer.Typer, tmp_path: Path) -> None:
    file = tmp_path / "ci.yml"
    file.write_text(VALID)
    assert invoke(app, str(file)) == (0, f"{file}: ok\n")


def test_invalid_file_prints_every_diagnostic_and_exits_1(app: typer.Typer, tmp_path: Path) -> None:
    file = tmp_path / "ci.yml"
    file.write_text(INVALID)
    code, output = invoke(app, str(file))
    assert code == 1
    assert output.splitlines() == [
        f"{file} (Line: 5, Col: 5): Unexpected value 'foo'",
        f"{file} (Line: 7, Col: 9): Required property is missing: run or uses",
    ]


def test_directory_means_its_github_workflows(app: typer.Typer, tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "a.yml").write_text(VALID)
    (workflows / "b.yaml").write_text(INVALID)
    (workflows / "notes.txt").write_text("not a workflow")
    code, output = invoke(app, str(tmp_path))
    assert code == 1
    assert f"{workflows / 'a.yml'}: ok" in output
    assert f"{workflows / 'b.yaml'} (Line: 5, Col: 5): Unexpected value 'foo'" in output
    assert "notes.txt" not in output


def test_directory_without_github_folder_means_its_own_yaml_files(app: typer.Typer, tmp_path: Path) -> None:
    (tmp_path / "one.yml").write_text(VALID)
    (tmp_path / "two.yaml").write_text(VALID)
    assert invoke(app, str(tmp_path)) == (0, f"{tmp_path / 'one.yml'}: ok\n{tmp_path / 'two.yaml'}: ok\n")


def test_missing_file_is_reported_and_exits_1(app: typer.Typer, tmp_path: Path) -> None:
    code, output = invoke(app, str(tmp_path / "absent.yml"))
    assert code == 1
    assert "cannot read the file" in output


def test_empty_directory_exits_1(app: typer.Typer, tmp_path: Path) -> None:
    code, _ = invoke(app, str(tmp_path))
    assert code == 1
