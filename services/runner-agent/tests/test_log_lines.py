"""Turning raw process output into safe, bounded log lines."""

from __future__ import annotations

import itertools

import pytest
from conveyor_runner_agent.domain import DEFAULT_JOB_LOG_LIMIT, LineSplitter, LogBudget, safe_text
from conveyor_runner_agent.domain.log_lines import NUL_REPLACEMENT, LinePiece, truncation_marker
from hypothesis import given
from hypothesis import strategies as st


def split(data: bytes, **options: int) -> list[str]:
    splitter = LineSplitter(**options)
    return splitter.feed(data) + splitter.finish()


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"", []),
        (b"one\ntwo\n", ["one", "two"]),
        (b"one\r\ntwo", ["one", "two"]),
        (b"\n\n", ["", ""]),
        (b"no newline at end", ["no newline at end"]),
        (b"progress\r50%\rdone\n", ["progress\r50%\rdone"]),
        ("caf\u00e9 \u2713\n".encode(), ["caf\u00e9 \u2713"]),
        (b"bad \xff\xfe bytes\n", ["bad \ufffd\ufffd bytes"]),
        (b"cut \xe2\x9c", ["cut \ufffd"]),
        (b"nul\x00in\x00line\n", [f"nul{NUL_REPLACEMENT}in{NUL_REPLACEMENT}line"]),
        (b"\x1b[31mred\x1b[0m\n", ["\x1b[31mred\x1b[0m"]),
    ],
)
def test_output_becomes_safe_text_lines(data: bytes, lines: list[str]) -> None:
    assert split(data) == lines


def test_a_character_split_across_reads_is_decoded_whole() -> None:
    splitter = LineSplitter()
    encoded = "\u2713 ok\n".encode()
    assert splitter.feed(encoded[:1]) == []
    assert splitter.feed(encoded[1:2]) == []
    assert splitter.feed(encoded[2:]) == ["\u2713 ok"]


def test_a_long_line_is_passed_on_in_pieces_as_it_arrives() -> None:
    splitter = LineSplitter(max_line=4)
    assert splitter.feed(b"abcdefghij") == ["abcd", "efgh"]
    assert splitter.feed(b"kl\nmn") == ["ijkl"]
    assert splitter.finish() == ["mn"]


def test_every_piece_but_the_last_of_a_long_line_says_the_line_goes_on() -> None:
    splitter = LineSplitter(max_line=4)
    pieces = splitter.feed(b"abcdefghij") + splitter.feed(b"kl\nmn\nopqrstuv\n") + splitter.finish()

    assert pieces == ["abcd", "efgh", "ijkl", "mn", "opqr", "stuv"]
    assert [isinstance(piece, LinePiece) for piece in pieces] == [True, True, False, False, True, False]


def test_a_ten_megabyte_line_without_newline_is_split_into_bounded_pieces() -> None:
    splitter = LineSplitter()
    chunk = b"x" * (1 << 16)
    pieces = [piece for _ in range(160) for piece in splitter.feed(chunk)] + splitter.finish()
    assert sum(map(len, pieces)) == 160 * (1 << 16)
    assert max(map(len, pieces)) <= 64 * 1024


def test_max_line_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_line"):
        LineSplitter(max_line=0)


@pytest.mark.parametrize(
    ("text", "safe"),
    [("plain", "plain"), ("a\x00b", f"a{NUL_REPLACEMENT}b"), ("lone \udcff surrogate", "lone \ufffd surrogate")],
)
def test_safe_text_removes_what_a_log_cannot_store(text: str, safe: str) -> None:
    assert safe_text(text) == safe


@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=10), st.integers(1, 20))
def test_any_chunking_gives_the_same_lines(data: bytes, cuts: list[int], max_line: int) -> None:
    bounds = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    splitter = LineSplitter(max_line=max_line)
    chunked = [line for a, b in itertools.pairwise(bounds) for line in splitter.feed(data[a:b])] + splitter.finish()
    assert chunked == split(data, max_line=max_line)


@given(st.binary(max_size=300), st.integers(1, 20))
def test_lines_are_bounded_valid_and_free_of_nul_and_newlines(data: bytes, max_line: int) -> None:
    for line in split(data, max_line=max_line):
        assert len(line) <= max_line
        assert "\x00" not in line
        assert "\n" not in line
        line.encode("utf-8")


def test_the_default_job_log_limit_is_64_mib() -> None:
    assert LogBudget().limit == DEFAULT_JOB_LOG_LIMIT == 64 * 1024 * 1024


def test_past_the_limit_one_marker_is_shown_and_the_rest_counted() -> None:
    budget = LogBudget(limit=10)
    assert budget.admit("1234") == "1234"
    assert budget.admit("5678") == "5678"
    assert budget.admit("9") == truncation_marker(10)
    assert budget.admit("more") is None
    assert budget.admit("") is None
    assert (budget.used, budget.dropped_lines, budget.dropped_bytes) == (10, 3, 2 + 5 + 1)
    assert budget.summary() == "3 lines (8 bytes) of output exceeded the job's log limit."


def test_a_line_that_fits_after_the_limit_was_reached_is_still_dropped() -> None:
    budget = LogBudget(limit=5)
    assert budget.admit("too long") == truncation_marker(5)
    assert budget.admit("ok") is None


def test_bytes_are_counted_in_utf8() -> None:
    budget = LogBudget(limit=4)
    assert budget.admit("\u00e9") == "\u00e9"
    assert budget.admit("\u00e9") == truncation_marker(4)


def test_nothing_dropped_means_no_summary() -> None:
    budget = LogBudget()
    budget.admit("line")
    assert not budget.exhausted
    assert budget.summary() is None


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        LogBudget(limit=-1)


@given(st.lists(st.text(max_size=30), max_size=40), st.integers(0, 200))
def test_stored_bytes_never_exceed_the_limit_and_every_line_is_accounted(lines: list[str], limit: int) -> None:
    budget = LogBudget(limit=limit)
    admitted = [budget.admit(line) for line in lines]
    kept = next((index for index, (line, result) in enumerate(zip(lines, admitted, strict=True)) if result != line),
                len(lines))
    assert budget.used <= limit
    assert sum(len(line.encode("utf-8", errors="replace")) + 1 for line in lines[:kept]) == budget.used
    assert admitted[kept:kept + 1] in ([], [truncation_marker(limit)])
    assert all(result is None for result in admitted[kept + 1 :])
    assert kept + budget.dropped_lines == len(lines)
