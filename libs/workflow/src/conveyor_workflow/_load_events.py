"""Reading `on:`: the events that trigger a workflow and their filters."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import yaml

from conveyor_workflow._schema import Reader, is_null
from conveyor_workflow._schema_expr import CALL_INPUT_DEFAULT, CALL_OUTPUT_VALUE

_REF_FILTERS = ("branches", "branches-ignore", "tags", "tags-ignore", "paths", "paths-ignore")
_PR_FILTERS = ("types", "branches", "branches-ignore", "paths", "paths-ignore")
_TYPES_ONLY = [
    "branch_protection_rule",
    "check_run",
    "check_suite",
    "discussion",
    "discussion_comment",
    "issue_comment",
    "issues",
    "label",
    "milestone",
    "project",
    "project_card",
    "project_column",
    "pull_request_comment",
    "pull_request_review",
    "pull_request_review_comment",
    "registry_package",
    "release",
    "watch",
    "repository_dispatch",
]
_BARE = [
    "create",
    "delete",
    "deployment",
    "deployment_status",
    "fork",
    "gollum",
    "page_build",
    "public",
    "status",
]

EVENT_FILTERS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(_TYPES_ONLY, ("types",)),
    **dict.fromkeys(_BARE, ()),
    "image_version": ("types", "names", "versions"),
    "merge_group": ("types", "branches", "branches-ignore"),
    "push": _REF_FILTERS,
    "pull_request": _PR_FILTERS,
    "pull_request_target": _PR_FILTERS,
    "workflow_run": ("workflows", "types", "branches", "branches-ignore"),
}
_CREATED_EDITED_DELETED = ("created", "edited", "deleted")
_PULL_REQUEST_TYPES = (
    "assigned", "unassigned", "labeled", "unlabeled", "opened", "edited", "closed", "reopened", "synchronize",
    "converted_to_draft", "locked", "unlocked", "enqueued", "dequeued", "milestoned", "demilestoned",
    "ready_for_review", "review_requested", "review_request_removed", "auto_merge_enabled", "auto_merge_disabled",
)
ACTIVITY_TYPES: dict[str, tuple[str, ...]] = {
    "branch_protection_rule": _CREATED_EDITED_DELETED,
    "check_run": ("created", "rerequested", "completed", "requested_action"),
    "check_suite": ("completed",),
    "discussion": (
        "created", "edited", "deleted", "transferred", "pinned", "unpinned", "labeled", "unlabeled", "locked",
        "unlocked", "category_changed", "answered", "unanswered",
    ),
    "discussion_comment": _CREATED_EDITED_DELETED,
    "image_version": ("created", "ready", "deleted"),
    "issue_comment": _CREATED_EDITED_DELETED,
    "issues": (
        "opened", "edited", "deleted", "transferred", "pinned", "unpinned", "closed", "reopened", "assigned",
        "unassigned", "labeled", "unlabeled", "locked", "unlocked", "milestoned", "demilestoned",
    ),
    "label": _CREATED_EDITED_DELETED,
    "merge_group": ("checks_requested",),
    "milestone": ("created", "closed", "opened", "edited", "deleted"),
    "project": ("created", "closed", "reopened", "edited", "deleted"),
    "project_card": ("created", "moved", "converted", "edited", "deleted"),
    "project_column": ("created", "updated", "moved", "deleted"),
    "pull_request": _PULL_REQUEST_TYPES,
    "pull_request_comment": _CREATED_EDITED_DELETED,
    "pull_request_review": ("submitted", "edited", "dismissed"),
    "pull_request_review_comment": _CREATED_EDITED_DELETED,
    "pull_request_target": _PULL_REQUEST_TYPES,
    "registry_package": ("published", "updated"),
    "release": ("published", "unpublished", "created", "edited", "deleted", "prereleased", "released"),
    "watch": ("started",),
    "workflow_run": ("requested", "completed", "in_progress"),
}
"""The activity `types` each event accepts, as GitHub lists them in "Events that trigger workflows";
`repository_dispatch` takes any type (the dispatched event type)."""
_SPECIAL = ("schedule", "workflow_dispatch", "workflow_call")
_DISPATCH_TYPES = ("string", "boolean", "number", "choice", "environment")
_CALL_TYPES = ("string", "boolean", "number")
_MAX_DISPATCH_INPUTS = 25

_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])
        },
    ),
    ("day of week", 0, 6, {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}),
)
_CRON_ITEM = re.compile(r"(?:(\*)|([0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?)(?:/([0-9]+))?\Z")


def read_on(reader: Reader, node: yaml.Node) -> dict[str, Any]:
    """`on` in its string, list or map form, as event name -> configuration."""
    if isinstance(node, yaml.ScalarNode) and not is_null(node):
        name = reader.text(node, None, non_empty=True)
        return {name: {}} if name and _known(reader, node, name) else {}
    if isinstance(node, yaml.SequenceNode):
        events: dict[str, Any] = {}
        for item in node.value:
            name = reader.text(item, None, non_empty=True)
            if name and _known(reader, item, name):
                events[name] = {}
        if not events and not node.value:
            reader.error(node, "No event triggers defined in `on`")
        return events
    entries = reader.pairs(node)
    if entries is None:
        return {}
    if not entries:
        reader.error(node, "No event triggers defined in `on`")
    events = {}
    for name, key, value in entries:
        if _known(reader, key, name):
            events[name] = _read_event(reader, name, value)
    return events


def _known(reader: Reader, node: yaml.Node, name: str) -> bool:
    if name in EVENT_FILTERS or name in _SPECIAL:
        return True
    reader.error(node, f"Unexpected value '{name}'")
    return False


def _read_event(reader: Reader, event: str, node: yaml.Node) -> Any:
    if event == "schedule":
        return _read_schedule(reader, node)
    if event == "workflow_dispatch":
        return _read_dispatch(reader, node)
    if event == "workflow_call":
        return _read_call(reader, node)
    allowed = EVENT_FILTERS[event]
    found = reader.fields(node, allowed) or {}
    config: dict[str, Any] = {}
    for name, (_, value) in found.items():
        config[name] = reader.strings(value, None) or []
    if "types" in found and event in ACTIVITY_TYPES:
        _check_types(reader, found["types"][1], ACTIVITY_TYPES[event])
    for positive in ("branches", "tags", "paths"):
        negative = f"{positive}-ignore"
        if positive in found and negative in found:
            reader.error(
                found[negative][0],
                f"you may only define one of `{positive}` and `{negative}` for a single event",
            )
    if event == "workflow_run" and found and "workflows" not in found:
        reader.error(node, "Required property is missing: workflows")
    return config


def _check_types(reader: Reader, node: yaml.Node, allowed: tuple[str, ...]) -> None:
    """Each activity type named must be one the event has: a misspelt one would never match."""
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    for item in items:
        if isinstance(item, yaml.ScalarNode) and item.value and item.value not in allowed:
            reader.error(item, f"Unexpected value '{item.value}'")


def _read_schedule(reader: Reader, node: yaml.Node) -> list[dict[str, str]]:
    if not isinstance(node, yaml.SequenceNode):
        reader.unexpected(node)
        return []
    schedules = []
    for item in node.value:
        found = reader.fields(item, ("cron", "timezone"), ("cron",)) or {}
        if "cron" not in found:
            continue
        cron_node = found["cron"][1]
        cron = reader.text(cron_node, None, non_empty=True)
        if cron is None:
            continue
        problem = cron_problem(cron)
        if problem:
            reader.error(cron_node, problem)
        entry = {"cron": cron}
        if "timezone" in found:
            entry["timezone"] = reader.text(found["timezone"][1], None, non_empty=True) or ""
        schedules.append(entry)
    return schedules


@lru_cache(maxsize=256)  # croniter is slow, and a repository's workflows repeat the same few schedules
def cron_problem(cron: str) -> str | None:
    """Why `cron` is not a 5-field POSIX cron expression, or None."""
    fields = cron.split()
    if len(fields) != 5:
        return f"Invalid cron expression '{cron}': expected 5 fields, found {len(fields)}"
    for text, (what, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in text.split(","):
            problem = _cron_item(item, low, high, names)
            if problem:
                return f"Invalid cron expression '{cron}': {what} '{item}' {problem}"
    from croniter import croniter  # imported late, it costs ~80 ms

    try:
        valid = croniter.is_valid(cron)
    except Exception:
        valid = False
    return None if valid else f"Invalid cron expression '{cron}'"


def _cron_item(item: str, low: int, high: int, names: dict[str, int]) -> str | None:
    match = _CRON_ITEM.match(item)
    if not match:
        return "is not a number, range, list or step"
    star, first, last, step = match.groups()
    if step is not None and int(step) == 0:
        return "has a step of 0"
    numbers: list[int] = []
    for part in (first, last):
        if part is None:
            continue
        number = names.get(part.upper()) if not part.isdigit() else int(part)
        if number is None or not low <= number <= high:
            return f"is out of range {low}-{high}"
        numbers.append(number)
    if star is None and len(numbers) == 2 and numbers[0] > numbers[1]:
        return "is a descending range"  # named ones too: FRI-TUE
    return None


def _read_dispatch(reader: Reader, node: yaml.Node) -> dict[str, Any]:
    found = reader.fields(node, ("inputs",)) or {}
    if "inputs" not in found:
        return {}
    entries = reader.pairs(found["inputs"][1]) or []
    if len(entries) > _MAX_DISPATCH_INPUTS:
        reader.error(
            found["inputs"][0],
            f"you may only define up to {_MAX_DISPATCH_INPUTS} `inputs` for a `workflow_dispatch` event",
        )
    inputs = {}
    allowed = ("description", "required", "default", "type", "options", "deprecationMessage")
    for name, key, value in entries:
        reader.identifier(key, name)
        spec = reader.fields(value, allowed) or {}
        config = _read_input_common(reader, spec, None)
        kind = config.get("type", "string")
        if kind not in _DISPATCH_TYPES:
            reader.error(spec["type"][1], f"Unexpected value '{kind}'")
        if "options" in spec:
            config["options"] = reader.strings(spec["options"][1], None) or []
        if kind == "choice":
            options = config.get("options")
            if not options:
                reader.error(key, f"Input '{name}' of type choice needs a non-empty 'options' list")
            elif "default" in config and config["default"] not in options:
                reader.error(spec["default"][1], f"Input '{name}': the default '{config['default']}' is not an option")
        _check_default_type(reader, name, kind, spec, config)
        inputs[name] = config
    return {"inputs": inputs}


def _read_input_common(reader: Reader, spec: dict[str, tuple[yaml.Node, yaml.Node]], place: Any) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for text_key in ("description", "deprecationMessage", "type"):
        if text_key in spec:
            config[text_key] = reader.text(spec[text_key][1], None)
    if "required" in spec:
        config["required"] = reader.flag(spec["required"][1], None)
    if "default" in spec:
        default_node = spec["default"][1]
        if isinstance(default_node, yaml.ScalarNode):
            config["default"] = reader.value(default_node, place)
        else:
            reader.unexpected(default_node)
    return config


def _check_default_type(
    reader: Reader, name: str, kind: str, spec: dict[str, tuple[yaml.Node, yaml.Node]], config: dict[str, Any]
) -> None:
    if "default" not in config or config["default"] is None:
        return
    default = config["default"]
    is_expression = isinstance(default, str) and "${{" in default
    if kind == "boolean":
        ok = isinstance(default, bool) or is_expression
    elif kind == "number":
        ok = (isinstance(default, int | float) and not isinstance(default, bool)) or is_expression
    else:
        ok = True
    if not ok:
        reader.error(spec["default"][1], f"Input '{name}' has type {kind}; its default '{default}' is not a {kind}")


def _read_call(reader: Reader, node: yaml.Node) -> dict[str, Any]:
    found = reader.fields(node, ("inputs", "outputs", "secrets")) or {}
    config: dict[str, Any] = {}
    if "inputs" in found:
        inputs = {}
        for name, key, value in reader.pairs(found["inputs"][1]) or []:
            reader.identifier(key, name)
            spec = reader.fields(value, ("description", "required", "default", "type"), ("type",)) or {}
            entry = _read_input_common(reader, spec, CALL_INPUT_DEFAULT)
            kind = entry.get("type")
            if kind is not None and kind not in _CALL_TYPES:
                reader.error(spec["type"][1], f"Unexpected value '{kind}'")
            _check_default_type(reader, name, str(kind), spec, entry)
            inputs[name] = entry
        config["inputs"] = inputs
    if "outputs" in found:
        outputs = {}
        for name, key, value in reader.pairs(found["outputs"][1]) or []:
            reader.identifier(key, name)
            spec = reader.fields(value, ("description", "value"), ("value",)) or {}
            entry = {}
            if "description" in spec:
                entry["description"] = reader.text(spec["description"][1], None)
            if "value" in spec:
                entry["value"] = reader.text(spec["value"][1], CALL_OUTPUT_VALUE)
            outputs[name] = entry
        config["outputs"] = outputs
    if "secrets" in found:
        secrets = {}
        for name, key, value in reader.pairs(found["secrets"][1]) or []:
            reader.identifier(key, name)
            spec = reader.fields(value, ("description", "required")) or {}
            entry = {}
            if "description" in spec:
                entry["description"] = reader.text(spec["description"][1], None)
            if "required" in spec:
                entry["required"] = reader.flag(spec["required"][1], None)
            secrets[name] = entry
        config["secrets"] = secrets
    return config
