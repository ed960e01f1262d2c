"""GitHub's filter patterns for branches, tags, paths and workflow names.

The syntax, from "Workflow syntax for GitHub Actions" (filter pattern cheat sheet):

- `*` matches zero or more characters but not `/`; `**` matches zero or more of any character, `/` included.
  `**/` at the start of a pattern or after a `/` also matches nothing, so `**/README.md` matches `README.md`
  and `docs/**/*.md` matches `docs/README.md`.
- `?` matches zero or one of the preceding character, `+` one or more of it (a bracket expression or an
  escaped character counts as one character).
- `[...]` matches one character listed or in a range; ranges stay within `a-z`, `A-Z` or `0-9`.
- `\\` makes the next character literal (`\\*`, `\\!`, `\\\\`).
- `!` as the first character negates the pattern. In a list, patterns are checked in order and the last
  one that matches decides, so a later pattern overrides an earlier one.

A pattern must match the whole name (a path from the repository root). Matching simulates the pattern as a
small automaton, in time proportional to pattern length times name length, so no pattern can make it
backtrack for long.
"""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["FilterPattern", "GlobError", "compile_filter", "filter_matches", "filters_match"]

_Test = Callable[[str], bool]
_RANGE_CLASSES = (("a", "z"), ("A", "Z"), ("0", "9"))


class GlobError(ValueError):
    """A filter pattern that is not valid GitHub filter syntax."""


@dataclass(frozen=True)
class _Node:
    # Consuming edges (character test, target node) and epsilon edges (target nodes).
    edges: tuple[tuple[_Test, int], ...]
    epsilon: tuple[int, ...]


@dataclass(frozen=True)
class FilterPattern:
    """One compiled filter pattern; `negated` is True for a leading `!`."""

    source: str
    negated: bool
    _nodes: tuple[_Node, ...]

    def matches(self, name: str) -> bool:
        """True when the pattern (ignoring its `!`) matches the whole of `name`."""
        accept = len(self._nodes)
        states = self._closure({0})
        for char in name:
            states = self._closure(
                {
                    target
                    for state in states
                    if state < accept
                    for test, target in self._nodes[state].edges
                    if test(char)
                }
            )
            if not states:
                return False
        return accept in states

    def _closure(self, states: set[int]) -> set[int]:
        stack = list(states)
        while stack:
            state = stack.pop()
            if state == len(self._nodes):
                continue
            for target in self._nodes[state].epsilon:
                if target not in states:
                    states.add(target)
                    stack.append(target)
        return states


def compile_filter(pattern: str) -> FilterPattern:
    """Compile one pattern, raising `GlobError` (a `ValueError`) saying what is wrong with it."""
    if not isinstance(pattern, str):
        raise GlobError(f"A filter pattern must be a string, got {type(pattern).__name__}")
    return _compile(pattern)


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str) -> FilterPattern:
    if not pattern:
        raise GlobError("A filter pattern must not be empty")
    negated = pattern.startswith("!")
    body = pattern[1:] if negated else pattern
    if negated and not body:
        raise GlobError("The filter pattern '!' negates nothing; put a pattern after the '!'")
    return FilterPattern(pattern, negated, tuple(_Builder(pattern, body, 1 if negated else 0).build()))


def filter_matches(pattern: str, name: str) -> bool:
    """True when `pattern`, ignoring a leading `!`, matches the whole of `name`."""
    return compile_filter(pattern).matches(name)


def filters_match(patterns: Sequence[str], name: str) -> bool:
    """Evaluate a filter list in order: True when the last pattern matching `name` is not negated."""
    included = False
    for pattern in patterns:
        compiled = compile_filter(pattern)
        if compiled.matches(name):
            included = not compiled.negated
    return included


def _any(char: str) -> bool:
    return True


def _not_slash(char: str) -> bool:
    return char != "/"


def _literal(expected: str) -> _Test:
    return expected.__eq__


class _Builder:
    """Turns a pattern body into a Thompson automaton: node i's edges lead towards node i + 1."""

    def __init__(self, pattern: str, body: str, offset: int) -> None:
        self.pattern = pattern
        self.body = body
        self.offset = offset
        self.pos = 0
        self.nodes: list[_Node] = []

    def fail(self, message: str, at: int | None = None) -> GlobError:
        where = (self.pos if at is None else at) + self.offset + 1
        return GlobError(f"Invalid filter pattern '{self.pattern}' at character {where}: {message}")

    def build(self) -> list[_Node]:
        body = self.body
        while self.pos < len(body):
            char = body[self.pos]
            start = self.pos
            if char == "*":
                self.star()
                continue
            if char in "?+":
                raise self.fail(f"'{char}' must follow a character it repeats")
            if char == "[":
                test = self.bracket()
            elif char == "\\":
                if self.pos + 1 >= len(body):
                    raise self.fail("a trailing '\\' escapes nothing")
                test = _literal(body[self.pos + 1])
                self.pos += 2
            else:
                test = _literal(char)
                self.pos += 1
            self.quantified(test, start)
        return self.nodes

    def add(self, edges: tuple[tuple[_Test, int], ...], epsilon: tuple[int, ...] = ()) -> None:
        self.nodes.append(_Node(edges, epsilon))

    def star(self) -> None:
        body, here = self.body, len(self.nodes)
        double = body.startswith("**", self.pos)
        self.pos += 2 if double else 1
        if self.pos < len(body) and body[self.pos] == "*":
            raise self.fail("'***' is not a wildcard; use '*' or '**'")
        if self.pos < len(body) and body[self.pos] in "?+":
            raise self.fail(f"'{body[self.pos]}' cannot repeat a wildcard")
        at_segment_start = self.pos - 2 == 0 or (self.pos >= 3 and body[self.pos - 3] == "/")
        if double and at_segment_start and body.startswith("/", self.pos):
            # `**/`: nothing, or any text ending in a slash (zero or more whole directories).
            self.pos += 1
            self.add(((_literal("/"), here + 2), (_any, here + 1)), (here + 2,))
            self.add(((_literal("/"), here + 2), (_any, here + 1)))
            return
        self.add(((_any if double else _not_slash, here),), (here + 1,))

    def quantified(self, test: _Test, start: int) -> None:
        here = len(self.nodes)
        quantifier = self.body[self.pos] if self.pos < len(self.body) else ""
        if quantifier in ("?", "+"):
            self.pos += 1
            if self.pos < len(self.body) and self.body[self.pos] in "?+":
                raise self.fail(f"'{self.body[self.pos]}' cannot follow another '?' or '+'")
        if quantifier == "?":
            self.add(((test, here + 1),), (here + 1,))
        elif quantifier == "+":
            self.add(((test, here + 1),))
            self.add(((test, here + 1),), (here + 2,))
        else:
            self.add(((test, here + 1),))

    def bracket(self) -> _Test:
        body, start = self.body, self.pos
        self.pos += 1
        chars: set[str] = set()
        while True:
            if self.pos >= len(body):
                raise self.fail("'[' is never closed with ']'", start)
            char = body[self.pos]
            if char == "]":
                break
            if char == "\\" and self.pos + 1 < len(body):
                char = body[self.pos + 1]
                self.pos += 1
            if self.pos + 2 < len(body) and body[self.pos + 1] == "-" and body[self.pos + 2] != "]":
                last = body[self.pos + 2]
                if not any(low <= char <= last <= high for low, high in _RANGE_CLASSES):
                    raise self.fail(f"the range '{char}-{last}' must lie within a-z, A-Z or 0-9", self.pos)
                chars.update(chr(code) for code in range(ord(char), ord(last) + 1))
                self.pos += 3
                continue
            chars.add(char)
            self.pos += 1
        self.pos += 1
        if not chars:
            raise self.fail("'[]' lists no character", start)
        return frozenset(chars).__contains__
