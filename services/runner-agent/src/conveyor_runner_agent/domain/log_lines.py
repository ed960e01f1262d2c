"""Making a process's raw output safe to log: valid text, bounded lines, a bounded job log.

`LineSplitter` turns bytes, as they are read, into text lines: invalid UTF-8 becomes U+FFFD (also when a
character is split across reads), NUL becomes `␀` (U+2400, since PostgreSQL text cannot hold NUL), `\\r\\n` and
`\\n` end lines, and a line longer than `max_line` characters is passed on in pieces instead of held in memory.
`LogBudget` caps what one job stores: past its limit one marker line is shown and the rest only counted.
"""

from __future__ import annotations

import codecs
import re

DEFAULT_MAX_LINE = 64 * 1024
DEFAULT_JOB_LOG_LIMIT = 64 * 1024 * 1024
NUL_REPLACEMENT = "\u2400"
_SURROGATE = re.compile("[\ud800-\udfff]")


class LinePiece(str):
    """A piece of a line longer than `max_line`: the line goes on in the next piece."""

    __slots__ = ()


def safe_text(text: str) -> str:
    """`text` with NUL replaced by `␀` and lone surrogates (from `surrogateescape` decoding) by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", NUL_REPLACEMENT)
    return _SURROGATE.sub("\ufffd", text)


class LineSplitter:
    """Bytes in, safe text lines out, without the line ends. Feed chunks as read, then call `finish` once."""

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError(f"max_line must be at least 1, got {max_line}")
        self._max_line = max_line
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, data: bytes) -> list[str]:
        """The lines completed by `data`, and pieces of `max_line` characters of a longer unfinished line."""
        return self._split(self._decoder.decode(data), final=False)

    def finish(self) -> list[str]:
        """The last line when the output did not end with a newline (and any incomplete character, replaced)."""
        return self._split(self._decoder.decode(b"", final=True), final=True)

    def _split(self, text: str, *, final: bool) -> list[str]:
        *complete, self._pending = (self._pending + text).split("\n")
        lines: list[str] = []
        for line in complete:
            lines.extend(self._pieces(line.removesuffix("\r")))
        if final:
            rest, self._pending = self._pending, ""
            if rest:
                lines.extend(self._pieces(rest.removesuffix("\r")))
        else:
            # Keep at least one character (and a "\r" that a "\n" may follow) so that the pieces are the
            # same however the output was chunked.
            ready = len(self._pending) - (2 if self._pending.endswith("\r") else 1)
            whole = ready - ready % self._max_line
            if whole > 0:
                lines.extend(self._pieces(self._pending[:whole], ends=False))
                self._pending = self._pending[whole:]
        return lines

    def _pieces(self, line: str, *, ends: bool = True) -> list[str]:
        """`line` (which ends here unless not `ends`) in pieces of at most `max_line` characters."""
        line = safe_text(line)
        if ends and len(line) <= self._max_line:
            return [line]
        starts = range(0, len(line), self._max_line)
        pieces: list[str] = [LinePiece(line[start : start + self._max_line]) for start in starts]
        if ends and pieces:
            pieces[-1] = str(pieces[-1])
        return pieces


class LogBudget:
    """The bytes (UTF-8, one newline a line) one job may store; past the limit lines are counted, not stored."""

    def __init__(self, limit: int = DEFAULT_JOB_LOG_LIMIT) -> None:
        if limit < 0:
            raise ValueError(f"the log limit must not be negative, got {limit}")
        self.limit = limit
        self.used = 0
        self.dropped_lines = 0
        self.dropped_bytes = 0

    @property
    def exhausted(self) -> bool:
        return self.dropped_lines > 0

    def admit(self, line: str) -> str | None:
        """`line` while it fits, the truncation marker for the first line that does not, then None."""
        size = len(line.encode("utf-8", errors="replace")) + 1
        if not self.exhausted and self.used + size <= self.limit:
            self.used += size
            return line
        self.dropped_lines += 1
        self.dropped_bytes += size
        if self.dropped_lines == 1:
            return truncation_marker(self.limit)
        return None

    def summary(self) -> str | None:
        """How much output was dropped, for the end of the job; None when nothing was."""
        if not self.exhausted:
            return None
        return f"{self.dropped_lines} lines ({self.dropped_bytes} bytes) of output exceeded the job's log limit."


def truncation_marker(limit: int) -> str:
    """The one line shown where a job's log is cut."""
    return (
        f"##[warning]The job's log reached its limit of {limit} bytes; "
        "further output is counted but not stored."
    )
