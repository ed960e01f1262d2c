"""Splits an expression into tokens the way GitHub's lexer does."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

# Token kinds.
START_GROUP: Final = "("
START_PARAMS: Final = "call("
START_INDEX: Final = "["
CLOSE_PAREN: Final = ")"
END_INDEX: Final = "]"
SEPARATOR: Final = ","
DEREF: Final = "."
WILDCARD: Final = "*"
OPERATOR: Final = "op"
LITERAL: Final = "literal"
PROPERTY: Final = "property"
FUNCTION: Final = "function"
NAMED_VALUE: Final = "named-value"
UNEXPECTED: Final = "unexpected"

_BOUNDARY: Final = frozenset("([)],.!><=&|")
_TWO_CHAR_OPERATORS: Final = frozenset({"!=", ">=", "<=", "==", "&&", "||"})
_ONE_CHAR_OPERATORS: Final = frozenset({"!", ">", "<"})
# ASCII only, as GitHub's: a non-ASCII letter is an unexpected symbol, a non-ASCII digit no number.
_KEYWORD = re.compile(r"[^\W\d]([^\W]|-)*", re.ASCII)  # a letter or '_', then letters, digits, '_' or '-'
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_OCTAL = re.compile(r"0o[0-7]+")
_KEYWORD_LITERALS: Final[dict[str, Any]] = {
    "null": None,
    "true": True,
    "false": False,
    "NaN": math.nan,
    "Infinity": math.inf,
}
# After these, a '.' starts a number (".5") rather than a property dereference.
_VALUE_EXPECTED: Final = frozenset({None, SEPARATOR, START_GROUP, START_INDEX, START_PARAMS, OPERATOR})


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    raw: str
    index: int  # 0-based offset into the expression
    value: Any = None


def parse_number(text: str) -> float:
    """GitHub's string-to-number rule (JavaScript's `Number()`): '' is 0, junk is NaN."""
    text = text.strip()
    if not text:
        return 0.0
    if _DECIMAL.fullmatch(text):
        return float(text)
    if _HEX.fullmatch(text):
        value = int(text[2:], 16)
        if value > 0xFFFFFFFF:
            return math.nan
        # A 32-bit signed parse, as .NET's hex parsing does.
        return float(value - 0x1_0000_0000 if value >= 0x8000_0000 else value)
    if _OCTAL.fullmatch(text):
        value = int(text[2:], 8)
        return float(value) if value <= 0x7FFFFFFF else math.nan
    if text == "Infinity":
        return math.inf
    if text == "-Infinity":
        return -math.inf
    return math.nan


def literal_number(value: float) -> float | int:
    """Integral literals become `int` so that callers see `711`, not `711.0` (-0 stays a float)."""
    negative_zero = value == 0 and math.copysign(1.0, value) < 0
    if value.is_integer() and abs(value) < 2**53 and not negative_zero:
        return int(value)
    return value


def tokenize(expression: str) -> list[Token]:
    tokens: list[Token] = []
    text = expression
    length = len(text)
    i = 0
    last: str | None = None
    unclosed: list[str] = []
    while True:
        while i < length and text[i].isspace():
            i += 1
        if i >= length:
            return tokens
        c = text[i]
        start = i
        if c == "(":
            kind = START_PARAMS if last == FUNCTION else START_GROUP
            unclosed.append(kind)
            token = Token(kind, c, i)
            i += 1
        elif c == "[":
            unclosed.append(START_INDEX)
            token = Token(START_INDEX, c, i)
            i += 1
        elif c in ")]":
            if unclosed:
                unclosed.pop()
            token = Token(CLOSE_PAREN if c == ")" else END_INDEX, c, i)
            i += 1
        elif c == ",":
            token = Token(SEPARATOR, c, i)
            i += 1
        elif c == "*":
            token = Token(WILDCARD, c, i)
            i += 1
        elif c == "'":
            token, i = _read_string(text, i)
        elif c in "!><=&|":
            token, i = _read_operator(text, i)
        elif c == "." and last not in _VALUE_EXPECTED:
            token = Token(DEREF, c, i)
            i += 1
        elif c in ".-+" or "0" <= c <= "9":
            i += 1
            while i < length and (text[i] == "." or not _is_boundary(text[i])):
                i += 1
            raw = text[start:i]
            number = parse_number(raw)
            if math.isnan(number) and raw != "NaN":
                token = Token(UNEXPECTED, raw, start)
            else:
                token = Token(LITERAL, raw, start, literal_number(number))
        else:
            i += 1
            while i < length and not _is_boundary(text[i]):
                i += 1
            token = _keyword(text, start, i, last)
        tokens.append(token)
        last = token.kind


def _is_boundary(c: str) -> bool:
    return c in _BOUNDARY or c.isspace()


def _keyword(text: str, start: int, end: int, last: str | None) -> Token:
    raw = text[start:end]
    if not _KEYWORD.fullmatch(raw):
        return Token(UNEXPECTED, raw, start)
    if last == DEREF:
        return Token(PROPERTY, raw, start)
    if raw in _KEYWORD_LITERALS:
        return Token(LITERAL, raw, start, _KEYWORD_LITERALS[raw])
    ahead = end
    while ahead < len(text) and text[ahead].isspace():
        ahead += 1
    if ahead < len(text) and text[ahead] == "(":
        return Token(FUNCTION, raw, start)
    return Token(NAMED_VALUE, raw, start)


def _read_string(text: str, start: int) -> tuple[Token, int]:
    i = start + 1
    parts: list[str] = []
    while i < len(text):
        end = text.find("'", i)
        if end < 0:
            break
        parts.append(text[i:end])
        if end + 1 < len(text) and text[end + 1] == "'":
            parts.append("'")
            i = end + 2
            continue
        return Token(LITERAL, text[start : end + 1], start, "".join(parts)), end + 1
    return Token(UNEXPECTED, text[start:], start), len(text)


def _read_operator(text: str, start: int) -> tuple[Token, int]:
    two = text[start : start + 2]
    if two in _TWO_CHAR_OPERATORS:
        return Token(OPERATOR, two, start), start + 2
    if text[start] in _ONE_CHAR_OPERATORS:
        return Token(OPERATOR, text[start], start), start + 1
    i = start + 1
    while i < len(text) and not _is_boundary(text[i]):
        i += 1
    return Token(UNEXPECTED, text[start:i], start), i
