"""Checking the inputs of a `workflow_dispatch` against the workflow's `on.workflow_dispatch.inputs`, as GitHub's
"Create a workflow dispatch event" API does, and giving them the two shapes a run sees them in.

GitHub keeps declared types in the `inputs` context (a boolean stays a boolean, a number a number) while the
event payload, `github.event.inputs`, holds every value as a string. Defaults fill inputs that were not given.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor_workflow._load_events import _MAX_DISPATCH_INPUTS
from conveyor_workflow._model import Workflow

__all__ = ["MAX_DISPATCH_INPUTS", "DispatchInputs", "dispatch_inputs"]

MAX_DISPATCH_INPUTS = _MAX_DISPATCH_INPUTS
"""How many inputs GitHub accepts in one `workflow_dispatch`, and declares in one workflow."""

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class DispatchInputs:
    """The outcome of `dispatch_inputs`: the inputs as a run sees them, or why the dispatch is refused.

    `inputs` is the `inputs` context (booleans and numbers keep their types); `event_inputs` is
    `github.event.inputs` (the same values as strings). Both are in declaration order and hold only the inputs
    that were given or have a default. `problems` says, one message per problem, why GitHub would answer 422;
    when it is not empty the other two fields are incomplete and must not be used.
    """

    inputs: dict[str, Any] = field(default_factory=dict)
    event_inputs: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def dispatch_inputs(workflow: Workflow, given: Mapping[str, Any]) -> DispatchInputs:
    """Validate and normalise the `given` inputs of a `workflow_dispatch` of `workflow`.

    - The workflow must have a `workflow_dispatch` trigger, and at most `MAX_DISPATCH_INPUTS` inputs are given.
    - Every given name must be declared (`Unexpected inputs provided: ["x"]`, as GitHub says).
    - An input not given (or given as null) takes its `default`; a `required` one without a default is missing.
    - `boolean`: JSON `true`/`false` or the strings "true"/"false". `number`: a JSON number or a string that
      reads as one. `choice`: one of `options`. `string` and `environment`: a string; numbers and booleans
      given for them are taken as their text. Objects and arrays are refused for every type.
    """
    if "workflow_dispatch" not in workflow.on:
        return DispatchInputs(problems=["Workflow does not have 'workflow_dispatch' trigger"])
    config = workflow.on["workflow_dispatch"]
    declared: Mapping[str, Mapping[str, Any]] = (config.get("inputs") if isinstance(config, Mapping) else None) or {}
    if len(given) > MAX_DISPATCH_INPUTS:
        too_many = f"you may only provide up to {MAX_DISPATCH_INPUTS} inputs for a workflow_dispatch event"
        return DispatchInputs(problems=[f"{too_many}, not {len(given)}"])
    unexpected = [name for name in given if name not in declared]
    problems = [f"Unexpected inputs provided: {json.dumps(unexpected)}"] if unexpected else []
    inputs: dict[str, Any] = {}
    event_inputs: dict[str, str] = {}
    for name, spec in declared.items():
        value = given.get(name)
        from_default = value is None
        if from_default:
            value = spec.get("default")
        if value is None:
            if spec.get("required") is True:
                problems.append(f"Required input '{name}' not provided")
            continue
        normalised = _normalise(name, str(spec.get("type") or "string"), spec, value)
        if isinstance(normalised, _Refused):
            problems.append(f"{normalised.message} (its default)" if from_default else normalised.message)
        else:
            inputs[name], event_inputs[name] = normalised
    return DispatchInputs(inputs, event_inputs, problems)


@dataclass(frozen=True)
class _Refused:
    message: str


def _normalise(name: str, kind: str, spec: Mapping[str, Any], value: Any) -> tuple[Any, str] | _Refused:
    """`(value in the inputs context, value in the event payload)`, or why `value` does not fit `kind`."""
    if isinstance(value, Mapping | list | tuple):
        shape = "an object" if isinstance(value, Mapping) else "an array"
        return _Refused(f"Provided value for input '{name}' must be a string, a number or a boolean, not {shape}")
    text = _text(value)
    if kind == "boolean":
        if isinstance(value, bool) or text in ("true", "false"):
            return text == "true", text
        return _Refused(f"Provided value '{text}' for input '{name}' not in the list of allowed values: true, false")
    if kind == "number":
        if isinstance(value, bool) or not _NUMBER.fullmatch(text.strip()):
            return _Refused(f"Provided value '{text}' for input '{name}' is not a number")
        number = _number(text.strip())
        if number is None:
            return _Refused(f"Provided value '{text}' for input '{name}' is not a finite number")
        return number, text.strip()
    if kind == "choice":
        options = [str(option) for option in spec.get("options") or []]
        if text not in options:
            return _Refused(
                f"Provided value '{text}' for input '{name}' not in the list of allowed values: {', '.join(options)}"
            )
    return text, text


def _text(value: Any) -> str:
    """A scalar as GitHub writes it into the event payload: booleans in lower case, numbers without noise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return str(int(value))
    return str(value)


def _number(text: str) -> int | float | None:
    if _INTEGER.fullmatch(text):
        return int(text)
    number = float(text)
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() else number
