"""Values of the expression language: GitHub's coercion, comparison, indexing and formatting rules.

Values are plain Python data: None, bool, int/float, str, list/tuple (arrays) and Mappings (objects).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from conveyor_workflow._expressions._lexer import parse_number

NULL: Final = 0
BOOLEAN: Final = 1
NUMBER: Final = 2
STRING: Final = 3
ARRAY: Final = 4
OBJECT: Final = 5

_MISSING: Final = object()
_PLAIN_NUMBERS: Final = (int, float)  # exact types: bool is not among them


class FilteredArray(list[Any]):
    """The result of a `*` filter: indexing it applies the index to each of its items."""


def kind(value: Any) -> int:
    if value is None:
        return NULL
    if value is True or value is False:
        return BOOLEAN
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, Mapping):
        return OBJECT
    if isinstance(value, Sequence):
        return ARRAY
    return OBJECT


def is_primitive(value: Any) -> bool:
    return kind(value) <= STRING


def fold(text: str) -> str:
    """Case folding for .NET's OrdinalIgnoreCase: each character upper-cased on its own."""
    if text.isascii():
        return text.upper()
    return "".join(c if len(upper := c.upper()) != 1 else upper for c in text)


def truthy(value: Any) -> bool:
    """false, 0, -0, NaN, '' and null are falsy; everything else (objects and arrays too) is truthy."""
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, str):
        return value != ""
    if isinstance(value, int | float):
        return value == value and value != 0
    return True


def to_number(value: Any) -> float:
    """null is 0, booleans 1/0, strings are parsed (NaN when not a number), objects and arrays NaN."""
    k = kind(value)
    if k == NUMBER:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if k == STRING:
        return parse_number(value)
    if k == BOOLEAN:
        return 1.0 if value else 0.0
    if k == NULL:
        return 0.0
    return math.nan


def format_number(value: float | int) -> str:
    """Numbers as GitHub prints them (.NET "G15"): 1.0 -> '1', 1e+20 -> '1E+20', 1e-05 -> '1E-05'."""
    number = to_number(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"  # -0 too, as GitHub prints it
    return f"{number:.15G}"


def to_string(value: Any) -> str:
    """GitHub's string conversion: null is '', booleans 'true'/'false', objects 'Object', arrays 'Array'."""
    if isinstance(value, str):
        return value
    k = kind(value)
    if k == NULL:
        return ""
    if k == BOOLEAN:
        return "true" if value else "false"
    if k == NUMBER:
        return format_number(value)
    return "Array" if k == ARRAY else "Object"


def _coerce(left: Any, right: Any) -> tuple[int, Any, int, Any]:
    """Brings two values to one kind where GitHub does (numbers win); objects are never coerced."""
    lk, rk = kind(left), kind(right)
    while lk != rk:
        if lk == NUMBER and rk == STRING:
            right, rk = parse_number(right), NUMBER
        elif lk == STRING and rk == NUMBER:
            left, lk = parse_number(left), NUMBER
        elif lk in (BOOLEAN, NULL):
            left, lk = to_number(left), NUMBER
        elif rk in (BOOLEAN, NULL):
            right, rk = to_number(right), NUMBER
        else:
            break
    return lk, left, rk, right


def equal(left: Any, right: Any) -> bool:
    """Loose equality: strings ignore case, NaN equals nothing, objects only themselves."""
    if type(left) is str and type(right) is str:
        return left == right or fold(left) == fold(right)
    if type(left) in _PLAIN_NUMBERS and type(right) in _PLAIN_NUMBERS:
        return bool(left == right)
    lk, left, rk, right = _coerce(left, right)
    if lk != rk:
        return False
    if lk == NUMBER:
        return bool(to_number(left) == to_number(right))
    if lk == STRING:
        return bool(left == right or fold(left) == fold(right))
    if lk in (NULL, BOOLEAN):
        return bool(left == right)
    return left is right


def less_than(left: Any, right: Any) -> bool:
    if type(left) in _PLAIN_NUMBERS and type(right) in _PLAIN_NUMBERS:
        return bool(left < right)
    lk, left, rk, right = _coerce(left, right)
    if lk != rk:
        return False
    if lk == NUMBER:
        return to_number(left) < to_number(right)
    if lk == STRING:
        return fold(left) < fold(right)
    if lk == BOOLEAN:
        return not left and bool(right)
    return False


def greater_than(left: Any, right: Any) -> bool:
    return less_than(right, left)


def get_property(target: Any, name: str) -> Any:
    """`target.name`: case-insensitive on objects, per item on filtered arrays, otherwise null."""
    if isinstance(target, Mapping):
        found = target.get(name, _MISSING)
        if found is not _MISSING:
            return found
        wanted = fold(name)
        for key, value in target.items():
            if isinstance(key, str) and fold(key) == wanted:
                return value
        return None
    if type(target) is FilteredArray:
        return index(target, name)
    return None


def _integer_index(key: Any) -> int | None:
    number = to_number(key)
    if math.isnan(number) or number < 0 or number > 2**31 - 1:
        return None
    return math.floor(number)


def index(target: Any, key: Any) -> Any:
    """`target[key]`: arrays take a number (floored), objects a primitive turned to string."""
    if type(target) is FilteredArray:
        result = FilteredArray()
        for item in target:
            if isinstance(item, Mapping):
                if is_primitive(key):
                    value = get_property(item, to_string(key))
                    if value is not None or _has_property(item, to_string(key)):
                        result.append(value)
            elif _is_array(item):
                position = _integer_index(key)
                if position is not None and position < len(item):
                    result.append(item[position])
        return result
    if isinstance(target, Mapping):
        return get_property(target, to_string(key)) if is_primitive(key) else None
    if _is_array(target):
        position = _integer_index(key)
        if position is not None and position < len(target):
            return target[position]
    return None


def wildcard(target: Any) -> FilteredArray:
    """`target.*`: an array's items or an object's values; a filtered array is flattened one level."""
    if type(target) is FilteredArray:
        result = FilteredArray()
        for item in target:
            if isinstance(item, Mapping):
                result.extend(item.values())
            elif _is_array(item):
                result.extend(item)
        return result
    if isinstance(target, Mapping):
        return FilteredArray(target.values())
    if _is_array(target):
        return FilteredArray(target)
    return FilteredArray()


def _is_array(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _has_property(target: Mapping[Any, Any], name: str) -> bool:
    wanted = fold(name)
    return any(isinstance(key, str) and fold(key) == wanted for key in target)
