"""Replacing secrets by `***` in log text before it leaves the runner.

A value is masked as written and in the forms it commonly takes on its way to a log, as GitHub's runner masks
them: each line of a multi-line value, its JSON-string and URL escapes, its base64 form, and the base64 form
of that (double base64, as in a base64-encoded Docker `config.json`).

Base64 encodes 3 bytes as 4 characters, so a secret inside a larger base64 blob (`base64("user:" + token)`)
starts at one of three byte alignments and its edge characters depend on its neighbours. For each alignment
the runner masks the inner characters that depend on the secret alone. GitHub registers the padded base64 of
the value shifted by 1 and 2 bytes; the inner part used here also matches when the secret is followed by more
data. Inner parts shorter than `MIN_FRAGMENT` characters are not registered: they would mask ordinary text.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
MIN_FRAGMENT = 6


class Masker:
    """The secrets of one job, and every form of them that is masked.

    Values that are empty, only whitespace or shorter than `min_length` characters are ignored (GitHub
    masks any non-empty value, which `min_length=1`, the default, keeps).
    """

    def __init__(self, secrets: Iterable[str] = (), *, min_length: int = 1) -> None:
        self._min_length = max(1, min_length)
        self._forms: set[str] = set()
        self._search: re.Pattern[str] | None = None
        self._starts: re.Pattern[str] | None = None
        self._longest = 0
        for secret in secrets:
            self.add(secret)

    @property
    def longest(self) -> int:
        """The length of the longest masked form, 0 when there is none."""
        return self._longest

    def add(self, value: str) -> None:
        """Mask `value` (a secret or an `::add-mask::` value) from now on, in all its forms."""
        parts = [value]
        if "\n" in value or "\r" in value:
            parts.extend(re.split(r"\r?\n|\r", value))
        before = len(self._forms)
        for part in parts:
            if part.strip() and len(part) >= self._min_length:
                self._forms.update(self._encodings(part))
        if len(self._forms) != before:
            self._search = self._starts = None
            self._longest = max(map(len, self._forms))

    def mask(self, text: str) -> str:
        """`text` with every occurrence of a masked form replaced by `***` (overlapping ones by one `***`)."""
        return _render(text, self.spans(text), len(text))

    def spans(self, text: str) -> list[tuple[int, int]]:
        """The `[start, end)` ranges of `text` that are masked: disjoint, in order, overlaps merged."""
        if not self._forms:
            return []
        if self._search is None or self._starts is None:
            pattern = _trie_pattern(sorted(self._forms))
            self._search, self._starts = re.compile(pattern), re.compile(f"(?=({pattern}))")
        if self._search.search(text) is None:
            return []
        spans: list[tuple[int, int]] = []
        for match in self._starts.finditer(text):
            start, end = match.start(), match.start() + len(match.group(1))
            if spans and start < spans[-1][1]:
                spans[-1] = (spans[-1][0], max(spans[-1][1], end))
            else:
                spans.append((start, end))
        return spans

    def _encodings(self, value: str) -> set[str]:
        raw = value.encode()
        once = base64.b64encode(raw).decode()
        inner = [_inner_base64(raw, shift) for shift in range(3)]
        second = [_inner_base64(form.encode(), shift) for form in (once, *inner) for shift in range(3)]
        forms = {value, once, base64.b64encode(once.encode()).decode(), _json_escape(value), quote(value, safe="")}
        fragment_floor = max(self._min_length, MIN_FRAGMENT)
        forms.update(form for form in (*inner, *second) if len(form) >= fragment_floor)
        return {form for form in forms if len(form) >= self._min_length}


class StreamMasker:
    """Masks text that arrives in chunks: a secret split across chunks is masked all the same.

    `feed` returns what can be shown already and holds back a tail as long as the longest masked form minus
    one character, until more text or `finish` decides it. The concatenated results equal `masker.mask` of the
    concatenated chunks.
    """

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._pending = ""

    def feed(self, chunk: str) -> str:
        """The masked text that no later chunk can change."""
        text = self._pending + chunk
        spans = self._masker.spans(text)
        cut = max(0, len(text) - max(self._masker.longest - 1, 0))
        for start, end in spans:
            if start < cut < end:
                cut = start
        self._pending = text[cut:]
        return _render(text, [span for span in spans if span[1] <= cut], cut)

    def finish(self) -> str:
        """The rest of the text, masked: call once at the end of the stream."""
        text, self._pending = self._pending, ""
        return self._masker.mask(text)


def _render(text: str, spans: list[tuple[int, int]], stop: int) -> str:
    pieces: list[str] = []
    position = 0
    for start, end in spans:
        pieces += [text[position:start], MASK]
        position = end
    pieces.append(text[position:stop])
    return "".join(pieces)


def _inner_base64(raw: bytes, shift: int) -> str:
    """The base64 characters that depend only on `raw` when it starts `shift` bytes into a 3-byte group."""
    encoded = base64.b64encode(bytes(shift) + raw).decode()
    first = -(-shift * 8 // 6)
    last = (shift + len(raw)) * 8 // 6
    return encoded[first:last]


def _json_escape(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def _trie_pattern(words: list[str]) -> str:
    """A regular expression that matches the longest of `words` (sorted, distinct) starting at a position."""
    if len(words) == 1:
        return re.escape(words[0])
    first, last = words[0], words[-1]
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    prefix = first[:size]
    if prefix:
        return re.escape(prefix) + _trie_pattern([word[len(prefix) :] for word in words])
    terminal = words[0] == ""
    rest = words[1:] if terminal else words
    branches = [_trie_pattern(list(group)) for _, group in itertools.groupby(rest, key=lambda word: word[0])]
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if terminal else body
