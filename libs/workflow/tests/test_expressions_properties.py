"""Properties of the expression language that must hold for any input."""

from __future__ import annotations

import contextlib
from typing import Any

from conveyor_workflow._expressions import ExpressionError, evaluate, evaluate_condition, interpolate
from hypothesis import given, settings
from hypothesis import strategies as st

CONTEXTS: dict[str, Any] = {
    "github": {"ref": "refs/heads/main", "event": {"labels": [{"name": "bug"}], "n": 1}},
    "matrix": {"os": "linux", "list": [1, "a", None, True]},
    "env": {},
}
ATOMS = [
    "github",
    "matrix",
    "env",
    "foo",
    "ref",
    "event",
    "labels",
    "name",
    "os",
    "list",
    "true",
    "false",
    "null",
    "NaN",
    "Infinity",
    "0",
    "1",
    "-1",
    "1.5",
    "0xff",
    "1e3",
    "'a'",
    "''",
    "'{0}'",
    "'}}'",
    "'[1]'",
    "contains",
    "startsWith",
    "endsWith",
    "format",
    "join",
    "toJSON",
    "fromJSON",
    "hashFiles",
    "case",
    "success",
    "failure",
    "always",
    "cancelled",
    "(",
    ")",
    "[",
    "]",
    ".",
    ",",
    "*",
    "!",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "'",
    "=",
    "&",
    "|",
    "${{",
    "}}",
    " ",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(min_value=-1e300, max_value=1e300)  # printed to 15 digits, the largest doubles would overflow
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


def _hash(patterns: Any) -> str:
    return "h"


def _outcome(call: Any) -> None:
    with contextlib.suppress(ExpressionError):
        call()


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60))
def test_random_text_raises_nothing_but_expression_error(text: str) -> None:
    _outcome(lambda: evaluate(text, CONTEXTS, hash_files=_hash))
    _outcome(lambda: interpolate(text, CONTEXTS, hash_files=_hash))
    _outcome(lambda: evaluate_condition(text, CONTEXTS, status="failure", hash_files=_hash))


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(ATOMS), max_size=25))
def test_random_token_soup_raises_nothing_but_expression_error(atoms: list[str]) -> None:
    expression = " ".join(atoms)
    _outcome(lambda: evaluate(expression, CONTEXTS, hash_files=_hash))
    _outcome(lambda: evaluate("".join(atoms), CONTEXTS, hash_files=_hash))
    _outcome(lambda: evaluate_condition(expression, CONTEXTS, hash_files=_hash))


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_to_json_of_from_json_round_trips(value: Any) -> None:
    text = evaluate("toJSON(value)", {"value": value})
    assert evaluate("fromJSON(text)", {"text": text}) == _as_printed(value)
    assert evaluate("toJSON(fromJSON(text))", {"text": text}) == text


def _as_printed(value: Any) -> Any:
    """`value` with its numbers as toJSON writes them: 15 significant digits, as GitHub prints numbers."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(f"{value:.15G}")
    if isinstance(value, list):
        return [_as_printed(item) for item in value]
    return {key: _as_printed(item) for key, item in value.items()}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_string_literals_round_trip(text: str) -> None:
    quoted = "'" + text.replace("'", "''") + "'"
    assert evaluate(quoted, {}) == text
    assert evaluate(f"{quoted} == value", {"value": text}) is True
