"""Executing one job on the host: its steps in order, their outputs, env and logs, and the job's outcome."""

from __future__ import annotations

import asyncio
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
from conveyor_runtime import GitRemotes
from conveyor_workflow import (
    ExpressionError,
    Job,
    Status,
    Step,
    as_flag,
    as_text,
    evaluate,
    evaluate_condition,
    github_context,
    interpolate,
)

from conveyor_runner_agent.action_steps import ActionSteps
from conveyor_runner_agent.adapters import (
    Grace,
    LogPublisher,
    kill_tracked,
)
from conveyor_runner_agent.adapters.action_source import ActionSource
from conveyor_runner_agent.adapters.containers import ContainerError, JobContainers
from conveyor_runner_agent.adapters.results import Caller, ResultsService
from conveyor_runner_agent.domain import (
    DEFAULT_JOB_LOG_LIMIT,
    LogBudget,
    Masker,
    StepResult,
    action_names,
    job_conclusion,
    passed_secrets,
    step_name,
)
from conveyor_runner_agent.job_results import JobResults
from conveyor_runner_agent.sink import JobEvents
from conveyor_runner_agent.step_processes import StepError, StepProcesses, StepRecord, runner_arch

DEFAULT_TIMEOUT_MINUTES = 360
SUMMARY_LIMIT = 1024 * 1024
"""The most a step's `$GITHUB_STEP_SUMMARY` may hold, as on GitHub (1 MiB)."""
ANNOTATIONS_PER_LEVEL = 10
"""The error and the warning annotations GitHub keeps of a step: the first ten of each."""


def capped(annotations: list[EventAnnotation]) -> list[EventAnnotation]:
    """The step's annotations as GitHub keeps them: at most `ANNOTATIONS_PER_LEVEL` errors and as many warnings."""
    seen: dict[str, int] = {}
    kept = []
    for annotation in annotations:
        seen[annotation.level] = seen.get(annotation.level, 0) + 1
        if annotation.level == "notice" or seen[annotation.level] <= ANNOTATIONS_PER_LEVEL:
            kept.append(annotation)
    return kept


@dataclass
class JobRun(StepProcesses, JobResults):
    """One attempt of one job, from `JobStarted` to `JobCompleted`; its events go to `log`."""

    log: JobEvents
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
    remotes: GitRemotes | None = None
    """Where the checkout fetches a repository registered by clone URL, with its token."""
    results_service: ResultsService | None = None
    """The results service its actions upload artifacts to and download them from."""
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
        self.action = ""  # the running step's, see `action_names`
        self.step_index = 0
        self.processes = 0
        self.timed_out: float | None = None
        """Set to the limit in minutes when the scheduler decided the job outlived it (its clock may run ahead)."""
        self.job_minutes: float = DEFAULT_TIMEOUT_MINUTES
        self.tool_slot = 0
        self._runtime_token: str | None = None
        """The job's ACTIONS_RUNTIME_TOKEN, made when an action first needs it."""
        self._watched: Caller | None = None
        """The job as the results service knows it, told of the artifacts the job's actions upload."""
        self.stopping = False
        """The job is being stopped (cancelled, or past its timeout): `job.status` is cancelled."""
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
            self._pass_secrets()
            self.env = self._job_env(job)
            minutes = self.job_minutes = self._minutes(job.timeout_minutes, DEFAULT_TIMEOUT_MINUTES)
            try:
                async with asyncio.timeout(minutes * 60):
                    await self._start_containers(job)
                    await self.actions.run_pres(job.steps, self.contexts())
                    await self._steps(job)
            except (TimeoutError, asyncio.CancelledError) as stop:
                if isinstance(stop, TimeoutError) or self.timed_out is not None:
                    limit = minutes if self.timed_out is None else self.timed_out
                    error = f"The job has exceeded the maximum execution time of {limit:g} minutes."
                    self._log(len(self.results), f"##[error]{error}")
                    stopped = Conclusion.FAILURE
                else:
                    stopped = Conclusion.CANCELLED
            if stopped is not None:
                self.stopping = True
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
            if self.results_service is not None and self._watched is not None:
                self.results_service.unwatch(self._watched)
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
        labels to. A job on the host may have services too: its steps reach them through their published ports
        (`localhost:${{ job.services.<key>.ports['<port>'] }}`).
        """
        contexts = self.contexts()
        spec = _interpolated(job.container, contexts) or self._platform_image()
        if spec is None and not job.services:
            return
        services = {key: _interpolated(value, contexts) for key, value in job.services.items()}
        try:
            self.containers = JobContainers(
                f"{self.plan.job_id}-{self.event.attempt}", spec, services, socket=self.container_socket
            )
            roots = await asyncio.to_thread(self.actions.source.roots)
            await self.containers.start(self.workspace, self.temp, shared=[*roots, self.tool_cache])
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
        names = action_names(job.steps)
        for index in range(len(self.results), len(job.steps)):
            self.action, self.step_index = names[index], index
            self.results.append(await self._step(index, job.steps[index], job, status=status))

    def _minutes(self, value: float | str | None, default: float, contexts: Mapping[str, Any] | None = None) -> float:
        if isinstance(value, str):
            value = evaluate(value, self.contexts() if contexts is None else contexts)
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

    def _pass_secrets(self) -> None:
        """A job of a called workflow sees only the secrets its callers passed down (masked like the others)."""
        if not self.plan.call:
            return
        contexts = {"github": self._github(), "vars": dict(self.request.variables)}
        self.secrets = passed_secrets(self.plan.call, self.secrets, contexts, self.event.callers)
        for value in self.secrets.values():
            self.masker.add(value)

    def _github(self, workspace: str | None = None) -> dict[str, Any]:
        """The `github` context; `github.job` is the job's key in its own workflow, a called one's included."""
        files = self.command_files(self.step_index)
        more: dict[str, Any] = {
            "action": self.action,
            "event_path": str(self.temp / "event.json"),
            "env": str(files["GITHUB_ENV"]),
            "path": str(files["GITHUB_PATH"]),
        }
        if workspace is not None:
            more["workspace"] = workspace
        return github_context(
            event_name=self.request.event_name,
            payload=self.request.payload,
            ref=self.request.ref,
            sha=self.request.sha,
            repository=self.request.github_repository,
            actor=self.request.actor,
            run_id=self.request.run_id,
            run_number=self.event.run_number or 1,
            run_attempt=self.event.run_attempt or self.event.attempt,
            workflow=self.plan.workflow_name or self.plan.workflow,
            workflow_path=self.plan.workflow,
            job=self.plan.job_key.rsplit("/", 1)[-1],
            **more,
        )

    def contexts(self, *, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        return {
            "github": self._github(str(self.workspace)),
            "env": dict(self.env if env is None else env),
            "job": {"status": self._status(), **self._job_containers()},
            "steps": self.steps,
            "runner": {
                "os": "Linux",
                "arch": runner_arch(),
                "name": self.runner_id,
                "temp": str(self.temp),
                "tool_cache": str(self.tool_cache),
                "debug": "1" if self._debug() else "",
            },
            "needs": {key: need.model_dump(mode="json") for key, need in self.event.needs.items()},
            "matrix": self.plan.matrix or {},
            "strategy": self.event.strategy or {"fail-fast": True, "job-index": 0, "job-total": 1, "max-parallel": 1},
            "inputs": dict(self.request.inputs if self.event.inputs is None else self.event.inputs),
            "secrets": dict(self.secrets),
            "vars": dict(self.request.variables),
        }

    def _job_containers(self) -> dict[str, Any]:
        """`job.container` (its id and network) and `job.services` (each one's id, network and ports)."""
        containers = self.containers
        if containers is None:
            return {"container": {}, "services": {}}
        container = {"id": containers.container_id, "network": containers.name} if containers.container_id else {}
        services = {
            key: {"id": info.id, "network": info.network, "ports": dict(info.ports)}
            for key, info in containers.services.items()
        }
        return {"container": container, "services": services}

    def _status(self) -> str:
        """`job.status`: cancelled once the job is being stopped (cancelled, or past its timeout), else failure
        when a step failed."""
        if self.stopping:
            return "cancelled"
        return "failure" if any(r.conclusion == Conclusion.FAILURE for r in self.results) else "success"

    def _job_env(self, job: Job) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in (self.request.env, self.plan.workflow_env, job.env):
            for name, value in source.items():
                env[name] = interpolate(value, self.contexts(env=env))
        return env

    def _outputs(self, job: Job) -> dict[str, str]:
        """The job's `outputs`; one that holds a secret or a masked value is left out with a warning, as GitHub's
        runner does: the jobs that need this one would otherwise read it unmasked."""
        contexts = self.contexts()
        outputs: dict[str, str] = {}
        for name, expression in job.outputs.items():
            value = interpolate(expression, contexts)
            if self.masker.mask(value) != value:
                warning = f"##[warning]Skip output '{name}' since it may contain secret."
                self._log(max(len(self.results) - 1, 0), warning)
                continue
            outputs[name] = value
        return outputs

    # -- steps ----------------------------------------------------------------------------------------------

    async def _step(self, index: int, step: Step, job: Job, *, status: Status | None = None) -> StepResult:
        """One step: its own `env` is evaluated first and is what its `if:`, name, working directory, timeout and
        `continue-on-error` read as `env`, as on GitHub (an `env` that cannot be evaluated fails the step)."""
        outer = self.contexts()
        try:
            env, env_error = self.step_env(step.env, outer), None
        except ExpressionError as error:
            env, env_error = dict(self.env), error
        contexts = {**outer, "env": env}
        name = self.masker.mask(interpolate(step_name(step), contexts))
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
            if env_error is not None:
                raise env_error
            await self._run_step(index, step, job, contexts, record, name)
            outputs, outcome = record.outputs, Conclusion.SUCCESS
        except asyncio.CancelledError:
            self._log(index, "##[error]The operation was canceled.")
            cancelled = StepResult(Conclusion.CANCELLED, Conclusion.CANCELLED)
            self.results.append(cancelled)
            await asyncio.shield(self._completed(index, step, name, cancelled, record))
            raise
        except (StepError, ExpressionError) as failure:  # an expression that fails fails its step, not the job
            self.log_error(index, failure)
            if str(failure):
                record.annotations.append(EventAnnotation(level="error", message=self.masker.mask(str(failure))))
            outputs, outcome = record.outputs, Conclusion.FAILURE  # what it wrote before failing, as on GitHub
        continue_on_error = step.continue_on_error
        if isinstance(continue_on_error, str):
            continue_on_error = as_flag(evaluate(continue_on_error, contexts))
        conclusion = Conclusion.SUCCESS if outcome == Conclusion.FAILURE and continue_on_error else outcome
        result = StepResult(outcome, conclusion, outputs)
        await self._completed(index, step, name, result, record)
        return result

    async def _completed(self, index: int, step: Step, name: str, result: StepResult, record: StepRecord) -> None:
        await self.logs.flush()
        summary = self.masker.mask(record.summary)
        if len(summary.encode()) > SUMMARY_LIMIT:  # GitHub refuses the whole summary and says so
            size = len(summary.encode()) // 1024
            record.annotations.append(EventAnnotation(
                level="error",
                message=f"$GITHUB_STEP_SUMMARY was not kept: a step's summary may hold up to 1024k, this one {size}k",
            ))
            summary = ""
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
                annotations=capped(record.annotations),
                summary=summary,
            ),
            "step-completed",
            index,
        )

    async def _run_step(
        self, index: int, step: Step, job: Job, contexts: dict[str, Any], record: StepRecord, name: str
    ) -> None:
        """Run the step with `contexts`, whose `env` is the step's environment."""
        env = contexts["env"]
        if step.uses is not None:
            minutes = self._minutes(step.timeout_minutes, DEFAULT_TIMEOUT_MINUTES, contexts)
            try:
                async with asyncio.timeout(minutes * 60):
                    await self.actions.run(index, step, contexts, env, record, name)
            except TimeoutError:
                raise StepError(f"The action '{name}' has timed out after {minutes:g} minutes.") from None
            return
        defaults = {**self.plan.workflow_defaults.get("run", {}), **job.defaults.get("run", {})}
        working_directory = step.working_directory or defaults.get("working-directory")
        await self.run_script(
            index,
            interpolate(step.run or "", contexts),
            step.shell or defaults.get("shell"),
            env=env,
            cwd=self.workspace / interpolate(working_directory, contexts) if working_directory else self.workspace,
            record=record,
            timeout_minutes=self._minutes(step.timeout_minutes, DEFAULT_TIMEOUT_MINUTES, contexts),
            name=name,
        )

    def step_env(
        self, extra: Mapping[str, str], contexts: Mapping[str, Any], base: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """`base` (the job's environment) with a step's own `env` over it. Each value reads the `env` around the
        step, not the step's other values: variables in an `env` map cannot be defined in terms of each other."""
        outside = dict(self.env if base is None else base)
        scope = {**contexts, "env": outside}
        return {**outside, **{variable: interpolate(as_text(value), scope) for variable, value in extra.items()}}

    async def _emit(self, event: RunEvent, kind: str, index: int | None = None, *, wait: bool = True) -> None:
        """Append `event`; without `wait`, only queue it (the order is kept) and go on with the step.

        What was only queued is awaited before the next event that is waited for, so its errors still surface.
        """
        self._enqueue(event, kind, index)
        if wait:
            queued, self._queued = self._queued, []
            await asyncio.gather(*queued)


    def _enqueue(self, event: RunEvent, kind: str, index: int | None = None) -> None:
        """Hand `event` over to be appended after those handed over before (see `_emit`)."""
        event_id = deterministic_id(self.request.run_id, self.plan.job_id, self.event.attempt, kind, index)
        envelope = Envelope.wrap(event, stream=self.request.run_id, cause=self.queued, event_id=event_id)
        self._queued.append(self.log.enqueue([envelope]))


def _interpolated(value: Any, contexts: Mapping[str, Any]) -> Any:
    """A `container:` or `services:` value with the expressions in its strings evaluated."""
    if isinstance(value, str):
        return interpolate(value, contexts) if "${{" in value else value
    if isinstance(value, Mapping):
        return {key: _interpolated(item, contexts) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolated(item, contexts) for item in value]
    return value
