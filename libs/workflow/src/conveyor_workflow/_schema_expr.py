"""Where expressions may appear and which contexts they may use (GitHub's "Context availability" table)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_BASE = frozenset({"github", "needs", "strategy", "matrix", "vars", "inputs"})
_STEP = _BASE | {"job", "runner", "env", "secrets", "steps"}
_STATUS = frozenset({"always", "cancelled", "success", "failure"})


@dataclass(frozen=True, slots=True, eq=False)
class Place:
    """The contexts and functions (beyond the always-available ones) an expression may use somewhere.

    Places are the constants below, compared by identity: that keeps the hash that keys the check cache cheap.
    """

    contexts: frozenset[str]
    functions: frozenset[str] = frozenset()


NOWHERE: Place | None = None
RUN_NAME = Place(frozenset({"github", "inputs", "vars"}))
WORKFLOW_CONCURRENCY = RUN_NAME
WORKFLOW_ENV = Place(frozenset({"github", "secrets", "inputs", "vars"}))
CALL_INPUT_DEFAULT = RUN_NAME
CALL_OUTPUT_VALUE = Place(frozenset({"github", "jobs", "vars", "inputs"}))
JOB_IF = Place(frozenset({"github", "needs", "vars", "inputs"}), _STATUS)
STRATEGY = Place(frozenset({"github", "needs", "vars", "inputs"}))
JOB = Place(_BASE)  # name, runs-on, concurrency, container, environment, services, timeout, continue-on-error
JOB_ENV = Place(_BASE | {"secrets"})
JOB_SECRETS = JOB_ENV
JOB_DEFAULTS_RUN = Place(_BASE | {"env"})
CREDENTIALS = Place(_BASE | {"env", "secrets"})
CONTAINER_ENV = Place(_BASE | {"job", "runner", "env", "secrets"})
ENVIRONMENT_URL = Place(_BASE | {"job", "runner", "env", "steps"})
JOB_OUTPUTS = Place(_STEP)
STEP = Place(_STEP, frozenset({"hashfiles"}))
STEP_IF = Place(_STEP - {"secrets"}, _STATUS | {"hashfiles"})

_FUNCTIONS = frozenset({"contains", "startswith", "endswith", "format", "join", "tojson", "fromjson", "case"})
_LITERALS = frozenset({"true", "false", "null", "nan", "infinity"})
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"[0-9][0-9A-Za-z_.+-]*")


@lru_cache(maxsize=4096)
def split_template(text: str) -> tuple[tuple[tuple[int, str], ...], str | None]:
    """The `${{ }}` expressions in `text` as (offset, inner text), or an error when one is not closed."""
    found: list[tuple[int, str]] = []
    start = text.find("${{")
    while start != -1:
        index, quoted = start + 3, False
        while index < len(text):
            char = text[index]
            if char == "'":
                quoted = not quoted
            elif not quoted and text.startswith("}}", index):
                break
            index += 1
        else:
            return tuple(found), (
                "The expression is not closed. An unescaped ${{ sequence was found, "
                "but the closing }} sequence was not found."
            )
        found.append((start, text[start + 3 : index].strip()))
        start = text.find("${{", index + 2)
    return tuple(found), None


@lru_cache(maxsize=4096)
def check_expression(expression: str, place: Place) -> str | None:
    """Why `expression` (the text inside `${{ }}`) may not be used at `place`, or None when it may."""
    if not expression:
        return "An expression was expected"
    syntax = _syntax_error(expression)
    if syntax:
        return syntax
    for name, offset, is_call in _names(expression):
        lowered = name.lower()
        where = f"Located at position {offset + 1} within expression: {expression}"
        if is_call:
            if lowered not in _FUNCTIONS and lowered not in place.functions:
                return f"Unrecognized function: '{name}'. {where}"
        elif lowered not in place.contexts and lowered not in _LITERALS:
            return f"Unrecognized named-value: '{name}'. {where}"
    return None


def _names(expression: str) -> list[tuple[str, int, bool]]:
    """Named values and function calls: identifiers not after `.`, outside string literals."""
    names: list[tuple[str, int, bool]] = []
    index, previous = 0, ""
    while index < len(expression):
        char = expression[index]
        if char == "'":
            end = index + 1
            while end < len(expression):
                if expression[end] == "'":
                    if expression.startswith("''", end):
                        end += 2
                        continue
                    break
                end += 1
            index, previous = end + 1, "'"
            continue
        number = _NUMBER.match(expression, index) if char.isdigit() else None
        if number:
            index, previous = number.end(), "0"
            continue
        word = _WORD.match(expression, index)
        if word:
            rest = expression[word.end() :].lstrip()
            if previous != ".":
                names.append((word.group(), index, rest.startswith("(")))
            index, previous = word.end(), "a"
            continue
        if not char.isspace():
            previous = char
        index += 1
    return names


def _syntax_error(expression: str) -> str | None:
    parse = _parser()
    if parse is None:
        return None
    try:
        parse(expression)
    except ValueError as exc:
        return str(exc)
    except Exception:  # a bug in the parser must not crash loading; the expression is checked at run time
        return None
    return None


_PARSER: list[Callable[[str], Any] | None] = []


def _parser() -> Callable[[str], Any] | None:
    # Imported lazily: the expression package is optional for loading and must not be a hard cycle.
    if not _PARSER:
        try:
            module = importlib.import_module("conveyor_workflow._expressions")
            _PARSER.append(getattr(module, "parse_expression", None))
        except Exception:
            _PARSER.append(None)
    return _PARSER[0]
