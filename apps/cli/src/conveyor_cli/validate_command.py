"""`conveyor validate FILE|DIR...`: check workflow files the way GitHub would, without running them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from conveyor_workflow import WorkflowError, load_workflow

_SUFFIXES = (".yml", ".yaml")


def register(app: typer.Typer) -> None:
    """Add the `validate` command to `app`."""
    app.command("validate")(validate)


def validate(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Workflow files, or directories (their .github/workflows, else their own *.yml)."),
    ],
) -> None:
    """Print every problem in the given workflow files; exit 1 when any file is invalid."""
    files = _workflow_files(paths)
    if not files:
        typer.echo("no workflow files found", err=True)
        raise typer.Exit(1)
    invalid = 0
    for file in files:
        try:
            load_workflow(file.read_text(encoding="utf-8", errors="replace"), str(file))
        except WorkflowError as error:
            invalid += 1
            for diagnostic in error.diagnostics:
                typer.echo(str(diagnostic))
        except OSError as error:
            invalid += 1
            typer.echo(f"{file} (Line: 1, Col: 1): cannot read the file: {error.strerror or error}")
        else:
            typer.echo(f"{file}: ok")
    if invalid:
        raise typer.Exit(1)


def _workflow_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        nested = path / ".github" / "workflows"
        folder = nested if nested.is_dir() else path
        files.extend(sorted(p for p in folder.iterdir() if p.suffix in _SUFFIXES and p.is_file()))
    return files
