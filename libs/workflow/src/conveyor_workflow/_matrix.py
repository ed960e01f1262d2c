"""Matrix expansion (`jobs.<id>.strategy.matrix`) and the names GitHub gives matrix legs.

`expand_matrix` takes already-evaluated values: a matrix (or one of its vectors, `include` or `exclude`)
written as an expression such as `${{ fromJSON(needs.setup.outputs.matrix) }}` is evaluated by the caller
first, once the jobs it needs have finished; `matrix_needs_late_evaluation` tells whether that is so.
"""

import copy
import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = [
    "MatrixError",
    "expand_matrix",
    "matrix_job_name",
    "matrix_needs_late_evaluation",
    "name_uses_matrix",
]

_RESERVED = ("include", "exclude")


class MatrixError(ValueError):
    """A matrix that cannot be expanded; the message says which key is wrong and what to do."""


def expand_matrix(matrix: Mapping[str, Any], *, max_jobs: int = 256) -> list[dict[str, Any]]:
    """Expand a matrix into its combinations ("legs"), in the order GitHub runs them.

    - The vectors (every key but `include`/`exclude`) form a cartesian product in definition order:
      the first key varies slowest.
    - `exclude` removes each combination that an entry matches partially: every key of the entry equals
      (deeply, for objects and arrays) the combination's value. Excludes apply before includes.
    - `include`: each entry's key/values are added to every original combination where none of them
      would overwrite an original vector value (values added by an earlier include may be overwritten).
      An entry that fits no original combination becomes a combination of its own, appended in order.
    - A matrix of only `include` entries gives one combination per entry.
    - Keys are compared without regard to case (`OS` in an entry names the vector `os`).

    Raises `MatrixError` when a vector is not a non-empty array, an exclude names a key that is not a
    vector, no combination remains, or more than `max_jobs` would result (checked without building the
    product). A vector, `include` or `exclude` still written as a `${{ }}` string is refused with a
    message saying to evaluate it first.
    """
    if not isinstance(matrix, Mapping):
        raise MatrixError(f"The matrix must be a mapping, got {_kind(matrix)}")
    vectors = _vectors(matrix)
    # Matrix keys are case-insensitive: an entry's key is spelled as the vector (or earlier include) it names.
    spelling = {key.lower(): key for key in vectors}
    excludes = [_spelled(entry, spelling, learn=False) for entry in _entries(matrix, "exclude")]
    includes = [_spelled(entry, spelling, learn=True) for entry in _entries(matrix, "include")]
    if not vectors and not includes:
        raise MatrixError("Matrix must define at least one vector (a key with an array of values) or include")
    for entry in excludes:
        for key in entry:
            if key not in vectors:
                raise MatrixError(f"Matrix exclude key '{key}' does not match any key within the matrix")

    _check_size(vectors, excludes, len(includes), max_jobs)
    originals = [combo for combo in _product(vectors) if not any(_matches(e, combo) for e in excludes)]
    legs: list[dict[str, Any]] = [dict(combo) for combo in originals]
    extra: list[dict[str, Any]] = []
    for entry in includes:
        fitted = False
        for original, leg in zip(originals, legs, strict=True):
            if all(key not in original or _equal(original[key], value) for key, value in entry.items()):
                leg.update(entry)
                fitted = True
        if not fitted:
            extra.append(dict(entry))
    legs.extend(extra)
    if not legs:
        raise MatrixError("Matrix exclude removed every combination; at least one must remain")
    if len(legs) > max_jobs:
        raise MatrixError(f"The matrix produces {len(legs)} jobs; a matrix may produce at most {max_jobs}")
    return [copy.deepcopy(leg) for leg in legs]


def matrix_needs_late_evaluation(matrix: Any) -> bool:
    """True when any key or value of `matrix` (searched deeply) still contains `${{`."""
    if isinstance(matrix, str):
        return "${{" in matrix
    if isinstance(matrix, Mapping):
        return any(matrix_needs_late_evaluation(k) or matrix_needs_late_evaluation(v) for k, v in matrix.items())
    if isinstance(matrix, list | tuple):
        return any(matrix_needs_late_evaluation(item) for item in matrix)
    return False


_MATRIX_IN_EXPRESSION = re.compile(r"\$\{\{(?:(?!\}\}).)*?(?<![\w.-])matrix(?![\w-])", re.DOTALL | re.IGNORECASE)


def name_uses_matrix(name: str | None) -> bool:
    """True when a job's `name:` refers to the `matrix` context inside a `${{ }}` expression.

    GitHub then uses the evaluated name as is; otherwise it appends the leg's values in parentheses.
    """
    return name is not None and _MATRIX_IN_EXPRESSION.search(name) is not None


def matrix_job_name(job_name: str, combination: Mapping[str, Any], *, uses_matrix: bool | None = None) -> str:
    """The display name of one matrix leg: `build (ubuntu, 18)`.

    The combination's values are listed in its key order; objects and arrays contribute their scalar
    values in order, and null or empty strings are left out, as GitHub shows them. A name that already
    refers to `matrix` (see `name_uses_matrix`; `uses_matrix` overrides the check) is returned unchanged.
    """
    if uses_matrix is None:
        uses_matrix = name_uses_matrix(job_name)
    if uses_matrix:
        return job_name
    shown = [text for text in (_display(v) for v in _scalars(list(combination.values()))) if text]
    return f"{job_name} ({', '.join(shown)})" if shown else job_name


def _vectors(matrix: Mapping[str, Any]) -> dict[str, list[Any]]:
    vectors: dict[str, list[Any]] = {}
    for key, values in matrix.items():
        if key in _RESERVED:
            continue
        if not isinstance(values, list | tuple):
            raise MatrixError(f"Matrix vector '{key}' must be an array of values, got {_kind(values)}")
        if not values:
            raise MatrixError(f"Matrix vector '{key}' does not contain any values")
        vectors[str(key)] = list(values)
    return vectors


def _spelled(entry: Mapping[str, Any], spelling: dict[str, str], *, learn: bool) -> dict[str, Any]:
    """`entry` with each key spelled as `spelling` first saw it; with `learn`, a key not seen yet is added."""
    spelled: dict[str, Any] = {}
    for key, value in entry.items():
        name = str(key)
        spelled[spelling.setdefault(name.lower(), name) if learn else spelling.get(name.lower(), name)] = value
    return spelled


def _entries(matrix: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    entries = matrix.get(key)
    if entries is None:
        return []
    if not isinstance(entries, list | tuple):
        raise MatrixError(f"Matrix '{key}' must be an array of mappings, got {_kind(entries)}")
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise MatrixError(f"Matrix '{key}' entry {index} must be a mapping, got {_kind(entry)}")
    return list(entries)


def _check_size(
    vectors: Mapping[str, Sequence[Any]], excludes: Sequence[Mapping[str, Any]], includes: int, max_jobs: int
) -> None:
    """Refuse a matrix above `max_jobs` legs without building its product when it is large."""
    if not vectors:
        return
    total = math.prod(len(values) for values in vectors.values())
    if total + includes <= max_jobs:
        return
    # Each exclude entry removes at most this many combinations; if even that leaves too many, stop here.
    removable = sum(_excluded_count(vectors, entry) for entry in excludes)
    if total - removable > max_jobs:
        raise MatrixError(
            f"The matrix produces at least {total - removable} jobs; a matrix may produce at most {max_jobs}"
        )
    kept = 0
    for combo in _product(vectors):
        if not any(_matches(e, combo) for e in excludes):
            kept += 1
            if kept > max_jobs:
                raise MatrixError(f"The matrix produces more than {max_jobs} jobs, the most a matrix may produce")


def _excluded_count(vectors: Mapping[str, Sequence[Any]], entry: Mapping[str, Any]) -> int:
    count = 1
    for key, values in vectors.items():
        if key in entry:
            count *= sum(1 for value in values if _equal(value, entry[key]))
        else:
            count *= len(values)
    return count


def _product(vectors: Mapping[str, Sequence[Any]]) -> Iterator[dict[str, Any]]:
    if not vectors:
        return
    keys = list(vectors)
    for values in itertools.product(*vectors.values()):
        yield dict(zip(keys, values, strict=True))


def _matches(entry: Mapping[str, Any], combination: Mapping[str, Any]) -> bool:
    return all(key in combination and _equal(combination[key], value) for key, value in entry.items())


def _equal(left: Any, right: Any) -> bool:
    """Deep equality that, unlike Python's, keeps booleans apart from numbers."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_equal(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, Mapping | list | tuple) or isinstance(right, Mapping | list | tuple):
        return False
    return bool(left == right)


def _scalars(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _scalars(item)
    else:
        yield value


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _kind(value: Any) -> str:
    if isinstance(value, str) and "${{" in value:
        return f"the unevaluated expression {value!r} (evaluate it before expanding the matrix)"
    if isinstance(value, str):
        return f"the string {value!r}"
    return "null" if value is None else type(value).__name__
