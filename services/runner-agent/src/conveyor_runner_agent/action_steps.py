"""Running `uses:` steps: the run's own checkout, and local or remote composite and JavaScript actions.

A composite action's steps run inside the calling step (their lines are its log, their failure is its
failure), with the action's `inputs` and their own `steps` context. A JavaScript action runs its `main` with
the machine's Node.js whatever `node12`…`node24` it names, in the job container when the job has one; its
`pre` runs before the job's first step (remote actions only, as on GitHub, since a local one is not there
before the checkout) and its `post` after the last, in reverse order, each under its `pre-if`/`post-if`
(default `always()`).
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor_events import Conclusion
from conveyor_workflow import (
    ExpressionError,
    Status,
    Step,
    as_flag,
    as_text,
    evaluate,
    evaluate_condition,
    interpolate,
)

from conveyor_runner_agent.adapters import CheckoutError, checkout
from conveyor_runner_agent.adapters.action_source import ActionSource, find_metadata
from conveyor_runner_agent.adapters.containers import CONTAINER_HOME, ContainerError, github_home
from conveyor_runner_agent.adapters.docker_actions import WORKFLOW, WORKSPACE, DockerActions
from conveyor_runner_agent.domain.actions import (
    ActionDefinition,
    ActionError,
    DockerImage,
    LocalAction,
    RemoteAction,
    input_env,
    load_action,
    parse_uses,
    resolve_inputs,
)
from conveyor_runner_agent.domain.steps import step_name
from conveyor_runner_agent.step_processes import EXIT_CODE

if TYPE_CHECKING:
    from conveyor_runner_agent.job import JobRun
    from conveyor_runner_agent.step_processes import StepRecord

MAX_COMPOSITE_DEPTH = 9
_CHECKOUT = "actions/checkout@"


@dataclass
class _Prepared:
    """An action ready to run: where it lives, what it says, and the inputs it gets."""

    reference: str
    directory: Path
    definition: ActionDefinition
    inputs: dict[str, str]
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Post:
    """A JavaScript action's `post` script, due at the end of the job."""

    name: str
    prepared: _Prepared
    env: dict[str, str]
    state: dict[str, str]
    step: Step | None = None
    """The job's step that uses the action: its inputs are evaluated again when the post runs, as on GitHub."""


@dataclass
class ActionSteps:
    """The `uses:` steps of one job."""

    job: JobRun
    source: ActionSource
    posts: list[_Post] = field(default_factory=list)
    prepared: dict[int, _Prepared] = field(default_factory=dict)
    """Remote actions prepared before the first step (for their `pre`), by step index."""
    states: dict[int, dict[str, str]] = field(default_factory=dict)
    """What a `pre` script saved, for its action's `main` and `post`, by step index."""
    pre_posts: dict[int, _Post] = field(default_factory=dict)
    """The `post` of an action whose `pre` ran, by step index: due even when its main step is skipped."""
    docker: DockerActions | None = None
    warned_node: bool = False
    """The job was told once that its container cannot run Node.js."""

    async def run(
        self,
        index: int,
        step: Step,
        contexts: dict[str, Any],
        env: dict[str, str],
        record: StepRecord,
        name: str,
        *,
        depth: int = 0,
    ) -> None:
        """Run the action of `step` (a job step, or a step of a composite action at `depth`)."""
        uses = step.uses or ""
        if uses.startswith(_CHECKOUT) and depth == 0:
            await self._checkout()
            return
        if uses.startswith("docker://"):
            await self._image_step(index, step, contexts, env, record, name)
            return
        try:
            fetched = self.prepared.pop(index, None) if depth == 0 else None
            # Inputs are evaluated now, not when the action was fetched for its `pre`: they may read the steps
            # and the environment that ran since.
            if fetched is not None:
                prepared = self._with_inputs(fetched, step, contexts)
            else:
                prepared = await self._prepare(uses, step, contexts)
        except ActionError as error:
            raise self.job.failure(str(error)) from error
        for warning in prepared.warnings:
            self.job.log_line(index, f"##[warning]{warning}")
        using = prepared.definition.runs.using
        if using == "composite":
            await self._composite(index, prepared, contexts, env, record, depth)
        elif using.startswith("node"):
            state = self.states.pop(index, {}) if depth == 0 else {}
            post = self.pre_posts.pop(index, None) if depth == 0 else None
            if post is None and prepared.definition.runs.post:
                # Registered before main runs, as on GitHub: the post (cleanup) runs even when main fails.
                post = _Post(f"Post {name}", prepared, env, dict(state), step if depth == 0 else None)
                self.posts.append(post)
            saved = await self._node(index, prepared, prepared.definition.runs.main, env, record, name, state)
            if post is not None:
                post.state.update(saved)
        else:
            await self._docker(index, prepared, contexts, env, record, name)

    async def _checkout(self) -> None:
        job = self.job
        try:
            await asyncio.to_thread(checkout, job.request, job.workspace, exclude=job.exclude, remotes=job.remotes)
        except (CheckoutError, OSError) as error:
            raise job.failure(f"checkout failed: {error}") from error

    async def _prepare(self, uses: str, step: Step, contexts: Mapping[str, Any]) -> _Prepared:
        return self._with_inputs(await self._load(uses), step, contexts)

    async def _load(self, uses: str) -> _Prepared:
        """The action `uses` names, fetched and its metadata read; its inputs are not evaluated yet."""
        reference = parse_uses(uses)
        match reference:
            case LocalAction():
                directory = (self.job.workspace / reference.path).resolve()
                if not directory.is_dir():
                    raise ActionError(f"'{uses}': no directory {reference.path} in the workspace (is it checked out?)")
            case RemoteAction():
                directory = await asyncio.to_thread(self.source.fetch, reference)
            case DockerImage():
                raise ActionError(f"'{uses}' is a container image, not an action with metadata")
        metadata = await asyncio.to_thread(find_metadata, directory)
        definition = load_action(metadata.read_text(), str(metadata))
        return _Prepared(uses, directory, definition, {})

    @staticmethod
    def _with_inputs(prepared: _Prepared, step: Step, contexts: Mapping[str, Any]) -> _Prepared:
        """`prepared` with the inputs `step` gives it (`with:`, then the defaults) evaluated in `contexts`."""
        given = {key: interpolate(as_text(value), contexts) for key, value in step.with_.items()}
        inputs, warnings = resolve_inputs(prepared.definition, given, lambda text: interpolate(text, contexts))
        return replace(prepared, inputs=inputs, warnings=warnings)

    async def _node(
        self,
        index: int,
        prepared: _Prepared,
        script: str | None,
        env: Mapping[str, str],
        record: StepRecord,
        name: str,
        state: Mapping[str, str],
    ) -> dict[str, str]:
        if not script:
            raise self.job.failure(f"'{prepared.reference}' names no script to run")
        environment = {
            **env,
            **input_env(prepared.inputs),
            "GITHUB_ACTION_PATH": str(prepared.directory),
            "GITHUB_ACTION_REPOSITORY": prepared.reference.split("@")[0] if "@" in prepared.reference else "",
            "GITHUB_ACTION_REF": prepared.reference.split("@")[1] if "@" in prepared.reference else "",
        }
        try:
            return await self._run_node(index, prepared, script, environment, record, name, state)
        except self.job.step_errors() as error:
            if str(error).startswith(EXIT_CODE):
                # GitHub's runner reports a JavaScript action's exit code only in its debug log: what the action
                # said (core.setFailed) is the error shown.
                raise self.job.failure("") from error
            raise

    async def _run_node(
        self,
        index: int,
        prepared: _Prepared,
        script: str,
        environment: dict[str, str],
        record: StepRecord,
        name: str,
        state: Mapping[str, str],
    ) -> dict[str, str]:
        containers = self.job.containers
        node = await containers.usable_node() if containers is not None and self.job.in_job_container else None
        if containers is not None and containers.node_refused and not self.warned_node:
            self.warned_node = True
            self.job.log_line(
                index, f"##[warning]Node.js cannot run in the job container ({containers.node_refused}): "
                "its JavaScript actions run on the host"
            )
        runtime = await self.job.runtime_variables(in_container=node is not None)
        return await self.job.run_command(
            index,
            [node or "node", str(prepared.directory / script)],
            env={**runtime, **environment},
            cwd=self.job.workspace,
            record=record,
            timeout_minutes=self.job.default_timeout(),
            name=name,
            state=state,
            in_container=node is not None,
        )

    async def _docker(
        self,
        index: int,
        prepared: _Prepared,
        contexts: dict[str, Any],
        env: dict[str, str],
        record: StepRecord,
        name: str,
    ) -> None:
        """A Docker container action: its image (built from its Dockerfile), its args and env, INPUT_*."""
        runs = prepared.definition.runs
        image = runs.image or ""
        try:
            tag = (
                image.removeprefix("docker://")
                if image.startswith("docker://")
                else await self._engine().build(prepared.directory, image)
            )
        except ContainerError as error:
            raise self.job.failure(str(error)) from error
        inner = {**contexts, "inputs": prepared.inputs}
        action_env = {
            **env,
            **{key: interpolate(as_text(value), inner) for key, value in runs.env.items()},
            **input_env(prepared.inputs),
            "GITHUB_ACTION_PATH": str(prepared.directory),
        }
        args = [interpolate(as_text(arg), inner) for arg in runs.args]
        await self._container(index, tag, args, runs.entrypoint, action_env, record, name)

    async def _image_step(
        self, index: int, step: Step, contexts: dict[str, Any], env: dict[str, str], record: StepRecord, name: str
    ) -> None:
        """`uses: docker://IMAGE`: the image run with `with: args` (split like a shell) and `with: entrypoint`."""
        given = {key: interpolate(as_text(value), contexts) for key, value in step.with_.items()}
        image = (step.uses or "").removeprefix("docker://")
        args = shlex.split(given.get("args", ""))
        await self._container(index, image, args, given.get("entrypoint"), env, record, name)

    async def _container(
        self,
        index: int,
        image: str,
        args: list[str],
        entrypoint: str | None,
        env: dict[str, str],
        record: StepRecord,
        name: str,
    ) -> None:
        job, engine = self.job, self._engine()

        async def launch(argv: list[str], process_env: dict[str, str], on_line: Callable[[str], None]) -> int:
            try:
                return await engine.run(
                    image,
                    argv,
                    entrypoint=entrypoint,
                    env=process_env,
                    mounts=[
                        (job.workspace, str(job.workspace)),
                        (job.temp, str(job.temp)),
                        (job.workspace, WORKSPACE),
                        (github_home(job.temp), CONTAINER_HOME),
                        (job.temp / "event.json", f"{WORKFLOW}/event.json"),
                    ],
                    workdir=WORKSPACE,
                    on_line=on_line,
                    network=job.containers.name if job.containers is not None else None,
                )
            except ContainerError as error:
                raise job.failure(str(error)) from error

        runtime = await job.runtime_variables(in_container=True)
        await job.run_command(
            index,
            args,
            env={**runtime, **env},
            cwd=job.workspace,
            record=record,
            timeout_minutes=job.default_timeout(),
            name=name,
            launch=launch,
        )

    def _engine(self) -> DockerActions:
        if self.docker is None:
            self.docker = DockerActions(self.job.container_socket)
        return self.docker

    async def _composite(
        self,
        index: int,
        prepared: _Prepared,
        outer: dict[str, Any],
        env: dict[str, str],
        record: StepRecord,
        depth: int,
    ) -> None:
        if depth >= MAX_COMPOSITE_DEPTH:
            raise self.job.failure(f"'{prepared.reference}': composite actions nest deeper than {MAX_COMPOSITE_DEPTH}")
        job = self.job
        steps: dict[str, dict[str, Any]] = {}
        repository, _, ref = prepared.reference.partition("@") if "@" in prepared.reference else ("", "", "")
        github = {
            **outer["github"],
            "action_path": str(prepared.directory),
            "action": prepared.reference,
            "action_repository": repository,
            "action_ref": ref,
        }
        failed = False
        job_env = dict(job.env)
        for nested in prepared.definition.runs.steps:
            # What an earlier step of the action wrote to $GITHUB_ENV reaches the later ones, as on GitHub.
            written = {name: value for name, value in job.env.items() if job_env.get(name) != value}
            env = {**env, **written}
            job_env = dict(job.env)
            around = {**outer, "github": github, "inputs": prepared.inputs, "steps": steps, "env": env}
            status: Status = "failure" if failed else "success"
            try:  # the step's own env is what the rest of it reads, as in a job's steps
                nested_env, env_error = job.step_env(nested.env, around, base=env), None
            except ExpressionError as error:
                nested_env, env_error = dict(env), error
            contexts = {**around, "env": nested_env}
            nested_name = job.masker.mask(interpolate(step_name(nested), contexts))
            if not evaluate_condition(nested.if_, contexts, status=status):
                if nested.id:
                    steps[nested.id] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
                continue
            nested_env["GITHUB_ACTION_PATH"] = str(prepared.directory)
            inner = job.new_record()
            outcome = Conclusion.SUCCESS
            try:
                if env_error is not None:
                    raise env_error
                if nested.uses is not None:
                    await self.run(index, nested, contexts, nested_env, inner, nested_name, depth=depth + 1)
                else:
                    directory = interpolate(nested.working_directory, contexts) if nested.working_directory else ""
                    await job.run_script(
                        index,
                        interpolate(nested.run or "", contexts),
                        nested.shell,
                        env=nested_env,
                        cwd=job.workspace / directory,
                        record=inner,
                        timeout_minutes=job.default_timeout(),
                        name=nested_name,
                    )
            except job.step_errors() as error:
                job.log_error(index, error)
                outcome = Conclusion.FAILURE
            except ExpressionError as error:
                job.log_error(index, error)
                outcome = Conclusion.FAILURE
            continue_on_error = nested.continue_on_error
            if isinstance(continue_on_error, str):
                continue_on_error = as_flag(evaluate(continue_on_error, contexts))
            conclusion = Conclusion.SUCCESS if continue_on_error else outcome
            failed = failed or conclusion == Conclusion.FAILURE
            if nested.id:
                steps[nested.id] = {"outputs": inner.outputs, "outcome": outcome.value, "conclusion": conclusion.value}
            record.annotations.extend(inner.annotations)
            record.summary += inner.summary
        contexts = {**outer, "github": github, "inputs": prepared.inputs, "steps": steps, "env": env}
        record.outputs.update(
            {key: interpolate(output.value or "", contexts) for key, output in prepared.definition.outputs.items()}
        )
        if failed:
            raise job.failure("")

    async def run_pres(self, steps: tuple[Step, ...], contexts: dict[str, Any]) -> None:
        """Prepare the job's remote actions and run the `pre` scripts of JavaScript ones, in step order."""
        for index, step in enumerate(steps):
            uses = step.uses or ""
            if not uses or uses.startswith((_CHECKOUT, "./", "docker://")):
                continue
            try:
                fetched = await self._load(uses)
            except ActionError as error:
                raise self.job.failure(str(error)) from error
            self.prepared[index] = fetched
            runs = fetched.definition.runs
            if runs.using.startswith("node") and runs.pre:
                env = self.job.step_env(step.env, contexts)
                name = f"Pre {self.job.masker.mask(interpolate(step_name(step), contexts))}"

                async def pre(
                    slot: int,
                    record: StepRecord,
                    fetched: _Prepared = fetched,
                    step: Step = step,
                    env: dict[str, str] = env,
                    name: str = name,
                    index: int = index,
                ) -> None:
                    try:
                        prepared = self._with_inputs(fetched, step, contexts)
                    except ExpressionError as error:
                        raise self.job.failure(str(error)) from error
                    post = None
                    if prepared.definition.runs.post:  # due from now on, whether or not the main step runs
                        post = _Post(f"Post {name.removeprefix('Pre ')}", prepared, env, {}, step)
                        self.pre_posts[index] = post
                        self.posts.append(post)
                    self.states[index] = await self._node(
                        slot, prepared, prepared.definition.runs.pre, env, record, name, {}
                    )
                    if post is not None:
                        post.state.update(self.states[index])

                await self.job.extra_step(name, runs.pre_if or "always()", "success", pre, before=True)

    async def run_posts(self, status: Status) -> None:
        """Run the `post` scripts that are due, last registered first, each under its `post-if`."""
        while self.posts:
            post = self.posts.pop()

            async def run(slot: int, record: StepRecord, post: _Post = post) -> None:
                prepared = post.prepared
                if post.step is not None:
                    try:
                        prepared = self._with_inputs(prepared, post.step, self.job.contexts())
                    except ExpressionError as error:
                        raise self.job.failure(str(error)) from error
                runs = prepared.definition.runs
                await self._node(slot, prepared, runs.post, post.env, record, post.name, post.state)

            await self.job.extra_step(post.name, post.prepared.definition.runs.post_if or "always()", status, run)
