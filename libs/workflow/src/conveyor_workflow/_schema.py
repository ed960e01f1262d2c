"""Reading composed YAML nodes against the workflow schema, collecting every problem on the way."""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from typing import Any

import yaml

from conveyor_workflow._expressions._values import format_number
from conveyor_workflow._loader_yaml import Problem, key_text, position, scalar
from conveyor_workflow._schema_expr import Place, check_expression, split_template

Scalar = str | int | float | bool | None
Fields = dict[str, tuple[yaml.Node, yaml.Node]]

_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_WHOLE_EXPRESSION = re.compile(r"\s*\$\{\{.*\}\}\s*\Z", re.DOTALL)


def as_text(value: Scalar) -> str:
    """A scalar as GitHub turns it into a string (`true`, `1`, `1.5`, '' for null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value)  # as GitHub prints a number: 15 significant digits, 1E+15
    return str(value)


def as_flag(value: Any) -> bool:
    """A boolean setting (`continue-on-error`, `fail-fast`, `cancel-in-progress`) from what its expression gave:
    a string counts as true only when it says `true`, so `${{ env.FLAG }}` holding `false` is false."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


class Reader:
    """Typed reads of nodes; each read that fails records a Problem and returns None."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def error(self, node: yaml.Node, message: str) -> None:
        line, column = position(node)
        self.problems.append(Problem(line, column, message))

    def unexpected(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            self.error(node, "A mapping was not expected")
        elif isinstance(node, yaml.SequenceNode):
            self.error(node, "A sequence was not expected")
        else:
            self.error(node, f"Unexpected value '{node.value}'")

    def pairs(self, node: yaml.Node) -> list[tuple[str, yaml.Node, yaml.Node]] | None:
        """The entries of a mapping in file order; null reads as an empty mapping."""
        if isinstance(node, yaml.MappingNode):
            return [(_key(key), key, value) for key, value in node.value]
        if is_null(node):
            return []
        self.unexpected(node)
        return None

    def fields(self, node: yaml.Node, allowed: Collection[str], required: Collection[str] = ()) -> Fields | None:
        """A mapping with known keys: unknown ones are `Unexpected value`, missing required ones reported."""
        found: Fields = {}
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = _key(key)
                if name not in allowed:
                    self.error(key, f"Unexpected value '{name}'")
                elif name not in found:
                    found[name] = (key, value)
        elif not is_null(node):
            self.unexpected(node)
            return None
        for name in required:
            if name not in found:
                self.error(node, f"Required property is missing: {name}")
        return found

    def text(self, node: yaml.Node, place: Place | None, *, non_empty: bool = False) -> str | None:
        """A scalar read as a string (numbers and booleans too); expressions in it are checked."""
        if not isinstance(node, yaml.ScalarNode):
            self.unexpected(node)
            return None
        value = scalar(node)
        if value is None and not non_empty:
            return None
        text = value if type(value) is str else as_text(value)
        if non_empty and not text:
            self.error(node, "Unexpected value ''")
            return None
        if "${{" in text:
            self.expressions(node, text, place)
        return text

    def expressions(self, node: yaml.Node, text: str, place: Place | None) -> None:
        if "${{" not in text:
            return
        found, unclosed = split_template(text)
        if unclosed:
            self.error(node, unclosed)
            return
        if place is None:
            self.error(node, "A template expression is not allowed in this context")
            return
        for _, expression in found:
            problem = check_expression(expression, place)
            if problem:
                self.error(node, problem)

    def flag(self, node: yaml.Node, place: Place | None) -> bool | str | None:
        """A boolean, or an expression that gives one."""
        value = scalar(node) if isinstance(node, yaml.ScalarNode) else node
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and _WHOLE_EXPRESSION.match(value):
            return self.text(node, place)
        self.unexpected(node)
        return None

    def number(self, node: yaml.Node, place: Place | None) -> float | str | None:
        """A number, or an expression that gives one."""
        value = scalar(node) if isinstance(node, yaml.ScalarNode) else node
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        if isinstance(value, str) and _WHOLE_EXPRESSION.match(value):
            return self.text(node, place)
        self.unexpected(node)
        return None

    def strings(self, node: yaml.Node, place: Place | None) -> list[str] | None:
        """A string or a sequence of strings, as a list."""
        if isinstance(node, yaml.SequenceNode):
            items = [self.text(item, place, non_empty=True) for item in node.value]
            return [item for item in items if item is not None]
        text = self.text(node, place, non_empty=True)
        return None if text is None else [text]

    def text_map(self, node: yaml.Node, place: Place | None) -> dict[str, str]:
        """A mapping of names to scalars turned into strings (`env`, `outputs`)."""
        result: dict[str, str] = {}
        for name, _, value in self.pairs(node) or ():
            text = self.text(value, place)
            if text is not None or is_null(value):
                result[name] = text or ""
        return result

    def scalar_value(self, node: yaml.Node, place: Place | None) -> Any:
        """A scalar as plain Python (a `with:` value): a sequence or mapping is an error."""
        if not isinstance(node, yaml.ScalarNode):
            kind = "mapping" if isinstance(node, yaml.MappingNode) else "sequence"
            self.error(node, f"A {kind} was not expected")
            return None
        return self.value(node, place)

    def value(self, node: yaml.Node, place: Place | None) -> Any:
        """Any value as plain Python, with expressions in its strings checked."""
        if isinstance(node, yaml.ScalarNode):
            value = scalar(node)
            if type(value) is str and "${{" in value:
                self.expressions(node, value, place)
            return value
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, place) for item in node.value]
        return {_key(key): self.value(value, place) for key, value in node.value}

    def condition(self, node: yaml.Node, place: Place) -> str | None:
        """An `if:` value: an expression with or without `${{ }}`."""
        if not isinstance(node, yaml.ScalarNode):
            self.unexpected(node)
            return None
        value = scalar(node)
        if value is None:
            return None
        text = as_text(value).strip()
        if "${{" in text:
            self.expressions(node, text, place)
        elif text:
            problem = check_expression(text, place)
            if problem:
                self.error(node, problem)
        return text

    def identifier(self, node: yaml.Node, name: str, kind: str = "", *, reserved: bool = False) -> bool:
        """Whether `name` is a valid id; with `reserved` (job and step ids), ids starting with `__` are GitHub's."""
        if reserved and name.startswith("__") and _ID.match(name):
            self.error(node, f"The identifier '{name}' is invalid. IDs starting with '__' are reserved.")
            return False
        if _ID.match(name) and len(name) < 100:
            return True
        self.error(
            node,
            f"The identifier '{name}' is invalid. "
            "IDs may only contain alphanumeric characters, '_', and '-'. "
            "IDs must start with a letter or '_' and must be less than 100 characters.",
        )
        return False


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and scalar(node) is None


def _key(node: yaml.Node) -> str:
    # `key_text`, with the common case (a scalar key, whose value is already text) inline
    return node.value if type(node) is yaml.ScalarNode else key_text(node)
