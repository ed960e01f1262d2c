"""Turns a parsed expression into nested Python closures, so evaluating it is a few calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from conveyor_workflow._expressions import _values as v
from conveyor_workflow._expressions._errors import ExpressionError
from conveyor_workflow._expressions._functions import compile_call
from conveyor_workflow._expressions._parser import (
    Call,
    Compare,
    Index,
    Literal,
    Logical,
    NamedValue,
    Node,
    Not,
    Wildcard,
)


class Env:
    """What one evaluation sees: the named values used (lower-cased names), the status, hashFiles."""

    __slots__ = ("hash_files", "status", "values")

    def __init__(
        self,
        values: dict[str, Any],
        status: str,
        hash_files: Callable[[Sequence[str]], str] | None,
    ) -> None:
        self.values = values
        self.status = status
        self.hash_files = hash_files


Fn = Callable[[Env], Any]
_MISSING = object()


def compile_node(node: Node, expression: str) -> Fn:
    if isinstance(node, Literal):
        return _constant(node.value)
    if isinstance(node, NamedValue):
        return _named_value(node.name.lower())
    if isinstance(node, Index):
        return _index(node, expression)
    if isinstance(node, Not):
        operand = compile_node(node.operand, expression)
        return lambda env: not v.truthy(operand(env))
    if isinstance(node, Compare):
        return _compare(node, expression)
    if isinstance(node, Logical):
        return _logical(node, expression)
    if isinstance(node, Call):
        args = [compile_node(arg, expression) for arg in node.args]
        return compile_call(node, args, expression)
    raise ExpressionError("Unexpected symbol: '*'", expression, node.pos + 1)  # a stray Wildcard


def _constant(value: Any) -> Fn:
    return lambda env: value


def _named_value(name: str) -> Fn:
    return lambda env: env.values[name]


def _property_path(node: Index) -> tuple[str, list[str]] | None:
    """`github.event.ref` as ('github', ['event', 'ref']) when it is a plain chain of names."""
    names: list[str] = []
    current: Node = node
    while isinstance(current, Index):
        if not (isinstance(current.key, Literal) and isinstance(current.key.value, str)):
            return None
        names.append(current.key.value)
        current = current.target
    if not isinstance(current, NamedValue):
        return None
    names.reverse()
    return current.name.lower(), names


def _step(target: Any, name: str) -> Any:
    if type(target) is dict:
        found = target.get(name, _MISSING)
        if found is not _MISSING:
            return found
    return v.index(target, name)


def _index(node: Index, expression: str) -> Fn:
    path = _property_path(node)
    if path is not None:
        root, names = path
        if len(names) == 1:
            (only,) = names
            return lambda env: _step(env.values[root], only)

        def walk_path(env: Env) -> Any:
            value = env.values[root]
            for name in names:
                value = _step(value, name)
            return value

        return walk_path
    target = compile_node(node.target, expression)
    if isinstance(node.key, Wildcard):
        return lambda env: v.wildcard(target(env))
    key = compile_node(node.key, expression)
    return lambda env: v.index(target(env), key(env))


def _compare(node: Compare, expression: str) -> Fn:
    left = compile_node(node.left, expression)
    right = compile_node(node.right, expression)
    op = node.op
    if op in ("==", "!=") and isinstance(node.right, Literal) and isinstance(node.right.value, str):
        constant: str = node.right.value
        folded = v.fold(constant)

        def equals_constant(env: Env) -> bool:
            value = left(env)
            if type(value) is str:
                return value == constant or v.fold(value) == folded
            return v.equal(value, constant)

        if op == "==":
            return equals_constant
        return lambda env: not equals_constant(env)
    if op == "==":
        return lambda env: v.equal(left(env), right(env))
    if op == "!=":
        return lambda env: not v.equal(left(env), right(env))
    if op == "<":
        return lambda env: v.less_than(left(env), right(env))
    if op == ">":
        return lambda env: v.greater_than(left(env), right(env))
    if op == "<=":

        def less_or_equal(env: Env) -> bool:
            a, b = left(env), right(env)
            return v.equal(a, b) or v.less_than(a, b)

        return less_or_equal

    def greater_or_equal(env: Env) -> bool:
        a, b = left(env), right(env)
        return v.equal(a, b) or v.greater_than(a, b)

    return greater_or_equal


def _logical(node: Logical, expression: str) -> Fn:
    operands = [compile_node(operand, expression) for operand in node.operands]
    truthy = v.truthy
    stop_when = node.op == "||"  # || stops at the first truthy operand, && at the first falsy one
    if len(operands) == 2:
        first, second = operands

        def two(env: Env) -> Any:
            value = first(env)
            if truthy(value) is stop_when:
                return value
            return second(env)

        return two
    *leading, last = operands

    def many(env: Env) -> Any:
        for operand in leading:
            value = operand(env)
            if truthy(value) is stop_when:
                return value
        return last(env)

    return many
