"""`conveyor expr 'EXPR' [--context ctx.json]`: evaluate a GitHub Actions expression and print it as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from conveyor_workflow import ExpressionError, evaluate


def register(app: typer.Typer) -> None:
    """Add the `expr` command to `app`."""
    app.command("expr")(expr)


def expr(
    expression: Annotated[str, typer.Argument(help="The expression, with or without ${{ }}.")],
    context: Annotated[
        Path | None,
        typer.Option("--context", "-c", help='A JSON file of contexts: {"github": {...}, "matrix": {...}}.'),
    ] = None,
) -> None:
    """Evaluate EXPRESSION against the contexts in --context and print the value as JSON."""
    contexts = _read_contexts(context) if context is not None else {}
    try:
        value = evaluate(expression, contexts)
    except ExpressionError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _read_contexts(path: Path) -> dict[str, Any]:
    try:
        contexts: object = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"Cannot read context file {path}: {exc.strerror or exc}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        _fail(f"Context file {path} is not valid JSON: {exc}")
    if not isinstance(contexts, dict):
        _fail(f'Context file {path} must hold a JSON object of contexts, e.g. {{"github": {{}}}}')
    return contexts


def _fail(message: str) -> NoReturn:
    typer.echo(message.replace("\n", " "), err=True)
    raise typer.Exit(code=1)
