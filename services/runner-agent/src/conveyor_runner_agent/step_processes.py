"""The processes of a job's steps: scripts and commands with their environment, file and workflow commands.

`StepProcesses` is the part of a job run that starts processes (on the host, in the job container, or as
a launcher such as a Docker action says) and reads what they report; `JobRun` orchestrates the steps.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from conveyor_events import Annotation as EventAnnotation
from conveyor_events import JobPlanned, JobQueued, RunRequested

from conveyor_runner_agent.adapters import TRACKING_VARIABLE, Grace, LogPublisher, run_process
from conveyor_runner_agent.adapters.containers import CONTAINER_HOME, JobContainers
from conveyor_runner_agent.adapters.docker_actions import WORKFLOW, WORKSPACE
from conveyor_runner_agent.domain import (
    AddPath,
    Annotation,
    CommandFailed,
    CommandProcessor,
    FileCommandError,
    LogBudget,
    Mask,
    Masker,
    Output,
    SaveState,
    SetEnv,
    StreamMasker,
    parse_env_file,
    parse_path_file,
    shell_command,
)
from conveyor_runner_agent.domain.log_lines import LinePiece

Launcher = Callable[[list[str], dict[str, str], Callable[[str], None]], Awaitable[int]]
"""Starts a step's process its own way: (argv, environment, line callback) → exit code."""
Place = Literal["host", "job container", "action container"]
"""Where a step's process runs: on the host, in the job's container, or in a Docker action's own container."""
_CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_FILE_COMMANDS = ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY", "GITHUB_STATE")


@dataclass
class StepRecord:
    """What a step produced besides its log: outputs, annotations, its summary, and failed commands."""

    outputs: dict[str, str] = field(default_factory=dict)
    annotations: list[EventAnnotation] = field(default_factory=list)
    summary: str = ""
    failures: list[str] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)


class StepError(Exception):
    """A step could not be run as written; the message is shown in its log."""


class StepProcesses:
    """Starting a step's processes and reading what they report; mixed into `JobRun`, which sets these."""

    request: RunRequested
    plan: JobPlanned
    runner_id: str
    secrets: Mapping[str, str]
    grace: Grace
    workspace: Path
    temp: Path
    env: dict[str, str]
    path_entries: list[str]
    scripts: list[str]
    masker: Masker
    budget: LogBudget
    logs: LogPublisher
    containers: JobContainers | None
    tracking_id: str
    action: str
    """The running step's `github.action` (GITHUB_ACTION)."""
    step_index: int
    """The running step's place in the job: its file commands' files are named by it."""
    processes: int
    """How many processes the job has started: each gets file-command files of its own."""
    work_dir: Path
    tool_slot: int
    """Which of the agent's tool caches the job uses (see `attempts.ToolCaches`)."""

    @property
    def tool_cache(self) -> Path:
        """`RUNNER_TOOL_CACHE`: where setup actions keep the tools they download, kept from job to job, as in a
        self-hosted runner's `_work/_tool`."""
        return self.work_dir / "_tool" / str(self.tool_slot)

    @property
    def event(self) -> JobQueued:
        raise NotImplementedError

    def _github(self, workspace: str | None = None) -> dict[str, Any]:
        """The job's `github` context."""
        raise NotImplementedError

    def _log(self, index: int, line: str) -> None:
        """Every line leaves the runner through here: masked, then counted against the job's log budget.

        The pieces of a line too long to hold (`LinePiece`) are masked as one text, so a secret that a cut
        falls in is masked too; what each piece shows then ends where no later piece can change it.
        """
        streams: dict[int, StreamMasker] = self.__dict__.setdefault("_piece_maskers", {})
        stream = streams.get(index)
        if stream is None and isinstance(line, LinePiece):
            stream = streams[index] = StreamMasker(self.masker)
        if stream is None:
            text = self.masker.mask(line)
        elif isinstance(line, LinePiece):
            text = stream.feed(line)
            if not text:
                return
        else:
            text = stream.feed(line) + stream.finish()
            del streams[index]
        admitted = self.budget.admit(text)
        if admitted is not None:
            self.logs.write(index, admitted)

    async def run_script(
        self,
        index: int,
        script: str,
        shell: str | None,
        *,
        env: Mapping[str, str],
        cwd: Path,
        record: StepRecord,
        timeout_minutes: float,
        name: str,
    ) -> None:
        """Run a `run:` script with its shell, as a step (or a step of a composite action) of this job."""
        try:
            command = shell_command(shell, in_container=self.in_job_container)
        except ValueError as error:
            raise StepError(str(error)) from error
        tag = f"{index}-{len(self.scripts)}"
        self.scripts.append(tag)
        script_path = self.temp / f"step-{tag}{command.extension}"
        script_path.write_text(command.script(script))
        await self.run_command(
            index,
            command.argv(str(script_path)),
            env=env,
            cwd=cwd,
            record=record,
            timeout_minutes=timeout_minutes,
            name=name,
        )

    async def run_command(
        self,
        index: int,
        argv: list[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        record: StepRecord,
        timeout_minutes: float,
        name: str,
        state: Mapping[str, str] | None = None,
        in_container: bool = True,
        launch: Launcher | None = None,
    ) -> dict[str, str]:
        """Run one process of a step: file commands, workflow commands, masks and its timeout applied.

        The process runs in the job container when there is one (and `in_container`), on the host otherwise,
        or however `launch` starts it (a Docker action's own container). Returns what it saved with
        `$GITHUB_STATE` or `::save-state::` (an action's state for its post step).
        """
        if not cwd.is_dir():
            shown = cwd.relative_to(self.workspace) if cwd.is_relative_to(self.workspace) else cwd
            raise StepError(f"working-directory '{shown}' does not exist")
        files = self.command_files(index)
        self.processes += 1
        for file in files.values():
            file.touch()
        place: Place = (
            "action container" if launch is not None else "job container" if in_container and self.in_job_container
            else "host"
        )
        process_env = self._process_env(env, files, place)
        process_env.update({f"STATE_{key}": value for key, value in (state or {}).items()})
        commands = CommandProcessor(
            debug=self._debug(),
            allow_unsecure_commands=_says_true(process_env.get("ACTIONS_ALLOW_UNSECURE_COMMANDS")),
            allow_unsecure_stop_tokens=_says_true(process_env.get("ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS")),
            workspace=str(self.workspace),
        )
        try:
            async with asyncio.timeout(timeout_minutes * 60):
                if launch is not None:
                    code = await launch(
                        argv, process_env, lambda line: self._command_line(index, line, commands, record)
                    )
                elif self.containers is not None and in_container and self.in_job_container:
                    code = await self.containers.exec(
                        argv,
                        process_env,
                        cwd,
                        lambda line: self._command_line(index, line, commands, record),
                    )
                else:
                    code = await run_process(
                        argv,
                        cwd=cwd,
                        env=process_env,
                        on_line=lambda line: self._command_line(index, line, commands, record),
                        grace=self.grace,
                    )
        except TimeoutError:
            raise StepError(f"The action '{name}' has timed out after {timeout_minutes:g} minutes.") from None
        except OSError as error:  # the shell or program is not there, or cannot be run: the step fails, not the job
            raise StepError(f"{argv[0]}: {error.strerror or error}") from None
        # Each file on its own, as GitHub's runner does: one that cannot be read fails the step, not the others.
        errors: list[str] = []

        def read(name: str) -> dict[str, str]:
            try:
                return parse_env_file(files[name].read_text(errors="replace"), what=name)
            except FileCommandError as error:
                errors.append(str(error))
                return {}

        record.outputs.update(read("GITHUB_OUTPUT"))
        self.env.update(_settable(read("GITHUB_ENV"), index, self._log))
        saved = {**record.state, **read("GITHUB_STATE")}
        for entry in parse_path_file(files["GITHUB_PATH"].read_text(errors="replace")):
            self._prepend_path(entry)
        record.summary += files["GITHUB_STEP_SUMMARY"].read_text(errors="replace")
        if code != 0:
            raise StepError(f"{EXIT_CODE} {code}.")
        if errors:
            raise StepError(errors[0])
        if record.failures:
            raise StepError("")  # what failed it was shown, and annotated, when the command came
        return saved

    def _command_line(self, index: int, line: str, commands: CommandProcessor, record: StepRecord) -> None:
        """One line of a step's output: apply its workflow command, then log what is shown."""
        processed = commands.process(line)
        for effect in processed.effects:
            match effect:
                case Mask():
                    self.masker.add(effect.value)
                case Output():
                    record.outputs[effect.name] = effect.value
                case SaveState():
                    record.state[effect.name] = effect.value
                case SetEnv():
                    self.env[effect.name] = effect.value
                case AddPath():
                    self._prepend_path(effect.path)
                case Annotation():
                    record.annotations.append(
                        EventAnnotation(
                            level=effect.level,
                            message=self.masker.mask(effect.message),
                            file=effect.file,
                            line=effect.line,
                            column=effect.col,
                            end_line=effect.end_line,
                            end_column=effect.end_col,
                            title=effect.title,
                        )
                    )
                case CommandFailed():
                    # Shown once, where it happened (the processed lines say it); the step fails at its end.
                    record.failures.append(effect.message)
                    record.annotations.append(EventAnnotation(level="error", message=self.masker.mask(effect.message)))
        for shown in processed.lines:
            self._log(index, shown)

    def command_files(self, index: int) -> dict[str, Path]:
        """The file-command files (GITHUB_OUTPUT, GITHUB_ENV, …) the next process of step `index` gets: what
        `github.env` and `github.path` name while the step's expressions are evaluated."""
        return {file: self.temp / f"{file.lower()}-{index}-{self.processes}" for file in _FILE_COMMANDS}

    @property
    def in_job_container(self) -> bool:
        """The job's steps run in its job container (it has one, and it started)."""
        return self.containers is not None and self.containers.container_id is not None

    def _prepend_path(self, entry: str) -> None:
        """Put `entry` first in the job's PATH additions; added again, it moves to the front, as on GitHub."""
        if entry in self.path_entries:
            self.path_entries.remove(entry)
        self.path_entries.insert(0, entry)

    @cached_property
    def _job_variables(self) -> dict[str, str]:
        """The runner's variables that stay the same for every step of the job: worked out once."""
        event_path = self.temp / "event.json"
        if not event_path.exists():
            event_path.write_text(json.dumps(self.request.payload))
        github = self._github(str(self.workspace))
        return {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            **{f"GITHUB_{key.upper()}": _variable(github[key]) for key in _GITHUB_VARIABLES},
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_WORKFLOW": github["workflow"],
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": runner_arch(),
            "RUNNER_NAME": self.runner_id,
            "RUNNER_TEMP": str(self.temp),
            "RUNNER_TOOL_CACHE": str(self.tool_cache),
            "RUNNER_ENVIRONMENT": "self-hosted",
            **({"RUNNER_DEBUG": "1"} if self._debug() else {}),
        }

    def _debug(self) -> bool:
        """GitHub's step debug logging: the ACTIONS_STEP_DEBUG secret or variable, or RUNNER_DEBUG=1."""
        flags = (self.secrets.get("ACTIONS_STEP_DEBUG"), self.request.variables.get("ACTIONS_STEP_DEBUG"))
        return any(_says_true(flag) for flag in flags) or self.request.variables.get("RUNNER_DEBUG") == "1"

    def _process_env(self, env: Mapping[str, str], files: Mapping[str, Path], place: Place) -> dict[str, str]:
        """A step process's environment: the runner's variables and `env`, over the host's own when on the host.

        In a container `$HOME` is the job's home folder as mounted there, and the image's own PATH is kept, as
        on GitHub; a Docker action's container finds the workspace and the event where GitHub's runner puts them.
        """
        if place == "host":
            base = {name: value for name, value in os.environ.items() if not name.startswith(("GITHUB_", "RUNNER_"))}
        elif place == "job container":
            image_path = self.containers.path if self.containers is not None else None
            base = {"PATH": image_path or _CONTAINER_PATH, "HOME": CONTAINER_HOME}
        else:
            base = {"HOME": CONTAINER_HOME}
        defaults = {
            **self._job_variables,
            "GITHUB_ACTION": self.action,
            TRACKING_VARIABLE: self.tracking_id,
            **{name: str(path) for name, path in files.items()},
        }
        # The runner's own variables cannot be overwritten by `env` or `$GITHUB_ENV`, as on GitHub (CI can).
        own = {name: value for name, value in defaults.items() if name.startswith(("GITHUB_", "RUNNER_"))}
        merged = {**base, **defaults, **env, **own}
        if place == "action container":
            merged.update(GITHUB_WORKSPACE=WORKSPACE, GITHUB_EVENT_PATH=f"{WORKFLOW}/event.json")
        elif self.path_entries:
            merged["PATH"] = os.pathsep.join([*self.path_entries, merged.get("PATH", os.defpath)])
        return merged


def _says_true(value: str | None) -> bool:
    """A setting of the runner's (ACTIONS_STEP_DEBUG, ACTIONS_ALLOW_UNSECURE_COMMANDS, …): `true` in any case."""
    return value is not None and value.strip().lower() == "true"


def _settable(variables: dict[str, str], index: int, log: Callable[[int, str], None]) -> dict[str, str]:
    """What `$GITHUB_ENV` may set: not NODE_OPTIONS, which GitHub refuses for security, with a warning."""
    if "NODE_OPTIONS" in variables:
        log(index, "##[warning]NODE_OPTIONS cannot be set with $GITHUB_ENV; it was left as it was.")
        variables = {name: value for name, value in variables.items() if name != "NODE_OPTIONS"}
    return variables


EXIT_CODE = "Process completed with exit code"
"""How the error of a step whose process exited non-zero begins."""

_GITHUB_VARIABLES = (
    "actor", "actor_id", "api_url", "base_ref", "event_name", "graphql_url", "head_ref", "job", "ref",
    "ref_name", "ref_protected", "ref_type", "repository", "repository_id", "repository_owner", "repository_owner_id",
    "retention_days", "run_attempt", "run_id", "run_number", "server_url", "sha", "triggering_actor", "workflow_ref",
    "workflow_sha", "workspace",
)
"""The keys of the `github` context a step also finds as `GITHUB_<KEY>` variables."""


def _variable(value: Any) -> str:
    """A context value as a variable holds it: booleans as `true`/`false`, as GitHub writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def runner_arch() -> str:
    """The `RUNNER_ARCH` of this machine as GitHub names it (X64, ARM64, ...)."""
    machine = platform.machine().lower()
    return {"x86_64": "X64", "amd64": "X64", "aarch64": "ARM64", "arm64": "ARM64"}.get(machine, machine.upper())
