"""Workflow commands a step writes to its output (`::name key=value,...::data`), handled as GitHub's runner does.

A `CommandProcessor` is fed the step's output one line at a time and answers what to show in the log and what
the runner must do (`Mask`, `Annotation`, `GroupStart`, `Output`, ...). It does no I/O: the caller applies the
effects, masks the shown lines and publishes them.

Choices where GitHub's behaviour is not documented (GitHub's runner source was read, not copied):

- `set-output` and `save-state` still work, with the deprecation warning GitHub prints today (their removal,
  announced for 2023-06-01, was postponed and never happened).
- `set-env` and `add-path` fail the step with GitHub's message unless `allow_unsecure_commands` is set (GitHub's
  `ACTIONS_ALLOW_UNSECURE_COMMANDS=true`).
- `add-matcher` and `remove-matcher` are recognised and hidden; this runner has no problem matchers.
- Only the documented `::command::` syntax is parsed, not the legacy `##[command]` one.
- Messages that span lines (`%0A` in the data) are shown as one log line per line, each with the marker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

AnnotationLevel = Literal["error", "warning", "notice"]

_DISABLED = (
    "The `{}` command is disabled. Please upgrade to using Environment Files or opt into unsecure command "
    "execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to `true`. For more "
    "information see: https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/"
)
_DEPRECATED = (
    "The `{}` command is deprecated and will be disabled soon. Please upgrade to using Environment Files. For more "
    "information see: https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/"
)
_BAD_STOP_TOKEN = (
    "You cannot use a endToken that is an empty string, the string 'pause-logging', or another workflow command. "
    "For more information see: https://docs.github.com/actions/learn-github-actions/workflow-commands-for-github-"
    "actions#example-stopping-and-starting-workflow-commands or opt into insecure command execution by setting the "
    "`ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS` environment variable to `true`."
)
_LEVELS: dict[str, AnnotationLevel] = {"error": "error", "warning": "warning", "notice": "notice"}
_EMPTY_MASK = "Can't add secret mask for empty string in ##[add-mask] command."
_COMMANDS = frozenset({
    "add-mask", "add-matcher", "add-path", "debug", "echo", "endgroup", "error", "group", "notice",
    "remove-matcher", "save-state", "set-env", "set-output", "stop-commands", "warning",
})
# Commands whose line is never echoed: their data may be secret or is shown in another form.
_OMIT_ECHO = frozenset({"add-mask", "debug", "error", "warning", "notice"})
_DATA_ESCAPES = {"%25": "%", "%0D": "\r", "%0A": "\n"}
_PROPERTY_ESCAPES = {**_DATA_ESCAPES, "%3A": ":", "%2C": ","}
_DATA_PATTERN = re.compile("|".join(_DATA_ESCAPES))
_PROPERTY_PATTERN = re.compile("|".join(_PROPERTY_ESCAPES))
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)


@dataclass(frozen=True, slots=True)
class Mask:
    """Hide `value` (from `::add-mask::`) in every later line of the job."""

    value: str


@dataclass(frozen=True, slots=True)
class Annotation:
    """An error, warning or notice shown on the run, optionally pointing into a file of the repository."""

    level: AnnotationLevel
    message: str
    file: str | None = None
    line: int | None = None
    col: int | None = None
    end_line: int | None = None
    end_col: int | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class GroupStart:
    """A foldable group of log lines begins (`::group::TITLE`)."""

    title: str


@dataclass(frozen=True, slots=True)
class GroupEnd:
    """The current group ends (`::endgroup::`)."""


@dataclass(frozen=True, slots=True)
class Output:
    """The step sets its output `name` (deprecated `::set-output::`)."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class SaveState:
    """An action saves state for its `post` step (deprecated `::save-state::`)."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class SetEnv:
    """Later steps get `name=value` (`::set-env::`, only with `allow_unsecure_commands`)."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class AddPath:
    """Later steps get `path` first in `PATH` (`::add-path::`, only with `allow_unsecure_commands`)."""

    path: str


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """A command could not be processed: GitHub fails the step once it ends (its exit code notwithstanding)."""

    message: str


Effect = Mask | Annotation | GroupStart | GroupEnd | Output | SaveState | SetEnv | AddPath | CommandFailed


@dataclass(frozen=True, slots=True)
class Processed:
    """What one output line becomes: the log lines to show (none hides it) and what the runner must do."""

    lines: tuple[str, ...]
    effects: tuple[Effect, ...] = ()

    @property
    def text(self) -> str | None:
        """The lines to show joined by newlines, or None when the line is hidden."""
        return "\n".join(self.lines) if self.lines else None


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """A `::name key=value,...::data` line, its properties and data unescaped; `name` is lower case."""

    name: str
    properties: Mapping[str, str]
    data: str


def parse_command(line: str, known: frozenset[str] = _COMMANDS) -> ParsedCommand | None:
    """The command on `line`, or None when it is ordinary output (no `::` syntax, or a name not in `known`).

    Leading whitespace is ignored, names compare case-insensitively, property keys are kept as written and a
    property without `=` is dropped, as GitHub's runner parses them.
    """
    text = line.lstrip()
    if not text.startswith("::"):
        return None
    end = text.find("::", 2)
    if end < 0:
        return None
    info = text[2:end]
    name, _, raw_properties = info.partition(" ")
    if name.lower() not in known:
        return None
    properties: dict[str, str] = {}
    for item in raw_properties.strip().split(","):
        key, equals, value = item.partition("=")
        if key and equals and value:
            properties[key] = _PROPERTY_PATTERN.sub(lambda m: _PROPERTY_ESCAPES[m.group()], value)
    data = _DATA_PATTERN.sub(lambda m: _DATA_ESCAPES[m.group()], text[end + 2 :])
    return ParsedCommand(name.lower(), properties, data)


class _Refused(Exception):
    """A command that GitHub's runner would refuse: the message says why."""


class CommandProcessor:
    """Turns a step's output lines into log lines and effects, one line at a time, keeping the step's state.

    `debug` is GitHub's step debug logging (`ACTIONS_STEP_DEBUG` / `RUNNER_DEBUG=1`): it shows `::debug::`
    messages and echoes commands from the start. `workspace` makes annotation file paths relative to it.
    Use one processor per step.
    """

    def __init__(
        self,
        *,
        debug: bool = False,
        allow_unsecure_commands: bool = False,
        allow_unsecure_stop_tokens: bool = False,
        workspace: str | None = None,
    ) -> None:
        self.debug = debug
        self.echo = debug
        self._allow_unsecure_commands = allow_unsecure_commands
        self._allow_unsecure_stop_tokens = allow_unsecure_stop_tokens
        self._workspace = workspace.rstrip("/") + "/" if workspace else None
        self._stop_token: str | None = None

    @property
    def stopped(self) -> bool:
        """True between `::stop-commands::TOKEN` and `::TOKEN::`: commands are shown as plain text."""
        return self._stop_token is not None

    def process(self, line: str) -> Processed:
        """What to show for one output line (without its newline) and what the runner must do."""
        if self._stop_token is not None:
            return self._while_stopped(line)
        command = parse_command(line)
        if command is None:
            return Processed((line,))
        if command.name == "stop-commands":
            return self._stop(line, command.data)
        shown = [line] if self.echo and command.name not in _OMIT_ECHO else []
        effects: list[Effect] = []
        try:
            self._handle(command, shown, effects)
        except _Refused as refused:
            what = command.name if command.name in _OMIT_ECHO else line
            for message in (f"Unable to process command '{what}' successfully.", str(refused)):
                self._issue("error", message, shown, effects)
            effects.append(CommandFailed(str(refused)))
        return Processed(tuple(shown), tuple(effects))

    def _while_stopped(self, line: str) -> Processed:
        command = parse_command(line, frozenset({self._stop_token})) if self._stop_token else None
        if command is None:  # an empty token (allowed only as unsecure) never resumes, as on GitHub
            return Processed((line,))
        self._stop_token = None
        return Processed((line, *self._debug_lines("Resume processing commands")))

    def _stop(self, line: str, token: str) -> Processed:
        if (not token or token.lower() in _COMMANDS or token.lower() == "pause-logging") and not (
            self._allow_unsecure_stop_tokens
        ):
            shown: list[str] = []
            effects: list[Effect] = []
            self._issue("error", f"Unable to process command '{line}' successfully.", shown, effects)
            self._issue("error", _BAD_STOP_TOKEN, shown, effects)
            return Processed(tuple(shown), (*effects, CommandFailed(_BAD_STOP_TOKEN)))
        self._stop_token = token.lower()
        return Processed((line, *self._debug_lines(f"Paused processing commands until '::{token}::' is received")))

    def _handle(self, command: ParsedCommand, shown: list[str], effects: list[Effect]) -> None:
        name, data = command.name, command.data
        level = _LEVELS.get(name)
        if level is not None:
            shown.extend(_marked(level, data))
            effects.append(self._annotation(level, command))
        elif name == "debug":
            shown.extend(self._debug_lines(data))
        elif name == "group":
            shown.extend(_marked("group", data))
            effects.append(GroupStart(data))
        elif name == "endgroup":
            shown.append("##[endgroup]")
            effects.append(GroupEnd())
        elif name == "add-mask":
            if not data.strip():
                self._issue("warning", _EMPTY_MASK, shown, effects)
            else:
                if self.echo:
                    shown.append("::add-mask::***")
                effects.append(Mask(data))
        elif name == "echo":
            self._set_echo(data, shown)
        elif name in ("set-output", "save-state"):
            self._issue("warning", _DEPRECATED.format(name), shown, effects)
            key = _required_name(command)
            effects.append(Output(key, data) if name == "set-output" else SaveState(key, data))
        elif name in ("set-env", "add-path"):
            self._unsecure(command, shown, effects)
        else:  # add-matcher, remove-matcher
            shown.extend(self._debug_lines(f"Problem matchers are not supported: '::{name}::' is ignored."))

    def _unsecure(self, command: ParsedCommand, shown: list[str], effects: list[Effect]) -> None:
        if not self._allow_unsecure_commands:
            raise _Refused(_DISABLED.format(command.name))
        if command.name == "add-path":
            if not command.data:
                raise _Refused("Value cannot be null or empty. (Parameter 'path')")
            effects.append(AddPath(command.data))
            return
        key = _required_name(command)
        if key.upper() == "NODE_OPTIONS":
            self._issue("error", "Can't update NODE_OPTIONS environment variable using ::set-env:: command.",
                        shown, effects)
            return
        effects.append(SetEnv(key, command.data))

    def _set_echo(self, data: str, shown: list[str]) -> None:
        value = data.strip().lower()
        if value not in ("on", "off"):
            raise _Refused(
                f"Invalid echo command value. Possible values can be: 'on', 'off'. Current value is: '{data}'."
            )
        self.echo = value == "on"
        shown.extend(self._debug_lines(f"Setting echo command value to '{value}'"))

    def _annotation(self, level: AnnotationLevel, command: ParsedCommand) -> Annotation:
        props = {key.lower(): value for key, value in command.properties.items()}
        file = props.get("file")
        if file and self._workspace and file.startswith(self._workspace):
            file = file[len(self._workspace) :] or file
        line, end_line = _integer(props.get("line")), _integer(props.get("endline"))
        col, end_col = _integer(props.get("col")), _integer(props.get("endcolumn"))
        # GitHub's runner repairs inconsistent positions in this order (IssueCommandExtension).
        if end_line is not None and line is None:
            line = end_line
        if end_col is not None and col is None:
            col = end_col
        has_column = col is not None
        if (line is None and has_column) or (end_line is not None and line != end_line and has_column):
            col = end_col = None
        if line is not None and end_line is not None and end_line < line:
            line = end_line = None
        if col is not None and end_col is not None and end_col < col:
            col = end_col = None
        return Annotation(level, command.data, file or None, line, col, end_line, end_col, props.get("title"))

    def _issue(self, level: AnnotationLevel, message: str, shown: list[str], effects: list[Effect]) -> None:
        shown.extend(_marked(level, message))
        effects.append(Annotation(level, message))

    def _debug_lines(self, message: str) -> list[str]:
        return _marked("debug", message) if self.debug else []


def _marked(marker: str, message: str) -> list[str]:
    """`##[marker]` before each line of `message`: the form GitHub's log viewer renders."""
    return [f"##[{marker}]{part}" for part in message.replace("\r\n", "\n").split("\n")]


def _required_name(command: ParsedCommand) -> str:
    name = next((value for key, value in command.properties.items() if key.lower() == "name"), "")
    if not name:
        raise _Refused(f"Required field 'name' is missing in ##[{command.name}] command.")
    return name


def _integer(text: str | None) -> int | None:
    """An integer as .NET's `int.TryParse` reads it (surrounding spaces and a sign allowed), else None."""
    if text is None or not _INTEGER.fullmatch(text):
        return None
    return int(text)
