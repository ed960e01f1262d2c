"""evaluate, interpolate and evaluate_condition: the entry points, with parsed expressions cached."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from conveyor_workflow._expressions import _values as v
from conveyor_workflow._expressions._compiler import Env, Fn, compile_node
from conveyor_workflow._expressions._errors import ExpressionError
from conveyor_workflow._expressions._json import to_json
from conveyor_workflow._expressions._parser import STATUS_FUNCTIONS, Call, NamedValue, Node, parse, walk

Status = Literal["success", "failure", "cancelled", "skipped"]
"""What the status functions report: `skipped` (a job it needs was skipped) makes success(), failure() and
cancelled() all false, so only an `if:` with always() (or a negation) lets such a job run."""
HashFiles = Callable[[Sequence[str]], str]

_MISSING = object()
_UNCLOSED = (
    "The expression is not closed. An unescaped ${{ sequence was found, but the closing }} sequence was not found"
)


@dataclass(frozen=True, slots=True)
class _Compiled:
    expression: str
    tree: Node
    run: Fn
    names: tuple[tuple[str, str, int], ...]  # (lower-cased name, name as written, 0-based position)
    uses_status: bool


def parse_expression(expression: str) -> Node:
    """Parse an expression (a surrounding `${{ }}` is accepted) into its tree; raises ExpressionError."""
    return _compile(expression).tree


def named_values(expression: str) -> frozenset[str]:
    """The lower-cased context names an expression uses, e.g. {'github', 'matrix'}."""
    return frozenset(name for name, _, _ in _compile(expression).names)


def evaluate(
    expression: str,
    contexts: Mapping[str, Any],
    *,
    status: Status = "success",
    hash_files: HashFiles | None = None,
) -> Any:
    """Evaluate one expression (the text inside `${{ }}`; the `${{ }}` itself may be included).

    Context names are matched case-insensitively; a name not in `contexts` is an error.
    The result is plain data: None, bool, int/float, str, list or the Mappings found in `contexts`.
    """
    return _run(_compile(expression), contexts, status, hash_files)


def interpolate(
    text: str,
    contexts: Mapping[str, Any],
    *,
    status: Status = "success",
    hash_files: HashFiles | None = None,
) -> str:
    """Replace each `${{ expr }}` in `text` by its value as a string: null is '', an object or array is JSON when
    it is the whole text, and `Object` or `Array` within other text, as GitHub's `format` writes them."""
    parts = _template(text)
    if len(parts) == 1:
        part = parts[0]
        return part if isinstance(part, str) else _interpolated_string(_run(part, contexts, status, hash_files))
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        else:
            out.append(v.to_string(_run(part, contexts, status, hash_files)))
    return "".join(out)


def evaluate_condition(
    condition: str | bool | None,
    contexts: Mapping[str, Any],
    *,
    status: Status = "success",
    hash_files: HashFiles | None = None,
) -> bool:
    """GitHub's `if:` rules: no condition means `success()`; a condition that calls none of
    success(), failure(), cancelled() and always() means `success() && (condition)`."""
    if condition is None:
        return status == "success"
    if isinstance(condition, bool):
        condition = "true" if condition else "false"
    compiled, template = _condition(condition)
    if template is not None:
        # `if: ${{ a }} == b` is a string with an expression inside: truthy unless it comes out empty.
        value: Any = interpolate(template, contexts, status=status, hash_files=hash_files)
        return status == "success" and value != ""
    assert compiled is not None
    if compiled.uses_status:
        return v.truthy(_run(compiled, contexts, status, hash_files))
    if status != "success":
        _bind(compiled, contexts)  # unknown names are errors whatever the status
        return False
    return v.truthy(_run(compiled, contexts, status, hash_files))


def _run(compiled: _Compiled, contexts: Mapping[str, Any], status: str, hash_files: HashFiles | None) -> Any:
    result = compiled.run(Env(_bind(compiled, contexts), status, hash_files))
    if type(result) is v.FilteredArray:
        return list(result)
    return result


def _bind(compiled: _Compiled, contexts: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, written, position in compiled.names:
        value = contexts.get(name, _MISSING)
        if value is _MISSING:
            value = next((item for key, item in contexts.items() if key.lower() == name), _MISSING)
            if value is _MISSING:
                raise ExpressionError(f"Unrecognized named-value: '{written}'", compiled.expression, position + 1)
        values[name] = value
    return values


def _interpolated_string(value: Any) -> str:
    kind = v.kind(value)
    if kind in (v.ARRAY, v.OBJECT):
        return to_json(value)
    return v.to_string(value)


def _unwrap(expression: str) -> str:
    stripped = expression.strip()
    if stripped.startswith("${{") and stripped.endswith("}}"):
        end = _closing_braces(stripped, 3)
        if end == len(stripped) - 2:
            return stripped[3:-2].strip()
    return expression


def _closing_braces(text: str, start: int) -> int:
    """Index of the `}}` closing an expression that starts at `start`, skipping quoted strings; -1 if none."""
    i, n = start, len(text)
    while i < n - 1:
        c = text[i]
        if c == "'":
            close = text.find("'", i + 1)
            if close < 0:
                return -1
            i = close + 1  # '' inside a string is two adjacent strings here: same outcome
        elif c == "}" and text[i + 1] == "}":
            return i
        else:
            i += 1
    return -1


@lru_cache(maxsize=4096)
def _compile(expression: str) -> _Compiled:
    text = _unwrap(expression)
    tree = parse(text)
    names: dict[str, tuple[str, str, int]] = {}
    uses_status = False
    for node in sorted(walk(tree), key=lambda node: node.pos):
        if isinstance(node, NamedValue):
            names.setdefault(node.name.lower(), (node.name.lower(), node.name, node.pos))
        elif isinstance(node, Call) and node.key in STATUS_FUNCTIONS:
            uses_status = True
    return _Compiled(text, tree, compile_node(tree, text), tuple(names.values()), uses_status)


@lru_cache(maxsize=4096)
def _template(text: str) -> tuple[str | _Compiled, ...]:
    parts: list[str | _Compiled] = []
    i = 0
    while (start := text.find("${{", i)) >= 0:
        end = _closing_braces(text, start + 3)
        if end < 0:
            raise ExpressionError(_UNCLOSED, text, start + 1)
        if start > i:
            parts.append(text[i:start])
        inner = text[start + 3 : end].strip()  # as GitHub reads it: error positions count from its first symbol
        if not inner:
            raise ExpressionError("An expression was expected", text, start + 1)
        parts.append(_compile(inner))
        i = end + 2
    if i < len(text) or not parts:
        parts.append(text[i:])
    return tuple(parts)


@lru_cache(maxsize=4096)
def _condition(condition: str) -> tuple[_Compiled | None, str | None]:
    stripped = condition.strip()
    if not stripped:
        return _compile("success()"), None
    unwrapped = _unwrap(stripped)
    if unwrapped is stripped and "${{" in stripped:
        _template(stripped)  # report syntax errors now
        return None, stripped
    if not unwrapped.strip():
        raise ExpressionError("An expression was expected", stripped, 1)  # `${{ }}`: braces with nothing in them
    return _compile(unwrapped), None
