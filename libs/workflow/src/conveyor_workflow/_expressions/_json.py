"""toJSON and fromJSON as GitHub prints and reads JSON (Newtonsoft.Json, 2-space indentation)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from conveyor_workflow._expressions._values import format_number


def to_json(value: Any) -> str:
    """Pretty-printed JSON: objects and arrays one member a line, indented by two spaces."""
    out: list[str] = []
    _write(value, "", out)
    return "".join(out)


def from_json(text: str) -> Any:
    """Parse JSON text; raises ValueError with a readable reason."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise ValueError("the JSON value is nested too deeply") from None


def json_number(value: float | int) -> str:
    """A number in toJSON's output: written as GitHub converts it to a string (15 significant digits, `1E+15`,
    NaN and Infinity bare), not as a JSON serializer would."""
    return format_number(value)


def _write(value: Any, indent: str, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True or value is False:
        out.append("true" if value else "false")
    elif isinstance(value, int | float):
        out.append(json_number(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Mapping):
        if not value:
            out.append("{}")
            return
        inner = indent + "  "
        out.append("{")
        for position, (key, item) in enumerate(value.items()):
            out.append(",\n" if position else "\n")
            out.append(f"{inner}{json.dumps(str(key), ensure_ascii=False)}: ")
            _write(item, inner, out)
        out.append(f"\n{indent}}}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes):
        if not value:
            out.append("[]")
            return
        inner = indent + "  "
        out.append("[")
        for position, item in enumerate(value):
            out.append(",\n" if position else "\n")
            out.append(inner)
            _write(item, inner, out)
        out.append(f"\n{indent}]")
    else:
        out.append(json.dumps(str(value), ensure_ascii=False))
