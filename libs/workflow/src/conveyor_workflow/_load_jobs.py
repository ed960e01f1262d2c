"""Reading `jobs:`: jobs that run steps, jobs that call reusable workflows, and their steps."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from conveyor_workflow import _schema_expr as places
from conveyor_workflow._loader_yaml import scalar
from conveyor_workflow._model import Job, Step
from conveyor_workflow._permissions import SCOPES, levels
from conveyor_workflow._schema import Fields, Reader, is_null

_COMMON = ("name", "needs", "if", "permissions", "concurrency", "strategy")
_STEPS_JOB = frozenset(
    [
        *_COMMON,
        "runs-on",
        "environment",
        "outputs",
        "env",
        "defaults",
        "timeout-minutes",
        "continue-on-error",
        "container",
        "services",
        "steps",
        "retry",
    ]
)
_CALL_JOB = frozenset((*_COMMON, "uses", "with", "secrets"))
_STEP_COMMON = ("id", "if", "name", "env", "continue-on-error", "timeout-minutes")
_RUN_STEP = frozenset((*_STEP_COMMON, "run", "shell", "working-directory"))
_USES_STEP = frozenset((*_STEP_COMMON, "uses", "with"))
_RUN_AND_USES_STEP = _RUN_STEP | _USES_STEP
_NEITHER_STEP = _RUN_STEP | {"with"}
_STEP_TEXT = (("name", "name"), ("run", "run"), ("working-directory", "working_directory"))
_ACTION = re.compile(r"[^/@\s]+/[^/@\s]+(/[^@\s]+)?@\S+\Z")
_CALLED = re.compile(
    r"([^/@\s]+/[^/@\s]+/\.github/workflows/[^/@\s]+\.ya?ml@\S+|\./\.github/workflows/[^/@\s]+\.ya?ml)\Z"
)
_M = TypeVar("_M", bound=BaseModel)
_CONTAINER = frozenset(("image", "credentials", "env", "ports", "volumes", "options"))


def read_job(reader: Reader, job_id: str, key: yaml.Node, node: yaml.Node) -> Job | None:
    """One job; None when it is not a mapping."""
    if not isinstance(node, yaml.MappingNode):
        reader.error(node if not is_null(node) else key, f"Invalid type for job '{job_id}': a mapping was expected")
        return None
    calls = any(scalar_key(k) == "uses" for k, _ in node.value)
    found = reader.fields(node, _CALL_JOB if calls else _STEPS_JOB, () if calls else ("runs-on",)) or {}
    job: dict[str, Any] = {"id": job_id}
    _read_common(reader, found, job)
    if calls:
        _read_call(reader, found, job)
    else:
        _read_steps_job(reader, job_id, key, found, job)
    return build(reader, node, Job, job)


def build(reader: Reader, node: yaml.Node, model: type[_M], data: dict[str, Any]) -> _M | None:
    """The model from what was read; a value the reader let through but the model refuses is a problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            reader.error(node, f"Invalid value at {'.'.join(map(str, error['loc']))}: {error['msg']}")
        return None


def scalar_key(node: yaml.Node) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _read_common(reader: Reader, found: Fields, job: dict[str, Any]) -> None:
    if "name" in found:
        job["name"] = reader.text(found["name"][1], places.JOB)
    if "needs" in found:
        job["needs"] = tuple(reader.strings(found["needs"][1], None) or ())
    if "if" in found:
        job["if_"] = reader.condition(found["if"][1], places.JOB_IF)
    if "permissions" in found:
        job["permissions"] = read_permissions(reader, found["permissions"][1])
    if "concurrency" in found:
        job["concurrency"] = read_concurrency(reader, found["concurrency"][1], places.JOB)
    if "strategy" in found:
        job["strategy"] = _read_strategy(reader, found["strategy"][1])


def _read_call(reader: Reader, found: Fields, job: dict[str, Any]) -> None:
    uses_node = found["uses"][1]
    uses = reader.text(uses_node, None, non_empty=True)
    if uses is not None and not _CALLED.match(uses):
        reader.error(
            uses_node,
            f"Invalid workflow reference '{uses}': references to workflows must be of the form "
            "'{owner}/{repo}/.github/workflows/{file}@{ref}', or './.github/workflows/{file}' when local",
        )
    job["uses"] = uses
    if "with" in found:
        job["with_"] = {n: reader.scalar_value(v, places.JOB) for n, _, v in reader.pairs(found["with"][1]) or []}
    if "secrets" in found:
        secrets = found["secrets"][1]
        if isinstance(secrets, yaml.ScalarNode) and scalar(secrets) == "inherit":
            job["secrets"] = "inherit"
        else:
            job["secrets"] = reader.text_map(secrets, places.JOB_SECRETS)


def _read_steps_job(reader: Reader, job_id: str, key: yaml.Node, found: Fields, job: dict[str, Any]) -> None:
    if "runs-on" in found:
        job["runs_on"] = _read_runs_on(reader, found["runs-on"][1])
    if "environment" in found:
        job["environment"] = _read_environment(reader, found["environment"][1])
    if "outputs" in found:
        job["outputs"] = reader.text_map(found["outputs"][1], places.JOB_OUTPUTS)
    if "env" in found:
        job["env"] = reader.text_map(found["env"][1], places.JOB_ENV)
    if "defaults" in found:
        job["defaults"] = read_defaults(reader, found["defaults"][1], places.JOB_DEFAULTS_RUN)
    if "timeout-minutes" in found:
        job["timeout_minutes"] = reader.number(found["timeout-minutes"][1], places.JOB)
    if "continue-on-error" in found:
        job["continue_on_error"] = _or_default(reader.flag(found["continue-on-error"][1], places.JOB), False)
    if "retry" in found:
        job["retry"] = _read_retry(reader, found["retry"][1])
    if "container" in found:
        job["container"] = _read_container(reader, found["container"][1], service=False)
    if "services" in found:
        job["services"] = {
            name: _read_container(reader, value, service=True)
            for name, _, value in reader.pairs(found["services"][1]) or []
        }
    steps_node = found["steps"][1] if "steps" in found else None
    if steps_node is None or (isinstance(steps_node, yaml.SequenceNode) and not steps_node.value):
        reader.error(
            key,
            f"No steps defined in `steps` and no workflow called in `uses` for the following jobs: {job_id}",
        )
        return
    if not isinstance(steps_node, yaml.SequenceNode):
        reader.unexpected(steps_node)
        return
    steps: list[Step] = []
    seen: set[str] = set()
    for item in steps_node.value:
        step = _read_step(reader, item, seen)
        if step is not None:
            steps.append(step)
    job["steps"] = tuple(steps)


def _or_default(value: Any, default: Any) -> Any:
    return default if value is None else value


def _read_runs_on(reader: Reader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        found = reader.fields(node, ("group", "labels")) or {}
        result: dict[str, Any] = {}
        if "group" in found:
            result["group"] = reader.text(found["group"][1], places.JOB, non_empty=True)
        if "labels" in found:
            result["labels"] = reader.strings(found["labels"][1], places.JOB) or []
        if not found:
            reader.error(node, "Required property is missing: group or labels")
        return result
    if isinstance(node, yaml.SequenceNode):
        return reader.strings(node, places.JOB)
    return reader.text(node, places.JOB, non_empty=True)


def _read_environment(reader: Reader, node: yaml.Node) -> Any:
    if not isinstance(node, yaml.MappingNode):
        return reader.text(node, places.JOB, non_empty=True)
    found = reader.fields(node, ("name", "url", "deployment"), ("name",)) or {}
    result: dict[str, Any] = {}
    if "name" in found:
        result["name"] = reader.text(found["name"][1], places.JOB, non_empty=True)
    if "url" in found:
        result["url"] = reader.text(found["url"][1], places.ENVIRONMENT_URL)
    if "deployment" in found:
        result["deployment"] = reader.flag(found["deployment"][1], places.JOB)
    return result


def read_concurrency(reader: Reader, node: yaml.Node, place: places.Place) -> Any:
    """`concurrency`: a group name, or `group`, `cancel-in-progress` and `queue` (`single` or `max`).

    Beyond GitHub, `max-in-progress: N` lets N runs or jobs hold the group at once, the others waiting in order.
    """
    if not isinstance(node, yaml.MappingNode):
        return reader.text(node, place, non_empty=True)
    keys = ("group", "cancel-in-progress", "queue", "max-in-progress")
    found = reader.fields(node, keys, ("group",)) or {}
    result: dict[str, Any] = {}
    if "group" in found:
        result["group"] = reader.text(found["group"][1], place, non_empty=True)
    if "cancel-in-progress" in found:
        result["cancel-in-progress"] = reader.flag(found["cancel-in-progress"][1], place)
    if "queue" in found:
        queue = reader.text(found["queue"][1], None)
        if queue not in ("single", "max"):
            reader.unexpected(found["queue"][1])
        elif queue == "max" and result.get("cancel-in-progress") is True:
            reader.error(found["queue"][0], "`queue: max` cannot be combined with `cancel-in-progress: true`")
        result["queue"] = queue
    if "max-in-progress" in found:
        result["max-in-progress"] = _positive_whole(reader, found["max-in-progress"][1], place)
    return result


def _read_retry(reader: Reader, node: yaml.Node) -> Any:
    """Conveyor's `retry:` (beyond GitHub): `retry: N` or `{max-attempts: N, on: infrastructure | any}`."""
    if not isinstance(node, yaml.MappingNode):
        return _positive_whole(reader, node, places.JOB)
    found = reader.fields(node, ("max-attempts", "on"), ("max-attempts",)) or {}
    result: dict[str, Any] = {}
    if "max-attempts" in found:
        result["max-attempts"] = _positive_whole(reader, found["max-attempts"][1], places.JOB)
    if "on" in found:
        on = reader.text(found["on"][1], None)
        if on not in ("infrastructure", "any"):
            reader.error(found["on"][1], f"Unexpected value '{on}': retry on is 'infrastructure' or 'any'")
        result["on"] = on
    return result


def _positive_whole(reader: Reader, node: yaml.Node, place: places.Place | None) -> int | None:
    value = reader.number(node, place)
    if isinstance(value, float) and (value < 1 or value != int(value)):
        reader.error(node, f"Unexpected value '{value:g}': a whole number of at least 1 is expected")
        return None
    return int(value) if isinstance(value, float) else None


def read_permissions(reader: Reader, node: yaml.Node) -> Any:
    """`permissions`: `read-all`, `write-all` or scope -> read|write|none."""
    if isinstance(node, yaml.ScalarNode) and not is_null(node):
        value = reader.text(node, None)
        if value not in ("read-all", "write-all"):
            reader.unexpected(node)
        return value
    result: dict[str, str] = {}
    for name, key, value_node in reader.pairs(node) or []:
        if name not in SCOPES:
            reader.error(key, f"Unexpected value '{name}'")
            continue
        level = reader.text(value_node, None)
        if level not in levels(name):
            reader.unexpected(value_node)
        elif level is not None:
            result[name] = level
    return result


def read_defaults(reader: Reader, node: yaml.Node, place: places.Place | None) -> dict[str, Any]:
    """`defaults.run.shell` and `defaults.run.working-directory`."""
    found = reader.fields(node, ("run",)) or {}
    if "run" not in found:
        return {}
    run = reader.fields(found["run"][1], ("shell", "working-directory")) or {}
    return {"run": {name: reader.text(value, place, non_empty=True) for name, (_, value) in run.items()}}


def _read_strategy(reader: Reader, node: yaml.Node) -> dict[str, Any]:
    found = reader.fields(node, ("matrix", "fail-fast", "max-parallel")) or {}
    result: dict[str, Any] = {}
    if "fail-fast" in found:
        result["fail-fast"] = reader.flag(found["fail-fast"][1], places.STRATEGY)
    if "max-parallel" in found:
        result["max-parallel"] = reader.number(found["max-parallel"][1], places.STRATEGY)
    if "matrix" in found:
        result["matrix"] = _read_matrix(reader, found["matrix"][1])
    return result


def _read_matrix(reader: Reader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode) and not is_null(node):
        return reader.text(node, places.STRATEGY)
    matrix: dict[str, Any] = {}
    for name, _, value in reader.pairs(node) or []:
        if isinstance(value, yaml.SequenceNode):
            if name in ("include", "exclude"):
                for item in value.value:
                    if not isinstance(item, yaml.MappingNode) and not _is_expression(item):
                        reader.unexpected(item)
        elif not _is_expression(value):
            reader.unexpected(value)
        matrix[name] = reader.value(value, places.STRATEGY)
    return matrix


def _is_expression(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and "${{" in str(node.value)


def _read_container(reader: Reader, node: yaml.Node, *, service: bool) -> Any:
    if not isinstance(node, yaml.MappingNode):
        return reader.text(node, places.JOB, non_empty=True)
    found = reader.fields(node, _CONTAINER, ("image",) if service else ()) or {}
    result: dict[str, Any] = {}
    if "image" in found:
        result["image"] = reader.text(found["image"][1], places.JOB)
    if "credentials" in found:
        creds = reader.fields(found["credentials"][1], ("username", "password")) or {}
        result["credentials"] = {n: reader.text(v, places.CREDENTIALS) for n, (_, v) in creds.items()}
    if "env" in found:
        result["env"] = reader.text_map(found["env"][1], places.CONTAINER_ENV)
    for listed in ("ports", "volumes"):
        if listed in found:
            value = found[listed][1]
            if not isinstance(value, yaml.SequenceNode):
                reader.unexpected(value)
            else:
                result[listed] = [reader.value(item, places.JOB) for item in value.value]
    if "options" in found:
        result["options"] = reader.text(found["options"][1], places.JOB)
    return result


def _read_step(reader: Reader, node: yaml.Node, seen: set[str]) -> Step | None:
    if not isinstance(node, yaml.MappingNode):
        reader.unexpected(node)
        return None
    keys = {key.value for key, _ in node.value if isinstance(key, yaml.ScalarNode)}
    has_run, has_uses = "run" in keys, "uses" in keys
    if has_run and has_uses:
        key = next(k for k, _ in node.value if scalar_key(k) == "uses")
        reader.error(key, "A step may have either 'run' or 'uses', not both")
        allowed = _RUN_AND_USES_STEP
    elif not has_run and not has_uses:
        reader.error(node, "Required property is missing: run or uses")
        allowed = _NEITHER_STEP
    else:
        allowed = _RUN_STEP if has_run else _USES_STEP
    found = reader.fields(node, allowed) or {}
    step: dict[str, Any] = {}
    if "id" in found:
        key, value = found["id"]
        step_id = reader.text(value, None, non_empty=True)
        if step_id is not None and reader.identifier(value, step_id, reserved=True):
            if step_id in seen:
                reader.error(value, f"The identifier '{step_id}' may not be used more than once within the same scope.")
            seen.add(step_id)
        step["id"] = step_id
    if "if" in found:
        step["if_"] = reader.condition(found["if"][1], places.STEP_IF)
    for name, field in _STEP_TEXT:
        if name in found:
            node = found[name][1]
            if name == "run" and isinstance(node, yaml.ScalarNode) and node.style and not node.value:
                step[field] = ""  # `run: ''` is an empty script, as GitHub allows; a bare `run:` is not
                continue
            step[field] = reader.text(node, places.STEP, non_empty=name == "run")
    if "shell" in found:
        step["shell"] = reader.text(found["shell"][1], None)  # GitHub allows no expression in a step's shell
    if "uses" in found:
        step["uses"] = _read_action(reader, found["uses"][1])
    if "with" in found:
        step["with_"] = {n: reader.scalar_value(v, places.STEP) for n, _, v in reader.pairs(found["with"][1]) or []}
    if "env" in found:
        step["env"] = reader.text_map(found["env"][1], places.STEP)
    if "continue-on-error" in found:
        step["continue_on_error"] = _or_default(reader.flag(found["continue-on-error"][1], places.STEP), False)
    if "timeout-minutes" in found:
        step["timeout_minutes"] = reader.number(found["timeout-minutes"][1], places.STEP)
    return build(reader, node, Step, step)


def _read_action(reader: Reader, node: yaml.Node) -> str | None:
    uses = reader.text(node, None, non_empty=True)
    if uses is None or uses.startswith(("docker://", "./")) or _ACTION.match(uses):
        return uses
    reader.error(node, f"Expected format {{org}}/{{repo}}[/path]@ref. Actual '{uses}'")
    return uses
