"""Whether a workflow's `on:` section lets an event start a run, by GitHub's documented rules.

Sources: "Workflow syntax for GitHub Actions" (`on.<event>.types`, `branches`, `tags`, `paths` and their
`-ignore` forms) and "Events that trigger workflows" (activity types and their defaults).
"""

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from conveyor_workflow._glob import GlobError, compile_filter, filters_match

__all__ = ["DEFAULT_ACTIVITY_TYPES", "TriggerSource", "skip_requested", "triggered", "validate_filters"]

DEFAULT_ACTIVITY_TYPES: Mapping[str, frozenset[str]] = {
    "pull_request": frozenset({"opened", "synchronize", "reopened"}),
    "pull_request_target": frozenset({"opened", "synchronize", "reopened"}),
}
"""Activity types that trigger a workflow with no `types:`. Events not listed here default to all types."""

_FILTER_PAIRS = (("branches", "branches-ignore"), ("tags", "tags-ignore"), ("paths", "paths-ignore"))
_PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")
_SKIP_MARKERS = ("[skip ci]", "[ci skip]", "[no ci]", "[skip actions]", "[actions skip]")
_SKIP_TRAILERS = ("skip-checks:true", "skip-checks: true")


class TriggerSource(Protocol):
    """What `triggered` reads from a workflow: its `on:` mapping (event name to configuration)."""

    @property
    def on(self) -> Mapping[str, Any]: ...


def triggered(
    workflow: TriggerSource,
    event_name: str,
    payload: Mapping[str, Any],
    changed_files: Sequence[str] | None = None,
    *,
    head_commit_message: str | None = None,
) -> bool:
    """True when `event_name` with this webhook `payload` starts a run of `workflow`.

    - The event must be a key of `workflow.on`.
    - `types` is checked against `payload["action"]`; without `types`, `pull_request` and
      `pull_request_target` run for `opened`, `synchronize` and `reopened`, every other event for all
      activity types. A payload without `action` (a synthesized event) passes the types check.
    - `push`: `payload["ref"]` is `refs/heads/<branch>` or `refs/tags/<tag>`. `branches`/`branches-ignore`
      apply to branches, `tags`/`tags-ignore` to tags; when only branch filters are given a tag push does not
      run, and when only tag filters are given a branch push does not run. `paths`/`paths-ignore` must also be
      satisfied, except for tag pushes, for which GitHub does not evaluate path filters.
    - `pull_request`/`pull_request_target`: branch filters apply to the base branch
      (`payload["pull_request"]["base"]["ref"]`); path filters as for `push`.
    - `merge_group`: branch filters apply to the branch the group merges into
      (`payload["merge_group"]["base_ref"]`).
    - `workflow_run`: `workflows` patterns match `payload["workflow_run"]["name"]`, branch filters its
      `head_branch`.
    - `schedule`: when the payload names its `schedule` (the cron text), it must be one of `on.schedule`.
    - `workflow_dispatch`, `workflow_call`, `repository_dispatch` (its `types` against `action`, the
      dispatched event type) and other events: present in `on` and passing `types`.
    - `push` and `pull_request` (not `pull_request_target`) do not run when the head commit message asks to
      skip (see `skip_requested`). For `push` the message is `payload["head_commit"]["message"]` unless
      `head_commit_message` is given; a pull request's payload lacks it, so pass `head_commit_message`.

    `changed_files` are paths from the repository root. When it is None, path filters count as satisfied
    (the caller could not compute the diff); an empty list means nothing changed, which satisfies neither
    `paths` nor `paths-ignore`. An invalid filter pattern raises `GlobError` (a `ValueError`); the loader can
    report those beforehand with `validate_filters`.
    """
    on = workflow.on
    if event_name not in on:
        return False
    config = on[event_name]
    if event_name == "schedule":
        return _schedule_matches(config, payload)
    settings: Mapping[str, Any] = config if isinstance(config, Mapping) else {}
    if not _types_match(event_name, settings, payload):
        return False
    if event_name == "push":
        if head_commit_message is None:
            head_commit_message = _dig(payload, "head_commit", "message")
        if isinstance(head_commit_message, str) and skip_requested(head_commit_message):
            return False
        return _push_matches(settings, payload, changed_files)
    if event_name == "pull_request" and head_commit_message and skip_requested(head_commit_message):
        return False
    if event_name in _PULL_REQUEST_EVENTS:
        base = _dig(payload, "pull_request", "base", "ref")
        return _ref_matches(settings, "branches", _short_ref(base)) and _paths_match(settings, changed_files)
    if event_name == "merge_group":
        return _ref_matches(settings, "branches", _short_ref(_dig(payload, "merge_group", "base_ref")))
    if event_name == "workflow_run":
        name = _dig(payload, "workflow_run", "name")
        if "workflows" in settings and not filters_match(_patterns(settings["workflows"]), str(name or "")):
            return False
        return _ref_matches(settings, "branches", str(_dig(payload, "workflow_run", "head_branch") or ""))
    return True


def skip_requested(commit_message: str) -> bool:
    """True when a commit message asks GitHub not to run `push`/`pull_request` workflows for it.

    That is one of `[skip ci]`, `[ci skip]`, `[no ci]`, `[skip actions]`, `[actions skip]` anywhere in the
    message, or a last trailer `skip-checks:true` / `skip-checks: true` after the subject and a blank line.
    """
    if any(marker in commit_message for marker in _SKIP_MARKERS):
        return True
    lines = [line.strip() for line in commit_message.strip().splitlines()]
    return len(lines) > 2 and "" in lines[1:-1] and lines[-1] in _SKIP_TRAILERS


def validate_filters(on: Mapping[str, Any]) -> list[str]:
    """Problems GitHub would reject in the filters of `on`, one message per problem, in `on` order.

    Reports a filter used together with its `-ignore` form for one event (`branches` with `branches-ignore`,
    `tags` with `tags-ignore`, `paths` with `paths-ignore`), filters that are not lists of strings, and
    invalid patterns.
    """
    problems: list[str] = []
    for event, config in on.items():
        if not isinstance(config, Mapping):
            continue
        for include, ignore in _FILTER_PAIRS:
            if include in config and ignore in config:
                problems.append(
                    f"on.{event}: '{include}' and '{ignore}' cannot be used together for one event; "
                    f"use '{include}' with '!' patterns to exclude"
                )
        for key in (*(name for pair in _FILTER_PAIRS for name in pair), "workflows"):
            if key in config:
                problems.extend(_pattern_problems(f"on.{event}.{key}", config[key]))
    return problems


def _pattern_problems(where: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return [f"{where}: expected a list of filter patterns"]
    problems: list[str] = []
    for index, pattern in enumerate(value):
        try:
            compile_filter(pattern if isinstance(pattern, str) else _scalar_text(pattern))
        except GlobError as error:
            problems.append(f"{where}[{index}]: {error}")
    return problems


def _types_match(event_name: str, settings: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    action = payload.get("action")
    if action is None:
        return True
    if "types" in settings and settings["types"] is not None:
        types = settings["types"]
        allowed = {types} if isinstance(types, str) else {str(t) for t in types}
        return str(action) in allowed
    default = DEFAULT_ACTIVITY_TYPES.get(event_name)
    return default is None or str(action) in default


def _push_matches(settings: Mapping[str, Any], payload: Mapping[str, Any], changed_files: Sequence[str] | None) -> bool:
    ref = str(payload.get("ref") or "")
    has_branch_filter = "branches" in settings or "branches-ignore" in settings
    has_tag_filter = "tags" in settings or "tags-ignore" in settings
    if ref.startswith("refs/tags/"):
        if has_branch_filter and not has_tag_filter:
            return False
        return _ref_matches(settings, "tags", ref.removeprefix("refs/tags/"))
    if has_tag_filter and not has_branch_filter:
        return False
    if not _ref_matches(settings, "branches", _short_ref(ref)):
        return False
    return _paths_match(settings, changed_files)


def _ref_matches(settings: Mapping[str, Any], key: str, name: str) -> bool:
    if key in settings:
        return filters_match(_patterns(settings[key]), name)
    if f"{key}-ignore" in settings:
        return not filters_match(_patterns(settings[f"{key}-ignore"]), name)
    return True


def _paths_match(settings: Mapping[str, Any], changed_files: Sequence[str] | None) -> bool:
    if changed_files is None:
        return True
    if "paths" in settings:
        patterns = _patterns(settings["paths"])
        return any(filters_match(patterns, path) for path in changed_files)
    if "paths-ignore" in settings:
        patterns = _patterns(settings["paths-ignore"])
        return any(not filters_match(patterns, path) for path in changed_files)
    return True


def _schedule_matches(config: Any, payload: Mapping[str, Any]) -> bool:
    fired = payload.get("schedule")
    if not isinstance(fired, str) or not isinstance(config, list):
        return True
    crons = {" ".join(str(entry.get("cron", "")).split()) for entry in config if isinstance(entry, Mapping)}
    return " ".join(fired.split()) in crons


def _patterns(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [item if isinstance(item, str) else _scalar_text(item) for item in value]


def _scalar_text(value: Any) -> str:
    # YAML may read `branches: [1.0]` or `[true]` as numbers or booleans; GitHub compares their text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise GlobError(f"A filter pattern must be a string, got {type(value).__name__}")


def _short_ref(ref: Any) -> str:
    return str(ref or "").removeprefix("refs/heads/")


def _dig(payload: Mapping[str, Any], *keys: str) -> Any:
    value: Any = payload
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value
