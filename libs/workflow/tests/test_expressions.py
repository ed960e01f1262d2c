"""The expression language, case by case from GitHub's "Evaluate expressions in workflows and actions"."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
from conveyor_workflow._expressions import (
    ExpressionError,
    evaluate,
    evaluate_condition,
    interpolate,
    named_values,
    parse_expression,
)

FRUITS = [
    {"name": "apple", "quantity": 1},
    {"name": "orange", "quantity": 2},
    {"name": "pear", "quantity": 1},
]
VEGETABLES = {
    "scallions": {"colors": ["green", "white", "red"], "ediblePortions": ["roots", "stems"]},
    "beets": {"colors": ["purple", "red"], "ediblePortions": ["roots", "stems", "leaves"]},
    "artichokes": {"colors": ["green"], "ediblePortions": ["hearts", "stems", "leaves"]},
}
SHARED = {"k": "v"}
CONTEXTS: dict[str, Any] = {
    "github": {
        "ref": "refs/heads/main",
        "event_name": "push",
        "event": {
            "issue": {"labels": [{"name": "bug"}, {"name": "help wanted"}]},
            "commits": [{"id": "a1", "author": {"name": "Mona"}}, {"id": "b2", "author": {"name": "Hubot"}}],
            "Mixed-Case": "yes",
        },
    },
    "matrix": {"os": "ubuntu-latest", "node": 18, "flags": ["x", "y"]},
    "env": {"EMPTY": "", "COUNT": "3", "FLOAT": "1.5", "HEX": "0x1f", "SPACED": "  42  "},
    "steps": {"build-step": {"outputs": {"result": "ok"}, "conclusion": "success"}},
    "fruits": FRUITS,
    "vegetables": VEGETABLES,
    "shared": {"a": SHARED, "b": SHARED, "c": {"k": "v"}},
    "job": {"status": "success"},
    "nothing": None,
}


def ev(expression: str, **kwargs: Any) -> Any:
    return evaluate(expression, CONTEXTS, **kwargs)


def same(actual: Any, expected: Any) -> bool:
    """Equality that also tells 1 from True and NaN from NaN."""
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    return (type(actual) is type(expected) and actual == expected) or (
        isinstance(expected, float) and isinstance(actual, int | float) and actual == expected
    )


LITERALS = [
    ("null", None),
    ("true", True),
    ("false", False),
    ("711", 711),
    ("-9.2", -9.2),
    ("0xff", 255),
    ("0xFF", 255),
    ("-2.99e-2", -0.0299),
    ("1e3", 1000),
    ("1E+3", 1000),
    (".5", 0.5),
    ("+7", 7),
    ("1.0", 1),
    ("0o17", 15),
    ("NaN", math.nan),
    ("Infinity", math.inf),
    ("-Infinity", -math.inf),
    ("'Mona the Octocat'", "Mona the Octocat"),
    ("'It''s open source!'", "It's open source!"),
    ("''", ""),
    ("''''", "'"),
    ("'}}'", "}}"),
    ("  'padded'  ", "padded"),
]


@pytest.mark.parametrize(("expression", "expected"), LITERALS)
def test_literals(expression: str, expected: Any) -> None:
    assert same(ev(expression), expected)


OPERATORS = [
    # grouping, index, dereference
    ("(true)", True),
    ("(1 == 2) == false", True),
    ("matrix['os']", "ubuntu-latest"),
    ("matrix.flags[1]", "y"),
    ("matrix.flags[1.9]", "y"),
    ("matrix.flags['0']", "x"),
    ("matrix.flags[5]", None),
    ("matrix.flags[-1]", None),
    ("matrix.flags['a']", None),
    ("github.event.commits[0].author.name", "Mona"),
    ("steps.build-step.outputs.result", "ok"),
    ("(github).ref", "refs/heads/main"),
    ("github['event']['commits'][1]['id']", "b2"),
    # not
    ("!true", False),
    ("!0", True),
    ("!''", True),
    ("!'a'", False),
    ("!null", True),
    ("!!matrix", True),
    # comparisons
    ("1 < 2", True),
    ("2 <= 2", True),
    ("3 > 2", True),
    ("2 >= 3", False),
    ("'a' < 'B'", True),
    ("'B' > 'a'", True),
    ("'abc' <= 'ABC'", True),
    ("true > false", True),
    ("false < true", True),
    ("null <= null", True),
    ("null < null", False),
    ("'10' > 9", True),
    ("'x' > 1", False),
    ("'x' < 1", False),
    ("NaN < 1", False),
    ("NaN >= NaN", False),
    ("1 == 1", True),
    ("1 != 1", False),
    ("'abc' == 'ABC'", True),
    ("'abc' != 'ABC'", False),
    # && and || return operands
    ("true && 'yes'", "yes"),
    ("0 && 'yes'", 0),
    ("'' || 'fallback'", "fallback"),
    ("'first' || 'second'", "first"),
    ("null || false", False),
    ("false || null", None),
    ("1 && 2 && 3", 3),
    ("1 && 0 && 3", 0),
    ("0 || '' || 'c'", "c"),
    ("nothing || 'default'", "default"),
    # precedence
    ("true || false && false", True),
    ("!false && false", False),
    ("1 == 1 && 2 == 2", True),
    ("1 < 2 == true", True),
    ("github.ref == 'refs/heads/main' && matrix.os != 'windows'", True),
]


@pytest.mark.parametrize(("expression", "expected"), OPERATORS)
def test_operators(expression: str, expected: Any) -> None:
    assert same(ev(expression), expected)


COERCION = [
    # equality of different types coerces both sides to numbers
    ("null == 0", True),
    ("null == false", True),
    ("null == ''", True),
    ("null == 'null'", False),
    ("true == 1", True),
    ("false == 0", True),
    ("true == 2", False),
    ("true == 'true'", False),
    ("true == '1'", True),
    ("'' == 0", True),
    ("'' == false", True),
    ("' 42 ' == 42", True),
    ("'0x1f' == 31", True),
    ("'1e2' == 100", True),
    ("'abc' == 0", False),
    ("'1.50' == 1.5", True),
    ("env.SPACED == 42", True),
    ("env.HEX == 31", True),
    ("env.COUNT == 3", True),
    ("env.EMPTY == 0", True),
    # arrays and objects are NaN as numbers and equal only to themselves
    ("matrix == 0", False),
    ("matrix == matrix", True),
    ("shared.a == shared.b", True),
    ("shared.a == shared.c", False),
    ("matrix.flags == matrix.flags", True),
    ("matrix.flags != matrix.flags", False),
    ("matrix == 'Object'", False),
    ("matrix != null", True),
    ("fromJSON('[]') == fromJSON('[]')", False),
    # NaN
    ("NaN == NaN", False),
    ("NaN != NaN", True),
    ("'abc' == 'abc'", True),
    # null equals only null-like values
    ("null == null", True),
    ("nothing == null", True),
    ("github.missing == null", True),
]


@pytest.mark.parametrize(("expression", "expected"), COERCION)
def test_coercion(expression: str, expected: bool) -> None:
    assert ev(expression) is expected


TRUTHINESS = [
    ("false", False),
    ("0", False),
    ("-0", False),
    ("''", False),
    ("null", False),
    ("NaN", False),
    ("true", True),
    ("1", True),
    ("-1", True),
    ("'0'", True),
    ("'false'", True),
    ("matrix", True),
    ("fromJSON('{}')", True),
    ("fromJSON('[]')", True),
    ("Infinity", True),
]


@pytest.mark.parametrize(("expression", "expected"), TRUTHINESS)
def test_truthiness(expression: str, expected: bool) -> None:
    assert ev(f"!({expression})") is not expected
    assert evaluate_condition(expression, CONTEXTS) is expected


FILTERS = [
    ("fruits.*.name", ["apple", "orange", "pear"]),
    ("fruits[*].quantity", [1, 2, 1]),
    ("fruits.*.missing", []),
    ("vegetables.*.ediblePortions", [["roots", "stems"], ["roots", "stems", "leaves"], ["hearts", "stems", "leaves"]]),
    ("vegetables.*.ediblePortions.*", ["roots", "stems", "roots", "stems", "leaves", "hearts", "stems", "leaves"]),
    ("vegetables.*.colors[0]", ["green", "purple", "green"]),
    ("github.event.issue.labels.*.name", ["bug", "help wanted"]),
    ("github.event.commits.*.author.name", ["Mona", "Hubot"]),
    ("github.event.commits.*.AUTHOR.Name", ["Mona", "Hubot"]),
    ("matrix.flags.*", ["x", "y"]),
    ("github.ref.*", []),
    ("nothing.*", []),
    ("contains(github.event.issue.labels.*.name, 'BUG')", True),
    ("join(fruits.*.name, ', ')", "apple, orange, pear"),
    ("toJSON(fruits.*.quantity)", "[\n  1,\n  2,\n  1\n]"),
]


@pytest.mark.parametrize(("expression", "expected"), FILTERS)
def test_object_filters(expression: str, expected: Any) -> None:
    result = ev(expression)
    assert result == expected
    assert type(result) is type(expected)  # a filtered array comes back as a plain list


CASE_INSENSITIVE = [
    ("GITHUB.REF", "refs/heads/main"),
    ("GitHub.Event_Name", "push"),
    ("github.event.mixed-case", "yes"),
    ("github['EVENT']['MIXED-CASE']", "yes"),
    ("CONTAINS('Hello', 'ELL')", True),
    ("StartsWith('Hello', 'he')", True),
    ("toJson(job)", '{\n  "status": "success"\n}'),
    ("FROMJSON('1')", 1),
    ("Success()", True),
]


@pytest.mark.parametrize(("expression", "expected"), CASE_INSENSITIVE)
def test_case_insensitive_names(expression: str, expected: Any) -> None:
    assert ev(expression) == expected


def test_context_names_in_the_mapping_are_matched_case_insensitively() -> None:
    assert evaluate("github.ref", {"GitHub": {"ref": "x"}}) == "x"


FUNCTIONS = [
    # contains
    ("contains('Hello world', 'llo')", True),
    ("contains('Hello world', 'LLO')", True),
    ("contains('Hello world', 'xyz')", False),
    ('contains(fromJSON(\'["push", "pull_request"]\'), github.event_name)', True),
    ("contains(fromJSON('[\"push\", \"pull_request\"]'), 'PUSH')", True),
    ("contains(fromJSON('[1, 2]'), '2')", True),
    ("contains(fromJSON('[1, 2]'), 3)", False),
    ("contains(matrix.flags, 'z')", False),
    ("contains(123, 2)", True),
    ("contains(true, 'ru')", True),
    ("contains(null, '')", True),
    ("contains(matrix, 'os')", False),
    ("contains('abc', matrix)", False),
    # startsWith / endsWith
    ("startsWith('Hello world', 'He')", True),
    ("startsWith('Hello world', 'he')", True),
    ("startsWith('Hello world', 'world')", False),
    ("endsWith('Hello world', 'ld')", True),
    ("endsWith('Hello world', 'LD')", True),
    ("endsWith('Hello world', 'He')", False),
    ("startsWith(github.ref, 'refs/heads/')", True),
    ("startsWith(12345, 12)", True),
    ("endsWith(matrix, 'x')", False),
    # format
    ("format('Hello {0} {1} {2}', 'Mona', 'the', 'Octocat')", "Hello Mona the Octocat"),
    ("format('{{Hello {0} {1} {2}!}}', 'Mona', 'the', 'Octocat')", "{Hello Mona the Octocat!}"),
    ("format('{0}{0}{1}', 'a', 'b')", "aab"),
    ("format('{00}', 'zero')", "zero"),
    ("format('no placeholders')", "no placeholders"),
    ("format('{0}|{1}|{2}|{3}', null, true, 1.5, matrix)", "|true|1.5|Object"),
    ("format('{0}', matrix.flags)", "Array"),
    ("format('}}{{')", "}{"),
    # join
    ("join(matrix.flags)", "x,y"),
    ("join(matrix.flags, ' | ')", "x | y"),
    ("join(fromJSON('[1, true, null, \"s\"]'), '-')", "1-true--s"),
    ("join('single')", "single"),
    ("join(7, ',')", "7"),
    ("join(matrix)", ""),
    ("join(fromJSON('[]'))", ""),
    ("join(matrix.flags, matrix)", "x,y"),
    # toJSON
    ("toJSON(job)", '{\n  "status": "success"\n}'),
    ("toJSON(matrix.flags)", '[\n  "x",\n  "y"\n]'),
    ("toJSON(fromJSON('{}'))", "{}"),
    ("toJSON(fromJSON('[]'))", "[]"),
    ("toJSON('a\"b')", '"a\\"b"'),
    ("toJSON(null)", "null"),
    ("toJSON(true)", "true"),
    ("toJSON(1.0)", "1"),
    ("toJSON(1.5)", "1.5"),
    # numbers in toJSON are written as GitHub converts them to strings
    ("toJSON(1e15)", "1E+15"),
    ("toJSON(fromJSON('0.30000000000000004'))", "0.3"),
    ("toJSON(fromJSON('[-0.0, 123456789012345678]'))", "[\n  0,\n  1.23456789012346E+17\n]"),
    ("toJSON(NaN)", "NaN"),
    ("toJSON(-Infinity)", "-Infinity"),
    ('toJSON(fromJSON(\'{"a": [1, {"b": null}]}\'))', '{\n  "a": [\n    1,\n    {\n      "b": null\n    }\n  ]\n}'),
    # fromJSON
    ("fromJSON('{\"a\": 1}').a", 1),
    ("fromJSON('true')", True),
    ("fromJSON('null')", None),
    ("fromJSON('\"text\"')", "text"),
    ("fromJSON('2.5')", 2.5),
    ('fromJSON(\'["a", "b"]\')[1]', "b"),
    ("fromJSON(' 3 ') == 3", True),
    # case
    ("case(true, 'first', 'default')", "first"),
    ("case(false, 'first', 'default')", "default"),
    ("case(false, 'first', true, 'second', 'default')", "second"),
    ("case(false, 'a', false, 'b', 'default')", "default"),
    ("case(github.ref == 'refs/heads/main', 'main', github.event_name == 'push', 'push', 'other')", "main"),
    ("case(1 == 2, 'x', matrix.node)", 18),
]


@pytest.mark.parametrize(("expression", "expected"), FUNCTIONS)
def test_functions(expression: str, expected: Any) -> None:
    assert same(ev(expression), expected)


STATUS = [
    ("success()", "success", True),
    ("success()", "failure", False),
    ("success()", "cancelled", False),
    ("failure()", "failure", True),
    ("failure()", "success", False),
    ("cancelled()", "cancelled", True),
    ("cancelled()", "success", False),
    ("always()", "success", True),
    ("always()", "failure", True),
    ("always()", "cancelled", True),
]


@pytest.mark.parametrize(("expression", "status", "expected"), STATUS)
def test_status_functions(expression: str, status: Any, expected: bool) -> None:
    assert ev(expression, status=status) is expected


def test_hash_files_calls_the_injected_function() -> None:
    seen: list[Sequence[str]] = []

    def fake(patterns: Sequence[str]) -> str:
        seen.append(list(patterns))
        return "abc123"

    assert ev("hashFiles('**/package-lock.json', '**/yarn.lock')", hash_files=fake) == "abc123"
    assert seen == [["**/package-lock.json", "**/yarn.lock"]]
    assert interpolate("key-${{ hashFiles('*.txt') }}", CONTEXTS, hash_files=fake) == "key-abc123"


NUMBER_STRINGS = [
    ("1.0", "1"),
    ("711", "711"),
    ("3.14", "3.14"),
    ("-9.2", "-9.2"),
    ("0xff", "255"),
    ("-2.99e-2", "-0.0299"),
    ("0.0001", "0.0001"),
    ("0.00001", "1E-05"),
    ("1e15", "1E+15"),
    ("123456789012345", "123456789012345"),
    ("1234567890123456", "1.23456789012346E+15"),
    ("1e20", "1E+20"),
    ("1.5e300", "1.5E+300"),
    ("0.1", "0.1"),
    ("-0", "0"),
    ("-0.0", "0"),
    ("NaN", "NaN"),
    ("Infinity", "Infinity"),
    ("-Infinity", "-Infinity"),
    ("matrix.node", "18"),
    ("fromJSON('12345678901234567890')", "1.23456789012346E+19"),
]


@pytest.mark.parametrize(("expression", "expected"), NUMBER_STRINGS)
def test_numbers_become_strings_as_github_prints_them(expression: str, expected: str) -> None:
    assert ev(f"format('{{0}}', {expression})") == expected
    assert interpolate(f"${{{{ {expression} }}}}", CONTEXTS) == expected


ERRORS = [
    ("foo", "Unrecognized named-value: 'foo'. Located at position 1 within expression: foo"),
    (
        "github.ref == foo.bar",
        "Unrecognized named-value: 'foo'. Located at position 15 within expression: github.ref == foo.bar",
    ),
    ("false && foo", "Unrecognized named-value: 'foo'. Located at position 10 within expression: false && foo"),
    ("bar(1)", "Unrecognized function: 'bar'. Located at position 1 within expression: bar(1)"),
    (
        "contains('a')",
        "Too few parameters supplied: '('. Located at position 9 within expression: contains('a')",
    ),
    ("success(1)", "Too many parameters supplied: '('. Located at position 8 within expression: success(1)"),
    ("join()", "Too few parameters supplied: '('. Located at position 5 within expression: join()"),
    ("toJSON(1, 2)", "Too many parameters supplied: '('. Located at position 7 within expression: toJSON(1, 2)"),
    ("hashFiles()", "Too few parameters supplied: '('. Located at position 10 within expression: hashFiles()"),
    ("case(true, 1)", "Too few parameters supplied: '('. Located at position 5 within expression: case(true, 1)"),
    ("1 ==", "Unexpected end of expression: '=='. Located at position 3 within expression: 1 =="),
    ("(true", "Unexpected end of expression: 'true'. Located at position 2 within expression: (true"),
    ("'unclosed", "Unexpected symbol: ''unclosed'. Located at position 1 within expression: 'unclosed"),
    ("1 = 1", "Unexpected symbol: '='. Located at position 3 within expression: 1 = 1"),
    ("true true", "Unexpected symbol: 'true'. Located at position 6 within expression: true true"),
    ('"double"', 'Unexpected symbol: \'"double"\'. Located at position 1 within expression: "double"'),
    ("github.ref)", "Unexpected symbol: ')'. Located at position 11 within expression: github.ref)"),
    ("1 + 2", "Unexpected symbol: '+'. Located at position 3 within expression: 1 + 2"),
    ("12abc", "Unexpected symbol: '12abc'. Located at position 1 within expression: 12abc"),
    ("'a'.length", "Unexpected symbol: '.'. Located at position 4 within expression: 'a'.length"),
    ("github.", "Unexpected end of expression: '.'. Located at position 7 within expression: github."),
    ("github.*x", "Unexpected symbol: 'x'. Located at position 9 within expression: github.*x"),
    ("a & b", "Unexpected symbol: '&'. Located at position 3 within expression: a & b"),
    ("matrix[*", "Unexpected end of expression: '*'. Located at position 8 within expression: matrix[*"),
    ("*", "Unexpected symbol: '*'. Located at position 1 within expression: *"),
    ("ä == 1", "Unexpected symbol: 'ä'. Located at position 1 within expression: ä == 1"),
    ("format('{0}')", "The following format string references more arguments than were supplied: {0}"),
    ("format('{a}', 1)", "The following format string is invalid: {a}"),
    ("format('{0', 1)", "The following format string is invalid: {0"),
    ("format('}', 1)", "The following format string is invalid: }"),
    ("format('{', 1)", "The following format string is invalid: {"),
    ("format('{256}', 1)", "The following format string is invalid: {256}"),
    ("format('{0:x}', 1)", "The format specifiers 'x' are not valid for objects of type 'Number'"),
    ("case(1, 'a', 'b')", "case predicate must evaluate to a boolean value"),
    ("hashFiles('*')", "hashFiles is not available here: no workspace to hash files in"),
]


@pytest.mark.parametrize(("expression", "message"), ERRORS)
def test_error_messages_and_positions(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        ev(expression)
    assert str(caught.value) == message


@pytest.mark.parametrize("text", ["", "{", "not json", "[1,", "{'a': 1}"])
def test_from_json_rejects_bad_json(text: str) -> None:
    with pytest.raises(ExpressionError, match=r"^Error parsing fromJson: "):
        ev(f"fromJSON('{text.replace(chr(39), chr(39) * 2)}')")


def test_case_with_an_even_number_of_parameters_is_rejected() -> None:
    with pytest.raises(ExpressionError, match="odd number of parameters supplied: 'case'"):
        ev("case(true, 'a', false, 'b')")


def test_expression_error_is_a_value_error_with_its_parts() -> None:
    with pytest.raises(ValueError, match="Unrecognized") as caught:
        ev("github.ref == nope")
    error = caught.value
    assert isinstance(error, ExpressionError)
    assert (error.description, error.position, error.expression) == (
        "Unrecognized named-value: 'nope'",
        15,
        "github.ref == nope",
    )


def test_limits_are_errors_not_recursion() -> None:
    with pytest.raises(ExpressionError, match="Exceeded max expression length 21000"):
        ev("'" + "a" * 21_000 + "'")
    assert len(ev("'" + "a" * 20_998 + "'")) == 20_998
    for deep in (
        "!" * 60 + "true",
        "(" * 60 + "1" + ")" * 60,
        "github" + ".a" * 60,
        "[" * 5000,
        "contains(" * 60 + "1",
        "matrix" + "[0]" * 60,
        " && ".join(["1"] * 30) + "(" * 3000,
    ):
        with pytest.raises(ExpressionError, match=r"Exceeded max expression depth 50|Unexpected"):
            ev(deep)
    assert ev("!" * 48 + "true") is True
    assert ev("(" * 40 + "1" + ")" * 40) == 1


def test_a_surrounding_dollar_braces_is_accepted() -> None:
    assert ev("${{ github.ref }}") == "refs/heads/main"
    assert ev("  ${{github.event_name}}  ") == "push"
    assert ev("${{ '}}' }}") == "}}"


def test_empty_expression_is_null() -> None:
    assert ev("") is None
    assert ev("   ") is None


def test_values_from_contexts_come_back_unchanged() -> None:
    assert ev("matrix") is CONTEXTS["matrix"]
    assert ev("matrix.node") == 18


INTERPOLATIONS = [
    ("plain text", "plain text"),
    ("", ""),
    ("ref=${{ github.ref }}", "ref=refs/heads/main"),
    ("${{ github.event_name }}-${{ matrix.os }}", "push-ubuntu-latest"),
    ("${{github.event_name}}", "push"),
    ("[${{ null }}]", "[]"),
    ("${{ true }}/${{ false }}", "true/false"),
    ("${{ 1.0 }} ${{ 0.5 }}", "1 0.5"),
    ("${{ '}}' }}", "}}"),
    ("${{ 'it''s }} ok' }}!", "it's }} ok!"),
    ("${{ job }}", '{\n  "status": "success"\n}'),
    ("${{ matrix.flags }}", '[\n  "x",\n  "y"\n]'),
    ("job is ${{ job }}", "job is Object"),
    ("${{ matrix.flags }} ${{ job }}", "Array Object"),
    ("flags: ${{ toJSON(matrix.flags) }}", 'flags: [\n  "x",\n  "y"\n]'),
    ("a ${ b } {{ c }} $ {{ d }}", "a ${ b } {{ c }} $ {{ d }}"),
    ("${{ format('{0}!', 'hi') }}", "hi!"),
]


@pytest.mark.parametrize(("text", "expected"), INTERPOLATIONS)
def test_interpolate(text: str, expected: str) -> None:
    assert interpolate(text, CONTEXTS) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("echo ${{ github.ref", "The expression is not closed"),
        ("echo ${{ '}}", "The expression is not closed"),
        ("echo ${{ }}", "An expression was expected"),
        ("echo ${{ nope }}", "Unrecognized named-value: 'nope'. Located at position 1 within expression: nope"),
        ("echo ${{ 1 ++ 2 }}", "Located at position 3 within expression: 1 ++ 2"),
    ],
)
def test_interpolate_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        interpolate(text, CONTEXTS)
    assert message in str(caught.value)


CONDITIONS: list[tuple[str | bool | None, str, bool]] = [
    (None, "success", True),
    (None, "failure", False),
    (None, "cancelled", False),
    ("", "success", True),
    ("", "failure", False),
    (True, "success", True),
    (True, "failure", False),
    (False, "success", False),
    ("github.ref == 'refs/heads/main'", "success", True),
    ("github.ref == 'refs/heads/main'", "failure", False),
    ("${{ github.ref == 'refs/heads/main' }}", "success", True),
    ("${{ github.ref == 'refs/heads/dev' }}", "success", False),
    ("always()", "failure", True),
    ("always()", "cancelled", True),
    ("failure()", "failure", True),
    ("failure()", "success", False),
    ("${{ failure() }}", "failure", True),
    ("cancelled()", "cancelled", True),
    ("success() || failure()", "failure", True),
    ("failure() && github.ref == 'refs/heads/main'", "failure", True),
    ("!cancelled()", "failure", True),
    ("'non-empty'", "success", True),
    ("matrix.node", "success", True),
    ("env.EMPTY", "success", False),
    ("steps.build-step.outputs.result == 'OK'", "success", True),
    # a string with an embedded expression is a string: truthy when not empty
    ("${{ false }} == true", "success", True),
    ("${{ false }} == true", "failure", False),
]


@pytest.mark.parametrize(("condition", "status", "expected"), CONDITIONS)
def test_evaluate_condition(condition: str | bool | None, status: Any, expected: bool) -> None:
    assert evaluate_condition(condition, CONTEXTS, status=status) is expected


def test_only_ascii_digits_make_a_number() -> None:
    assert ev("'\u0661' == 1") is False  # ARABIC-INDIC DIGIT ONE
    assert ev("' 1e2 ' == 100") is True


def test_a_condition_of_empty_braces_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="An expression was expected"):
        evaluate_condition("${{ }}", CONTEXTS)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # the second argument is evaluated only when the first can match: a bad one is then never read
        ("contains(fromJSON('{}'), fromJSON('{'))", False),
        ("contains(fromJSON('[]'), fromJSON('{'))", False),
        ("startsWith(fromJSON('[]'), fromJSON('{'))", False),
        ("endsWith(job, fromJSON('{'))", False),
        ("join(fromJSON('[1]'), fromJSON('{'))", "1"),
        ("join(fromJSON('[]'), fromJSON('{'))", ""),
    ],
)
def test_arguments_are_evaluated_only_when_needed(expression: str, expected: Any) -> None:
    assert ev(expression) == expected


def test_a_needed_argument_still_fails() -> None:
    with pytest.raises(ExpressionError, match="Error parsing fromJson"):
        ev("contains('abc', fromJSON('{'))")


def test_condition_checks_names_even_when_not_evaluated() -> None:
    with pytest.raises(ExpressionError, match="Unrecognized named-value: 'nope'"):
        evaluate_condition("nope == 1", CONTEXTS, status="failure")


def test_named_values_and_parse_expression() -> None:
    assert named_values("github.ref == 'x' && MATRIX.os || contains(Env.A, steps.s.outputs.o)") == {
        "github",
        "matrix",
        "env",
        "steps",
    }
    assert named_values("${{ success() && 1 }}") == frozenset()
    assert parse_expression("github.ref").pos == 6
    with pytest.raises(ExpressionError):
        parse_expression("1 +")
