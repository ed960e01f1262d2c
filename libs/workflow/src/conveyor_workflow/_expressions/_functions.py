"""The built-in functions: contains, startsWith, endsWith, format, join, toJSON, fromJSON, hashFiles,
case and the status functions success, failure, cancelled and always."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from conveyor_workflow._expressions import _values as v
from conveyor_workflow._expressions._errors import ExpressionError
from conveyor_workflow._expressions._json import from_json, to_json

if TYPE_CHECKING:
    from conveyor_workflow._expressions._compiler import Env, Fn
    from conveyor_workflow._expressions._parser import Call

_KIND_NAMES = {
    v.NULL: "Null",
    v.BOOLEAN: "Boolean",
    v.NUMBER: "Number",
    v.STRING: "String",
    v.ARRAY: "Array",
    v.OBJECT: "Object",
}


def compile_call(node: Call, args: list[Fn], expression: str) -> Fn:
    name = node.key

    def fail(description: str) -> ExpressionError:
        """An error while the function runs: GitHub reports these without a location in the expression."""
        return ExpressionError(description)

    if name == "success":
        return lambda env: env.status == "success"
    if name == "failure":
        return lambda env: env.status == "failure"
    if name == "cancelled":
        return lambda env: env.status == "cancelled"
    if name == "always":
        return lambda env: True
    if name in ("contains", "startswith", "endswith"):
        test = {"contains": _contains, "startswith": _starts_with, "endswith": _ends_with}[name]
        first, second = args

        def tested(env: Env) -> bool:
            # As GitHub evaluates them: the second argument only when the first could match at all.
            subject = first(env)
            if not v.is_primitive(subject) and not (name == "contains" and v.kind(subject) == v.ARRAY and subject):
                return False
            return test(subject, second(env))

        return tested
    if name == "join":
        return _join(args)
    if name == "tojson":
        (value,) = args
        return lambda env: _to_json(value(env), fail)
    if name == "fromjson":
        (text,) = args
        return lambda env: _from_json(text(env), fail)
    if name == "format":
        return _format(args, fail)
    if name == "hashfiles":
        return _hash_files(args, fail)
    return _case(args, fail)  # the parser allows no other name


def _contains(search: Any, item: Any) -> bool:
    """Substring test (ignoring case) for primitives, loose equality with any element for arrays."""
    if v.is_primitive(search):
        if not v.is_primitive(item):
            return False
        return v.fold(v.to_string(item)) in v.fold(v.to_string(search))
    if v.kind(search) == v.ARRAY:
        return any(v.equal(item, element) for element in search)
    return False


def _starts_with(text: Any, prefix: Any) -> bool:
    if not (v.is_primitive(text) and v.is_primitive(prefix)):
        return False
    return v.fold(v.to_string(text)).startswith(v.fold(v.to_string(prefix)))


def _ends_with(text: Any, suffix: Any) -> bool:
    if not (v.is_primitive(text) and v.is_primitive(suffix)):
        return False
    return v.fold(v.to_string(text)).endswith(v.fold(v.to_string(suffix)))


def _join(args: list[Fn]) -> Fn:
    items_fn = args[0]
    separator_fn = args[1] if len(args) > 1 else None

    def join(env: Env) -> str:
        items = items_fn(env)
        if v.kind(items) == v.ARRAY:
            separator = ","
            if separator_fn is not None and len(items) > 1:  # read only when it joins anything
                chosen = separator_fn(env)
                if v.is_primitive(chosen):
                    separator = v.to_string(chosen)
            return separator.join(v.to_string(item) for item in items)
        if v.is_primitive(items):
            return v.to_string(items)
        return ""

    return join


def _to_json(value: Any, fail: Callable[[str], ExpressionError]) -> str:
    try:
        return to_json(value)
    except RecursionError:
        raise fail("toJSON: the value is nested too deeply") from None


def _from_json(text: Any, fail: Callable[[str], ExpressionError]) -> Any:
    try:
        return from_json(v.to_string(text))
    except ValueError as exc:
        raise fail(f"Error parsing fromJson: {exc}") from None


def _hash_files(args: list[Fn], fail: Callable[[str], ExpressionError]) -> Fn:
    def hash_files(env: Env) -> str:
        if env.hash_files is None:
            raise fail("hashFiles is not available here: no workspace to hash files in")
        return env.hash_files([v.to_string(arg(env)) for arg in args])

    return hash_files


def _case(args: list[Fn], fail: Callable[[str], ExpressionError]) -> Fn:
    pairs = [(args[i], args[i + 1]) for i in range(0, len(args) - 1, 2)]
    default = args[-1]

    def case(env: Env) -> Any:
        for predicate, result in pairs:
            outcome = predicate(env)
            if outcome is not True and outcome is not False:
                raise fail("case predicate must evaluate to a boolean value")
            if outcome:
                return result(env)
        return default(env)

    return case


def _format(args: list[Fn], fail: Callable[[str], ExpressionError]) -> Fn:
    format_fn, values = args[0], args[1:]

    def format_(env: Env) -> str:
        text = v.to_string(format_fn(env))
        segments = _parse_format(text, len(values), fail)
        cache: dict[int, Any] = {}
        out: list[str] = []
        for segment in segments:
            if isinstance(segment, str):
                out.append(segment)
                continue
            position, specifiers = segment
            if position not in cache:
                cache[position] = values[position](env)
            value = cache[position]
            if specifiers:
                kind_name = _KIND_NAMES[v.kind(value)]
                raise fail(f"The format specifiers '{specifiers}' are not valid for objects of type '{kind_name}'")
            out.append(v.to_string(value))
        return "".join(out)

    return format_


def _parse_format(text: str, supplied: int, fail: Callable[[str], ExpressionError]) -> list[str | tuple[int, str]]:
    """Splits `Hello {0}, {{literal}}` into text and (argument, format specifiers) segments."""
    segments: list[str | tuple[int, str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "{":
            if text.startswith("{", i + 1):
                segments.append("{")
                i += 2
                continue
            j = i + 1
            while j < n and "0" <= text[j] <= "9":
                j += 1
            significant = text[i + 1 : j].lstrip("0") or "0"
            if j == i + 1 or j >= n or len(significant) > 3 or int(significant) > 255:
                raise fail(f"The following format string is invalid: {text}")
            position = int(significant)
            specifiers = ""
            if text[j] == ":":
                j, specifiers = _read_specifiers(text, j + 1, fail)
            elif text[j] != "}":
                raise fail(f"The following format string is invalid: {text}")
            if position >= supplied:
                raise fail(f"The following format string references more arguments than were supplied: {text}")
            segments.append((position, specifiers))
            i = j + 1
        elif c == "}":
            if not text.startswith("}", i + 1):
                raise fail(f"The following format string is invalid: {text}")
            segments.append("}")
            i += 2
        else:
            ends = [k for k in (text.find("{", i), text.find("}", i)) if k >= 0]
            end = min(ends) if ends else n
            segments.append(text[i:end])
            i = end
    return segments


def _read_specifiers(text: str, i: int, fail: Callable[[str], ExpressionError]) -> tuple[int, str]:
    """Reads `:spec}` (with `}}` standing for `}`); returns the index of the closing brace."""
    spec: list[str] = []
    while i < len(text):
        if text[i] != "}":
            spec.append(text[i])
            i += 1
        elif text.startswith("}", i + 1):
            spec.append("}")
            i += 2
        else:
            return i, "".join(spec)
    raise fail(f"The following format string is invalid: {text}")
