"""Masking secrets in log text, whole and in chunks."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable
from urllib.parse import quote

import pytest
from conveyor_runner_agent.domain import MASK, Masker, StreamMasker
from hypothesis import given
from hypothesis import strategies as st


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


@pytest.mark.parametrize(
    ("secrets", "text", "masked"),
    [
        (["hunter2"], "password is hunter2.", "password is ***."),
        (["hunter2"], "hunter2hunter2", "******"),
        (["abc"], "no secret here", "no secret here"),
        (["abcdef", "defghi"], "xx abcdefghi yy", "xx *** yy"),
        (["abc", "abcdef"], "abcdef abc", "*** ***"),
        (["aaa"], "aaaaa", "***"),
        (["line one\nline two"], "here: line two", "here: ***"),
        (["line one\r\nline two"], "line one|line two", "***|***"),
        (["multi\nline"], "multi\nline", "***"),
        (["sec.ret*"], "regex sec.ret* chars", "regex *** chars"),
        (["  "], "  spaces  ", "  spaces  "),
        ([""], "empty", "empty"),
        (["CaseSecret"], "casesecret", "casesecret"),
    ],
)
def test_values_are_masked_as_written(secrets: list[str], text: str, masked: str) -> None:
    assert Masker(secrets).mask(text) == masked


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(b64, id="base64"),
        pytest.param(lambda s: b64(b64(s)), id="double-base64"),
        pytest.param(lambda s: json.dumps(s)[1:-1], id="json"),
        pytest.param(lambda s: quote(s, safe=""), id="url"),
    ],
)
def test_common_encodings_of_a_secret_are_masked(encode: Callable[[str], str]) -> None:
    secret = 'p@ss "word"/with+specials'
    assert Masker([secret]).mask(f"value={encode(secret)};") == "value=***;"


@pytest.mark.parametrize("prefix", ["", "u", "us", "use", "user:", "a-longer-user-name:"])
@pytest.mark.parametrize("suffix", ["", "x", "xy", ":more-data"])
def test_a_secret_inside_a_larger_base64_blob_is_masked_at_every_alignment(prefix: str, suffix: str) -> None:
    secret = "tok_9a8b7c6d5e"
    blob = b64(prefix + secret + suffix)
    masked = Masker([secret]).mask(blob)
    assert MASK in masked
    assert not _contains_stable_base64(masked, secret)


@pytest.mark.parametrize("prefix", ["", "a", "ab"])
def test_a_secret_inside_a_double_base64_blob_is_masked(prefix: str) -> None:
    secret = "ghp_0123456789abcdef"
    config = json.dumps({"auths": {"ghcr.io": {"auth": b64(f"{prefix}user:{secret}")}}})
    masked = Masker([secret]).mask(b64(config))
    assert MASK in masked


def test_short_values_are_ignored_below_the_minimum_length() -> None:
    masker = Masker(["abc", "abcdefgh"], min_length=4)
    assert masker.mask("abc abcdefgh") == "abc ***"


def test_by_default_every_non_empty_value_is_masked_as_github_does() -> None:
    assert Masker(["1"]).mask("a1b") == "a***b"


def test_short_base64_fragments_are_not_registered() -> None:
    masker = Masker(["ab"])
    assert masker.longest == len(b64(b64("ab")))
    assert masker.mask("YW plain text") == "YW plain text"


def test_values_added_later_are_masked_from_then_on() -> None:
    masker = Masker()
    assert masker.mask("later secret") == "later secret"
    masker.add("secret")
    assert masker.mask("later secret") == "later ***"


def test_a_masker_without_values_changes_nothing() -> None:
    masker = Masker()
    assert masker.longest == 0
    assert masker.mask("anything") == "anything"
    stream = StreamMasker(masker)
    assert stream.feed("abc") == "abc"
    assert stream.finish() == ""


def test_stream_masker_masks_a_secret_split_across_chunks() -> None:
    stream = StreamMasker(Masker(["supersecret"]))
    out = stream.feed("the value is super") + stream.feed("sec") + stream.feed("ret, ok") + stream.finish()
    assert out == "the value is ***, ok"


def test_stream_masker_holds_back_no_more_than_the_longest_form_minus_one() -> None:
    masker = Masker(["secret"])
    stream = StreamMasker(masker)
    emitted = stream.feed("x" * 100)
    assert len(emitted) == 100 - (masker.longest - 1)


def test_huge_lines_are_masked_quickly() -> None:
    masker = Masker([f"secret-number-{n}" for n in range(20)])
    line = ("lorem ipsum dolor sit amet " * 4000) + "secret-number-7"
    assert masker.mask(line).endswith(" ***")


secrets = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="*"), min_size=8, max_size=24
).filter(
    lambda s: s.strip() == s and "\n" not in s and "\r" not in s
)
filler = st.text(alphabet="abcdefghijklmnopqrstuvwxyz \n-=:+/", max_size=60)


@st.composite
def text_with_secrets(draw: st.DrawFn) -> tuple[list[str], str]:
    values = draw(st.lists(secrets, min_size=1, max_size=3))
    pieces = [draw(filler)]
    for _ in range(draw(st.integers(1, 5))):
        pieces += [draw(st.sampled_from(values)), draw(filler)]
    return values, "".join(pieces)


@st.composite
def chunkings(draw: st.DrawFn, text: str) -> list[str]:
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@given(st.data())
def test_stream_masking_equals_whole_masking_and_never_leaks(data: st.DataObject) -> None:
    values, text = data.draw(text_with_secrets())
    masker = Masker(values)
    chunks = data.draw(chunkings(text))
    stream = StreamMasker(masker)
    out = "".join(stream.feed(chunk) for chunk in chunks) + stream.finish()
    assert out == masker.mask(text)
    for value in values:
        assert value not in out


@given(secrets, st.binary(max_size=8), st.binary(max_size=8))
def test_a_secret_never_survives_base64_encoding_with_any_neighbours(secret: str, before: bytes, after: bytes) -> None:
    masked = Masker([secret]).mask(b64(before + secret.encode() + after))
    assert not _contains_stable_base64(masked, secret)


@given(st.lists(secrets, min_size=1, max_size=4), st.text(max_size=80))
def test_masking_is_idempotent_and_never_leaves_a_value(values: list[str], text: str) -> None:
    masker = Masker(values)
    once = masker.mask(text + values[0] + text)
    assert values[0] not in once
    assert masker.mask(once) == once


def _contains_stable_base64(text: str, secret: str) -> bool:
    """Whether any alignment's secret-only base64 characters appear in `text`."""
    raw = secret.encode()
    for shift in range(3):
        encoded = b64(bytes(shift) + raw)
        inner = encoded[-(-shift * 8 // 6) : (shift + len(raw)) * 8 // 6]
        if inner in text:
            return True
    return False
