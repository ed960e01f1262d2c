"""YAML text to composed nodes, with GitHub's YAML 1.2-like scalars and hard limits on hostile input.

PyYAML resolves scalars by YAML 1.1 (`on`, `yes`, `y` become booleans); GitHub's parser does not, so
nodes are composed only and every scalar is resolved here. Aliases are shared nodes, so an alias bomb
is cheap to compose; its expanded size and depth are measured (memoised per node) before anything walks it.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

_HAVE_C = hasattr(yaml, "CSafeLoader")
_STANDARD_TAG = "tag:yaml.org,2002:"
_KIND_TAGS = {
    yaml.ScalarNode: _STANDARD_TAG + "str",
    yaml.SequenceNode: _STANDARD_TAG + "seq",
    yaml.MappingNode: _STANDARD_TAG + "map",
}


def _standard_tag(kind: type[yaml.Node], value: Any, implicit: Any) -> str:
    return _KIND_TAGS[kind]


class _Loader(yaml.CSafeLoader if _HAVE_C else yaml.SafeLoader):  # type: ignore[misc]
    """Composes only; scalars are resolved by `scalar()`, so PyYAML's (Python) resolver is skipped.

    The composer calls these three hooks for every node. PyYAML's descend/ascend hooks are Python
    methods that only serve path resolvers (unused here), so C functions taking the same arguments stand
    in as no-ops, and `resolve` is a bare lookup: together about a quarter of the time spent composing.
    """

    resolve = staticmethod(_standard_tag)
    descend_resolver = staticmethod(operator.is_)  # (parent, index) -> bool, ignored
    ascend_resolver = staticmethod(tuple)  # () -> (), ignored


MAX_DEPTH = 100
MAX_NODES = 250_000

_INT = re.compile(r"[-+]?[0-9]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_NOT_A_CONSTANT = object()
_CONSTANTS: dict[str, Any] = {
    **dict.fromkeys(["", "~", "null", "Null", "NULL"], None),
    **dict.fromkeys(["true", "True", "TRUE"], True),
    **dict.fromkeys(["false", "False", "FALSE"], False),
    **dict.fromkeys([".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"], math.inf),
    **dict.fromkeys(["-.inf", "-.Inf", "-.INF"], -math.inf),
    **dict.fromkeys([".nan", ".NaN", ".NAN"], math.nan),
}
_NUMBER_STARTS = frozenset("-+.0123456789")  # every int and float of YAML 1.2 core starts with one


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem found at a 1-based line and column."""

    line: int
    column: int
    message: str


@dataclass(slots=True)
class Composed:
    """The single document of a file, or the problems that kept it from being read."""

    node: yaml.Node | None
    problems: list[Problem] = field(default_factory=list)


def position(node: yaml.Node) -> tuple[int, int]:
    """The 1-based line and column where `node` starts."""
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


def scalar(node: yaml.ScalarNode) -> str | int | float | bool | None:
    """The value of a scalar as GitHub reads it: only plain scalars are resolved, and by YAML 1.2 core."""
    text: str = node.value
    if node.style or not node.tag.startswith(_STANDARD_TAG):  # libyaml marks plain as "", PyYAML as None
        return text
    constant = _CONSTANTS.get(text, _NOT_A_CONSTANT)
    if constant is not _NOT_A_CONSTANT:
        return constant  # type: ignore[no-any-return]
    if text[0] not in _NUMBER_STARTS:
        return text
    if _INT.match(text):
        return int(text)
    if _OCT.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    return text


def compose(text: str, *, max_bytes: int) -> Composed:
    """Compose the one YAML document in `text`, checking size, document count, depth, cycles and size."""
    if len(text) > max_bytes or (len(text) * 4 > max_bytes and _utf8_size(text) > max_bytes):
        return Composed(None, [Problem(1, 1, f"The workflow file is larger than {max_bytes} bytes.")])
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        return Composed(None, [Problem(line, 1, "The workflow file contains a NUL character.")])
    if not _HAVE_C:  # pragma: no cover - the pure-Python composer recurses once per level
        depth_problem = _event_depth(text)
        if depth_problem:
            return Composed(None, [depth_problem])
    try:
        loader = _Loader(text)
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        return Composed(None, [Problem(line, 1, "The workflow file is not valid UTF-8 text.")])
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return Composed(None, [_yaml_problem(exc, text)])
    except yaml.YAMLError as exc:  # a ReaderError: a character YAML does not allow
        index = getattr(exc, "position", 0)
        line = text.count("\n", 0, index if isinstance(index, int) else 0) + 1
        return Composed(None, [Problem(line, 1, f"Invalid YAML: {str(exc).splitlines()[0]}")])
    except (RecursionError, MemoryError):  # pragma: no cover - only without libyaml
        return Composed(None, [Problem(1, 1, f"The workflow nests deeper than {MAX_DEPTH} levels.")])
    finally:
        loader.dispose()
    if node is None or (isinstance(node, yaml.ScalarNode) and not node.style and node.value == ""):
        return Composed(None, [Problem(1, 1, "The workflow file is empty; it needs at least 'on' and 'jobs'.")])
    problems = _check_plain_tree(node)
    if problems is None:  # aliases, or too deep or too large: the full (slower) checks find the exact node
        problems = _measure(node) if "&" in text else _walk_tree(node)
    if problems and problems[-1].message.startswith(_FATAL):
        return Composed(None, problems[-1:])
    return Composed(node, problems)


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _yaml_problem(exc: yaml.MarkedYAMLError, text: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "invalid YAML"
    lines = text.split("\n", line)
    if line <= len(lines) and lines[line - 1][column - 1 : column] == "\t":
        problem = "found character '\\t' that cannot start any token"
    if "expected a single document" in (exc.context or "") or "expected a single document" in problem:
        return Problem(line, column, "A workflow file must hold a single YAML document; found another one.")
    if "found character '\\t'" in problem:
        problem = "found a tab character; YAML does not allow tabs for indentation"
    context = f" {exc.context}" if exc.context else ""
    text = f"{problem[0].upper()}{problem[1:]}{context}."
    return Problem(line, column, text.replace("..", "."))


def _event_depth(text: str) -> Problem | None:  # pragma: no cover - only without libyaml
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                    return Problem(line, column, f"The workflow nests deeper than {MAX_DEPTH} levels.")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return None
    return None


_FATAL = "The workflow "  # the problems below that stop reading
_TOO_DEEP = f"The workflow nests deeper than {MAX_DEPTH} levels."
_FIRST = operator.itemgetter(0)


class _Stop(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _measure(root: yaml.Node) -> list[Problem]:
    """Reject cycles, depth over MAX_DEPTH and more than MAX_NODES nodes once aliases are expanded;
    report duplicate and non-scalar mapping keys."""
    sizes: dict[int, tuple[int, int]] = {}
    active: set[int] = set()
    problems: list[Problem] = []

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        known = sizes.get(key)
        if known is not None:
            count, height = known
            if depth + height > MAX_DEPTH:
                raise _Stop(_at(node, f"The workflow nests deeper than {MAX_DEPTH} levels."))
            return known
        if key in active:
            raise _Stop(_at(node, "The workflow has an alias inside its own anchor; recursion is not allowed."))
        if depth > MAX_DEPTH:
            raise _Stop(_at(node, f"The workflow nests deeper than {MAX_DEPTH} levels."))
        count, height = 1, 0
        if isinstance(node, yaml.ScalarNode):
            children: list[yaml.Node] = []
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = [part for pair in node.value for part in pair]
            if isinstance(node, yaml.MappingNode):
                _check_keys(node, problems)
        active.add(key)
        for child in children:
            child_count, child_height = measure(child, depth + 1)
            count += child_count
            height = max(height, child_height + 1)
            if count > MAX_NODES:
                raise _Stop(_at(node, f"The workflow expands to more than {MAX_NODES} YAML nodes (aliases)."))
        active.discard(key)
        sizes[key] = (count, height)
        return count, height

    try:
        measure(root, 0)
    except _Stop as stop:
        problems.append(stop.problem)
    return problems


def _check_plain_tree(root: yaml.Node) -> list[Problem] | None:
    """The key problems of a tree within the limits, level by level; None if it needs the full checks.

    That is when a collection is reached twice (an alias, maybe a cycle), when it nests deeper than
    MAX_DEPTH or holds more than MAX_NODES nodes: rare, and the full checks say exactly where.
    """
    problems: list[Problem] = []
    scalar_node, mapping_node = yaml.ScalarNode, yaml.MappingNode
    level = [] if type(root) is scalar_node else [root]
    seen: set[int] = set()
    collections, nodes, depth = 0, 1, 0
    while level:
        collections += len(level)
        seen.update(map(id, level))
        if len(seen) != collections:
            return None
        depth += 1
        children: list[yaml.Node] = []
        for node in level:
            if type(node) is mapping_node:
                pairs = node.value
                nodes += 2 * len(pairs)
                names = [key.value.upper() if type(key) is scalar_node else None for key, _ in pairs]
                if None in names or len(set(names)) < len(names):
                    _check_keys(node, problems)
                    children += [key for key in map(_FIRST, pairs) if type(key) is not scalar_node]
                children += [value for _, value in pairs if type(value) is not scalar_node]
            else:
                nodes += len(node.value)
                children += [item for item in node.value if type(item) is not scalar_node]
        if nodes > MAX_NODES or (depth > MAX_DEPTH and any(node.value for node in level)):
            return None
        level = children
    return problems


def _walk_tree(root: yaml.Node) -> list[Problem]:
    """`_measure` for a document without anchors: a plain tree, so no memo and no cycles are possible."""
    problems: list[Problem] = []
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            problems.append(_at(node, _TOO_DEEP))
            return problems
        if isinstance(node, yaml.MappingNode):
            _check_keys(node, problems)
            stack.extend((value, depth + 1) for key, value in node.value)
            stack.extend((key, depth + 1) for key, value in node.value if not isinstance(key, yaml.ScalarNode))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)
    return problems


def _check_keys(node: yaml.MappingNode, problems: list[Problem]) -> None:
    """Keys are compared ignoring case, as GitHub does: `FOO` and `foo` in one `env` are one key twice."""
    seen: set[str] = set()
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode):
            kind = "mapping" if isinstance(key, yaml.MappingNode) else "sequence"
            problems.append(_at(key, f"A {kind} was not expected"))
        elif key.value.upper() in seen:
            problems.append(_at(key, f"'{key.value}' is already defined"))
        else:
            seen.add(key.value.upper())


def _at(node: yaml.Node, message: str) -> Problem:
    line, column = position(node)
    return Problem(line, column, message)


def plain(node: yaml.Node) -> Any:
    """The node as plain Python values (dict, list, str, int, float, bool, None); keys become strings."""
    if isinstance(node, yaml.ScalarNode):
        return scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [plain(item) for item in node.value]
    result: dict[str, Any] = {}
    for key, value in node.value:
        result[key_text(key)] = plain(value)
    return result


def key_text(node: yaml.Node) -> str:
    """A mapping key as text: keys are taken literally (`on` stays 'on')."""
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    return "<" + ("mapping" if isinstance(node, yaml.MappingNode) else "sequence") + ">"
