"""Parses an expression into a small tree, with GitHub's error messages and limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from conveyor_workflow._expressions import _lexer as lx
from conveyor_workflow._expressions._errors import ExpressionError

MAX_DEPTH: Final = 50
MAX_LENGTH: Final = 21_000

# Lower-cased function name -> (minimum, maximum) number of parameters.
FUNCTION_ARITY: Final[dict[str, tuple[int, int]]] = {
    "contains": (2, 2),
    "startswith": (2, 2),
    "endswith": (2, 2),
    "format": (1, 255),
    "join": (1, 2),
    "tojson": (1, 1),
    "fromjson": (1, 1),
    "hashfiles": (1, 255),
    "case": (3, 255),
    "success": (0, 0),
    "failure": (0, 0),
    "cancelled": (0, 0),
    "always": (0, 0),
}
STATUS_FUNCTIONS: Final = frozenset({"success", "failure", "cancelled", "always"})
_EQUALITY: Final = frozenset({"==", "!="})
_RELATIONAL: Final = frozenset({"<", "<=", ">", ">="})


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any
    pos: int
    depth: int = 1


@dataclass(frozen=True, slots=True)
class NamedValue:
    name: str  # as written; contexts are matched case-insensitively
    pos: int
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Wildcard:
    pos: int
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Index:
    """`target.name`, `target['name']`, `target[0]`, `target.*` and `target[*]`."""

    target: Node
    key: Node
    pos: int
    depth: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    pos: int
    depth: int


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # one of == != < <= > >=
    left: Node
    right: Node
    pos: int
    depth: int


@dataclass(frozen=True, slots=True)
class Logical:
    op: str  # && or ||
    operands: tuple[Node, ...]
    pos: int
    depth: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # as written; `key` is the lower-cased name
    args: tuple[Node, ...]
    pos: int
    depth: int

    @property
    def key(self) -> str:
        return self.name.lower()


Node = Literal | NamedValue | Wildcard | Index | Not | Compare | Logical | Call


def parse(expression: str) -> Node:
    """Parse the text of an expression (without `${{ }}`); an empty expression is `null`."""
    if len(expression) > MAX_LENGTH:
        raise ExpressionError(f"Exceeded max expression length {MAX_LENGTH}")
    return _Parser(expression).parse()


def walk(node: Node) -> list[Node]:
    """Every node of the tree, parents before children."""
    found: list[Node] = []
    stack = [node]
    while stack:
        current = stack.pop()
        found.append(current)
        if isinstance(current, Index):
            stack += (current.target, current.key)
        elif isinstance(current, Not):
            stack.append(current.operand)
        elif isinstance(current, Compare):
            stack += (current.left, current.right)
        elif isinstance(current, Logical):
            stack += current.operands
        elif isinstance(current, Call):
            stack += current.args
    return found


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = lx.tokenize(expression)
        self.i = 0
        self.nesting = 0

    def parse(self) -> Node:
        if not self.tokens:
            return Literal(None, 0)
        node = self._or()
        if self.i < len(self.tokens):
            raise self._error("Unexpected symbol", self.tokens[self.i])
        return node

    # Helpers -------------------------------------------------------------------------------------
    def _error(self, description: str, token: lx.Token) -> ExpressionError:
        return ExpressionError(f"{description}: '{token.raw}'", self.expression, token.index + 1)

    def _peek(self) -> lx.Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _next(self) -> lx.Token:
        if self.i >= len(self.tokens):
            raise self._error("Unexpected end of expression", self.tokens[-1])
        token = self.tokens[self.i]
        self.i += 1
        return token

    def _expect(self, kind: str) -> lx.Token:
        token = self._next()
        if token.kind != kind:
            raise self._error("Unexpected symbol", token)
        return token

    def _peek_operator(self, operators: frozenset[str]) -> lx.Token | None:
        token = self._peek()
        if token is not None and token.kind == lx.OPERATOR and token.raw in operators:
            return token
        return None

    def _depth(self, token: lx.Token, *children: Node) -> int:
        depth = 1 + max(child.depth for child in children)
        if depth > MAX_DEPTH:
            raise ExpressionError(f"Exceeded max expression depth {MAX_DEPTH}")
        return depth

    def _nested(self, token: lx.Token) -> Node:
        """A sub-expression inside brackets: bounded so deep nesting is an error, not a RecursionError."""
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise ExpressionError(f"Exceeded max expression depth {MAX_DEPTH}")
        node = self._or()
        self.nesting -= 1
        return node

    # Grammar, loosest binding first --------------------------------------------------------------
    def _or(self) -> Node:
        return self._logical("||", self._and)

    def _and(self) -> Node:
        return self._logical("&&", self._equality)

    def _logical(self, op: str, operand: Any) -> Node:
        first: Node = operand()
        operands = [first]
        token = self._peek_operator(frozenset({op}))
        op_token = token
        while token is not None:
            self.i += 1
            operands.append(operand())
            token = self._peek_operator(frozenset({op}))
        if op_token is None:
            return first
        return Logical(op, tuple(operands), op_token.index, self._depth(op_token, *operands))

    def _equality(self) -> Node:
        return self._binary(_EQUALITY, self._relational)

    def _relational(self) -> Node:
        return self._binary(_RELATIONAL, self._unary)

    def _binary(self, operators: frozenset[str], operand: Any) -> Node:
        left: Node = operand()
        while (token := self._peek_operator(operators)) is not None:
            self.i += 1
            right: Node = operand()
            left = Compare(token.raw, left, right, token.index, self._depth(token, left, right))
        return left

    def _unary(self) -> Node:
        token = self._peek_operator(frozenset({"!"}))
        if token is None:
            return self._postfix()
        self.i += 1
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise ExpressionError(f"Exceeded max expression depth {MAX_DEPTH}")
        operand = self._unary()
        self.nesting -= 1
        return Not(operand, token.index, self._depth(token, operand))

    def _postfix(self) -> Node:
        token = self._next()
        node: Node
        if token.kind == lx.LITERAL:
            return Literal(token.value, token.index)
        if token.kind == lx.NAMED_VALUE:
            node = NamedValue(token.raw, token.index)
        elif token.kind == lx.FUNCTION:
            node = self._call(token)
        elif token.kind == lx.START_GROUP:
            node = self._nested(token)
            self._expect(lx.CLOSE_PAREN)
        else:
            raise self._error("Unexpected symbol", token)
        while (postfix := self._peek()) is not None and postfix.kind in (lx.DEREF, lx.START_INDEX):
            self.i += 1
            key: Node
            if postfix.kind == lx.DEREF:
                name = self._next()
                if name.kind == lx.PROPERTY:
                    key = Literal(name.raw, name.index)
                elif name.kind == lx.WILDCARD:
                    key = Wildcard(name.index)
                else:
                    raise self._error("Unexpected symbol", name)
            else:
                following = self._peek()
                if following is not None and following.kind == lx.WILDCARD:
                    self.i += 1
                    key = Wildcard(following.index)
                else:
                    key = self._nested(postfix)
                self._expect(lx.END_INDEX)
            node = Index(node, key, postfix.index, self._depth(postfix, node, key))
        return node

    def _call(self, token: lx.Token) -> Call:
        arity = FUNCTION_ARITY.get(token.raw.lower())
        if arity is None:
            raise self._error("Unrecognized function", token)
        opening = self._expect(lx.START_PARAMS)
        args: list[Node] = []
        following = self._peek()
        if following is not None and following.kind == lx.CLOSE_PAREN:
            self.i += 1
        else:
            while True:
                args.append(self._nested(token))
                separator = self._next()
                if separator.kind == lx.CLOSE_PAREN:
                    break
                if separator.kind != lx.SEPARATOR:
                    raise self._error("Unexpected symbol", separator)
        low, high = arity
        # GitHub's parser names the call's "(" in these two errors, not the function.
        if len(args) < low:
            raise self._error("Too few parameters supplied", opening)
        if len(args) > high:
            raise self._error("Too many parameters supplied", opening)
        if token.raw.lower() == "case" and len(args) % 2 == 0:
            raise self._error("Expected an odd number of parameters supplied", token)
        depth = self._depth(token, *args) if args else 1
        return Call(token.raw, tuple(args), token.index, depth)
