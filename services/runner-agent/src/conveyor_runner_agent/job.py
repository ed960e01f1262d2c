"""Executing one job on the host: its steps in order, their outputs, env and logs, and the job's outcome."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor_events import Annotation as EventAnnotation
from conveyor_events import (
    Conclusion,
    Envelope,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobStarted,
    RunEvent,
    RunRequested,
    StepCompleted,
    StepStarted,
    deterministic_id,
)
from conveyor_runtime import EventLog
from conveyor_workflow import (
    ExpressionError,
    Job,
    Status,
    Step,
    evaluate,
    evaluate_condition,
    github_context,
    interpolate,
)

from conveyor_runner_agent.action_steps import ActionSteps
from conveyor_runner_agent.adapters import (
    TRACKING_VARIABLE,
    Grace,
    LogPublisher,
    kill_tracked,
    run_process,
)
from conveyor_runner_agent.adapters.action_source import ActionSource
from conveyor_runner_agent.adapters.containers import ContainerError, JobContainers
from conveyor_runner_agent.domain import (
    DEFAULT_JOB_LOG_LIMIT,
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
    StepResult,
    job_conclusion,
    parse_env_file,
    parse_path_file,
    shell_command,
    step_name,
)

DEFAULT_TIMEOUT_MINUTES = 360
Launcher = Callable[[list[str], dict[str, str], Callable[[str], None]], Awaitable[int]]
"""Starts a step's process its own way: (argv, environment, line callback) → exit code."""
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


@dataclass
class JobRun:
    """One attempt of one job, from `JobStarted` to `JobCompleted`."""

    log: EventLog
    queued: Envelope
    request: RunRequested
    plan: JobPlanned
    work_dir: Path
    runner_id: str
    exclude: Path | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)
    log_limit: int = DEFAULT_JOB_LOG_LIMIT
    grace: Grace = field(default_factory=Grace)
    action_source: ActionSource | None = None
    platforms: Mapping[str, str] = field(default_factory=dict)
    """`runs-on` label → image to run the job in ('' keeps it on the host), as act's `-P`."""
    container_socket: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    path_entries: list[str] = field(default_factory=list)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: list[StepResult] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    _queued: list[asyncio.Future[list[Envelope]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.containers: JobContainers | None = None
        self.actions = ActionSteps(self, self.action_source or ActionSource())
        self.extra_results: list[StepResult] = []
        self._extra = {"before": 0, "after": 0}
        self.masker = Masker(self.secrets.values())
        self.budget = LogBudget(self.log_limit)
        self.started = False
        self.tracking_id = deterministic_id(self.request.run_id, self.plan.job_id, self.event.attempt, self.runner_id)

    @property
    def event(self) -> JobQueued:
        assert isinstance(self.queued.event, JobQueued)
        return self.queued.event

    async def execute(self) -> None:
        self.started = True
        job = Job.model_validate(self.plan.spec)
        self._steps_count = len(job.steps)
        folder = self.work_dir / self.request.run_id / f"{self.plan.job_id}-{self.event.attempt}"
        self.workspace = folder / "workspace"
        self.temp = folder / "temp"
        for directory in (self.workspace, self.temp):
            directory.mkdir(parents=True, exist_ok=True)
        await self._emit(
            JobStarted(
                run_id=self.request.run_id,
                job_id=self.plan.job_id,
                attempt=self.event.attempt,
                runner_id=self.runner_id,
            ),
            "started",
            wait=False,
        )
        self.logs = LogPublisher(
            self.log, self.queued, run_id=self.request.run_id, job_id=self.plan.job_id, attempt=self.event.attempt
        )
        error: str | None = None
        outputs: dict[str, str] = {}
        stopped: Conclusion | None = None
        try:
            self.env = self._job_env(job)
            minutes = self._minutes(job.timeout_minutes, DEFAULT_TIMEOUT_MINUTES)
            try:
                async with asyncio.timeout(minutes * 60):
                    await self._start_containers(job)
                    await self.actions.run_pres(job.steps, self.contexts())
                    await self._steps(job)
            except TimeoutError:
                error = f"The job has exceeded the maximum execution time of {minutes:g} minutes."
                self._log(len(self.results), f"##[error]{error}")
                stopped = Conclusion.FAILURE
            except asyncio.CancelledError:
                stopped = Conclusion.CANCELLED
            if stopped is not None:
                await self._steps(job, status="cancelled")  # what still runs: if: always() or cancelled()
            await self.actions.run_posts(
                "cancelled" if stopped else "failure" if self._status() == "failure" else "success"
            )
            outputs = self._outputs(job)
        except (ExpressionError, StepError) as failure:
            error = str(failure)
            self._log(len(self.results), f"##[error]{error}")
            self.results.append(StepResult(Conclusion.FAILURE, Conclusion.FAILURE))
        finally:
            if self.containers is not None:
                await self.containers.stop()
            kill_tracked(self.tracking_id)  # what the steps left running in the background
            if (dropped := self.budget.summary()) is not None:
                self.logs.write(max(len(self.results) - 1, 0), f"##[warning]{dropped}")
            await self.logs.close()
            shutil.rmtree(folder, ignore_errors=True)
        await self._emit(
            JobCompleted(
                run_id=self.request.run_id,
                job_id=self.plan.job_id,
                attempt=self.event.attempt,
                conclusion=stopped or job_conclusion([*self.results, *self.extra_results]),
                outputs=outputs,
                error=error,
            ),
            "completed",
        )

    async def _start_containers(self, job: Job) -> None:
        """Start the job's service and job containers, when it has any: its steps then run in the job container.

        The job container is the job's `container:`, or the image `-P LABEL=IMAGE` maps one of its `runs-on`
        labels to. JavaScript actions still run on the host.
        """
        contexts = self.contexts()
        spec = _interpolated(job.container, contexts) or self._platform_image()
        if spec is None:
            if job.services:
                raise StepError("service containers need a job container here: give the job a container: image")
            return
        services = {key: _interpolated(value, contexts) for key, value in job.services.items()}
        self.containers = JobContainers(
            f"{self.plan.job_id}-{self.event.attempt}", spec, services, socket=self.container_socket
        )
        try:
            await self.containers.start(self.workspace, self.temp)
        except (ContainerError, OSError) as error:
            raise StepError(f"the job's containers could not start: {error}") from error

    def _platform_image(self) -> str | None:
        for label in self.plan.runs_on:
            image = self.platforms.get(label)
            if image is not None:
                return image or None
        return None

    async def _steps(self, job: Job, *, status: Status | None = None) -> None:
        """Run the steps not yet run, in order; `status` overrides what the status functions report."""
        for index in range(len(self.results), len(job.steps)):
            self.results.append(await self._step(index, job.steps[index], job, status=status))

    def _minutes(self, value: float | str | None, default: float) -> float:
        if isinstance(value, str):
            value = evaluate(value, self.contexts())
        try:
            minutes = float(value) if value not in (None, "") else default
        except (TypeError, ValueError):
            raise StepError(f"timeout-minutes must be a number, not {value!r}") from None
        return minutes if minutes > 0 else default

    # -- what the action steps use ---------------------------------------------------------------------------

    def failure(self, message: str) -> StepError:
        """The error that fails the current step with `message` (none shown when it is empty)."""
        return StepError(message)

    @staticmethod
    def step_errors() -> tuple[type[Exception], ...]:
        return (StepError,)

    @staticmethod
    def new_record() -> StepRecord:
        return StepRecord()

    def default_timeout(self) -> float:
        return DEFAULT_TIMEOUT_MINUTES

    def log_line(self, index: int, line: str) -> None:
        self._log(index, line)

    def log_error(self, index: int, error: Exception) -> None:
        if str(error):
            self._log(index, f"##[error]{error}")

    async def extra_step(
        self,
        name: str,
        condition: str,
        status: Status,
        run: Callable[[int, StepRecord], Awaitable[None]],
        *,
        before: bool = False,
    ) -> None:
        """A step the job's own steps imply, such as an action's `pre` or `post` script.

        Those before the job's steps get the indexes -1, -2, ..., those after them count on from the last step.
        """
        if not evaluate_condition(condition, self.contexts(), status=status):
            return
        side = "before" if before else "after"
        self._extra[side] += 1
        index = -self._extra[side] if before else self._steps_count + self._extra[side] - 1
        await self._emit(
            StepStarted(
                run_id=self.request.run_id,
                job_id=self.plan.job_id,
                attempt=self.event.attempt,
                step_index=index,
                name=name,
            ),
            "step-started",
            index,
            wait=False,
        )
        record = StepRecord()
        outcome = Conclusion.SUCCESS
        try:
            await run(index, record)
        except StepError as failure:
            self.log_error(index, failure)
            outcome = Conclusion.FAILURE
        result = StepResult(outcome, outcome, record.outputs)
        self.extra_results.append(result)
        await self._completed(index, Step(name=name, run="true"), name, result, record)

    def _log(self, index: int, line: str) -> None:
        """Every line leaves the runner through here: masked, then counted against the job's log budget."""
        admitted = self.budget.admit(self.masker.mask(line))
        if admitted is not None:
            self.logs.write(index, admitted)

    async def abandon(self, error: str, conclusion: Conclusion = Conclusion.FAILURE) -> None:
        """End the job when it could not run at all."""
        await self._emit(
            JobCompleted(
                run_id=self.request.run_id,
                job_id=self.plan.job_id,
                attempt=self.event.attempt,
                conclusion=conclusion,
                error=error,
            ),
            "completed",
        )

    # -- contexts -------------------------------------------------------------------------------------------

    def contexts(self, *, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        return {
            "github": github_context(
                event_name=self.request.event_name,
                payload=self.request.payload,
                ref=self.request.ref,
                sha=self.request.sha,
                repository=self.request.repository,
                actor=self.request.actor,
                run_id=self.request.run_id,
                workspace=str(self.workspace),
                job=self.plan.job_key,
            ),
            "env": dict(self.env if env is None else env),
            "job": {"status": self._status(), "container": {}, "services": {}},
            "steps": self.steps,
            "runner": {
                "os": "Linux",
                "arch": _arch(),
                "name": self.runner_id,
                "temp": str(self.temp),
                "tool_cache": str(self.temp / "tool-cache"),
                "debug": "",
            },
            "needs": {key: need.model_dump(mode="json") for key, need in self.event.needs.items()},
            "matrix": self.plan.matrix or {},
            "strategy": {"fail-fast": True, "job-index": 0, "job-total": 1, "max-parallel": 1},
            "inputs": dict(self.request.inputs),
            "secrets": dict(self.secrets),
            "vars": dict(self.request.variables),
        }

    def _status(self) -> str:
        return "failure" if any(r.conclusion == Conclusion.FAILURE for r in self.results) else "success"

    def _job_env(self, job: Job) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in (self.request.env, self.plan.workflow_env, job.env):
            for name, value in source.items():
                env[name] = interpolate(value, self.contexts(env=env))
        return env

    def _outputs(self, job: Job) -> dict[str, str]:
        contexts = self.contexts()
        return {name: interpolate(value, contexts) for name, value in job.outputs.items()}

    # -- steps ----------------------------------------------------------------------------------------------

    async def _step(self, index: int, step: Step, job: Job, *, status: Status | None = None) -> StepResult:
        contexts = self.contexts()
        name = interpolate(step_name(step), contexts)
        if status is None:
            status = "failure" if self._status() == "failure" else "success"
        runs = evaluate_condition(step.if_, contexts, status=status)
        record = StepRecord()
        if not runs:
            result = StepResult(Conclusion.SKIPPED, Conclusion.SKIPPED)
            await self._completed(index, step, name, result, record)
            return result
        await self._emit(
            StepStarted(
                run_id=self.request.run_id,
                job_id=self.plan.job_id,
                attempt=self.event.attempt,
                step_index=index,
                step_id=step.id,
                name=name,
            ),
            "step-started",
            index,
            wait=False,
        )
        try:
            await self._run_step(index, step, job, contexts, record, name)
            outputs, outcome = record.outputs, Conclusion.SUCCESS
        except asyncio.CancelledError:
            self._log(index, "##[error]The operation was canceled.")
            cancelled = StepResult(Conclusion.CANCELLED, Conclusion.CANCELLED)
            self.results.append(cancelled)
            await asyncio.shield(self._completed(index, step, name, cancelled, record))
            raise
        except StepError as failure:
            self.log_error(index, failure)
            if str(failure):
                record.annotations.append(EventAnnotation(level="error", message=self.masker.mask(str(failure))))
            outputs, outcome = {}, Conclusion.FAILURE
        continue_on_error = step.continue_on_error
        if isinstance(continue_on_error, str):
            continue_on_error = bool(evaluate(continue_on_error, contexts))
        conclusion = Conclusion.SUCCESS if outcome == Conclusion.FAILURE and continue_on_error else outcome
        result = StepResult(outcome, conclusion, outputs)
        await self._completed(index, step, name, result, record)
        return result

    async def _completed(self, index: int, step: Step, name: str, result: StepResult, record: StepRecord) -> None:
        await self.logs.flush()
        if step.id:
            self.steps[step.id] = {
                "outputs": result.outputs,
                "outcome": result.outcome.value,
                "conclusion": result.conclusion.value,
            }
        await self._emit(
            StepCompleted(
                run_id=self.request.run_id,
                job_id=self.plan.job_id,
                attempt=self.event.attempt,
                step_index=index,
                outcome=result.outcome,
                conclusion=result.conclusion,
                outputs=result.outputs,
                step_id=step.id,
                name=name,
                annotations=record.annotations,
                summary=self.masker.mask(record.summary),
            ),
            "step-completed",
            index,
        )

    async def _run_step(
        self, index: int, step: Step, job: Job, contexts: dict[str, Any], record: StepRecord, name: str
    ) -> None:
        env = self.step_env(step.env, contexts)
        if step.uses is not None:
            await self.actions.run(index, step, {**contexts, "env": env}, env, record, name)
            return
        defaults = {**self.plan.workflow_defaults.get("run", {}), **job.defaults.get("run", {})}
        working_directory = step.working_directory or defaults.get("working-directory")
        await self.run_script(
            index,
            interpolate(step.run or "", {**contexts, "env": env}),
            step.shell or defaults.get("shell"),
            env=env,
            cwd=self.workspace / interpolate(working_directory, contexts) if working_directory else self.workspace,
            record=record,
            timeout_minutes=self._minutes(step.timeout_minutes, DEFAULT_TIMEOUT_MINUTES),
            name=name,
        )

    def step_env(
        self, extra: Mapping[str, str], contexts: Mapping[str, Any], base: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """`base` (the job's environment) with a step's own `env` over it, each value interpolated in order."""
        env = dict(self.env if base is None else base)
        for variable, value in extra.items():
            env[variable] = interpolate(str(value), {**contexts, "env": env})
        return env

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
            command = shell_command(shell)
        except ValueError as error:
            raise StepError(str(error)) from error
        tag = f"{index}-{len(self.scripts)}"
        self.scripts.append(tag)
        script_path = self.temp / f"step-{tag}{command.extension}"
        script_path.write_text(script)
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
            raise StepError(f"working-directory '{cwd.relative_to(self.workspace)}' does not exist in the workspace")
        tag = f"{index}-{len(self.scripts)}"
        self.scripts.append(tag)
        files = {file: self.temp / f"{file.lower()}-{tag}" for file in _FILE_COMMANDS}
        for file in files.values():
            file.touch()
        on_host = launch is None and (self.containers is None or not in_container)
        process_env = self._process_env(env, files, host=on_host)
        process_env.update({f"STATE_{key}": value for key, value in (state or {}).items()})
        commands = CommandProcessor(
            debug=self._debug(),
            allow_unsecure_commands=process_env.get("ACTIONS_ALLOW_UNSECURE_COMMANDS") == "true",
            workspace=str(self.workspace),
        )
        try:
            async with asyncio.timeout(timeout_minutes * 60):
                if launch is not None:
                    code = await launch(
                        argv, process_env, lambda line: self._command_line(index, line, commands, record)
                    )
                elif self.containers is not None and in_container:
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
        try:
            record.outputs.update(parse_env_file(files["GITHUB_OUTPUT"].read_text(errors="replace")))
            self.env.update(parse_env_file(files["GITHUB_ENV"].read_text(errors="replace"), what="GITHUB_ENV"))
            saved = {
                **record.state,
                **parse_env_file(files["GITHUB_STATE"].read_text(errors="replace"), what="GITHUB_STATE"),
            }
        except FileCommandError as error:
            raise StepError(str(error)) from error
        self.path_entries[:0] = reversed(parse_path_file(files["GITHUB_PATH"].read_text(errors="replace")))
        record.summary += files["GITHUB_STEP_SUMMARY"].read_text(errors="replace")
        if code != 0:
            raise StepError(f"Process completed with exit code {code}.")
        if record.failures:
            raise StepError(record.failures[0])
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
                    self.path_entries.insert(0, effect.path)
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
                    record.failures.append(effect.message)
        for shown in processed.lines:
            self._log(index, shown)

    def _debug(self) -> bool:
        """GitHub's step debug logging: the ACTIONS_STEP_DEBUG secret or variable, or RUNNER_DEBUG=1."""
        flags = (self.secrets.get("ACTIONS_STEP_DEBUG"), self.request.variables.get("ACTIONS_STEP_DEBUG"))
        return "true" in flags or self.request.variables.get("RUNNER_DEBUG") == "1"

    def _process_env(self, env: Mapping[str, str], files: Mapping[str, Path], *, host: bool = True) -> dict[str, str]:
        """A step process's environment: the runner's variables and `env`, over the host's own when on the host."""
        request = self.request
        base = (
            {name: value for name, value in os.environ.items() if not name.startswith(("GITHUB_", "RUNNER_"))}
            if host
            else {"PATH": _CONTAINER_PATH, "HOME": "/root"}
        )
        event_path = self.temp / "event.json"
        if not event_path.exists():
            event_path.write_text(json.dumps(request.payload))
        defaults = {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_SHA": request.sha,
            "GITHUB_REF": request.ref,
            "GITHUB_REF_NAME": request.ref.removeprefix("refs/heads/").removeprefix("refs/tags/"),
            "GITHUB_REF_TYPE": "tag" if request.ref.startswith("refs/tags/") else "branch",
            "GITHUB_EVENT_NAME": request.event_name,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_REPOSITORY": request.repository,
            "GITHUB_RUN_ID": request.run_id,
            "GITHUB_RUN_NUMBER": "1",
            "GITHUB_RUN_ATTEMPT": str(self.event.attempt),
            "GITHUB_JOB": self.plan.job_key,
            "GITHUB_ACTOR": request.actor,
            "GITHUB_WORKFLOW": self.plan.workflow,
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": _arch(),
            "RUNNER_NAME": self.runner_id,
            "RUNNER_TEMP": str(self.temp),
            TRACKING_VARIABLE: self.tracking_id,
            **{name: str(path) for name, path in files.items()},
        }
        merged = {**base, **defaults, **env}
        if self.path_entries:
            merged["PATH"] = os.pathsep.join([*self.path_entries, merged.get("PATH", os.defpath)])
        return merged

    async def _emit(self, event: RunEvent, kind: str, index: int | None = None, *, wait: bool = True) -> None:
        """Append `event`; without `wait`, only queue it (the order is kept) and go on with the step.

        What was only queued is awaited before the next event that is waited for, so its errors still surface.
        """
        event_id = deterministic_id(self.request.run_id, self.plan.job_id, self.event.attempt, kind, index)
        envelope = Envelope.wrap(event, stream=self.request.run_id, cause=self.queued, event_id=event_id)
        self._queued.append(self.log.enqueue([envelope]))
        if wait:
            queued, self._queued = self._queued, []
            await asyncio.gather(*queued)


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "X64", "amd64": "X64", "aarch64": "ARM64", "arm64": "ARM64"}.get(machine, machine.upper())


def _interpolated(value: Any, contexts: Mapping[str, Any]) -> Any:
    """A `container:` or `services:` value with the expressions in its strings evaluated."""
    if isinstance(value, str):
        return interpolate(value, contexts) if "${{" in value else value
    if isinstance(value, Mapping):
        return {key: _interpolated(item, contexts) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolated(item, contexts) for item in value]
    return value
