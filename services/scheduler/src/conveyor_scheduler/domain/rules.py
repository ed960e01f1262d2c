"""What a job's spec says about how it is scheduled, with expressions evaluated in the job's contexts.

A value that cannot be evaluated falls back to GitHub's default, so a bad expression never blocks a run (the
planner reports bad expressions when it loads the workflow).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from conveyor_workflow import ExpressionError, as_flag, evaluate, interpolate

_NOTHING: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Retry:
    """Conveyor's `retry:` job key: `retry: 3` or `retry: {max-attempts: 3, on: infrastructure | any}`.

    `infrastructure` (the default) retries lost attempts only (an expired lease, a container that failed to
    start); `any` also retries failed steps and timeouts. Cancelled attempts are never retried.
    """

    max_attempts: int = 1
    on: Literal["infrastructure", "any"] = "infrastructure"


@dataclass(frozen=True)
class Concurrency:
    """`concurrency:` as a group name or `{group, cancel-in-progress, queue, max-in-progress}`.

    `max-in-progress: N` is Conveyor's extension: N entries may hold the group at once and the others wait in
    FIFO order, none of them replaced. Without it GitHub's rule holds: one holder, one pending, a newer pending
    entry replaces (cancels) the older one.
    """

    group: str
    cancel_in_progress: bool = False
    max_in_progress: int | None = None
    queue: Literal["single", "max"] = "single"
    """GitHub's `queue`: `max` keeps up to `MAX_PENDING` entries waiting in order instead of one."""

    @property
    def slots(self) -> int:
        return self.max_in_progress or 1


def evaluated(raw: Any, contexts: Mapping[str, Any]) -> Any:
    """`raw` with its expressions evaluated: a lone `${{ }}` keeps its type, text around one makes a string."""
    if isinstance(raw, str) and "${{" in raw:
        text = raw.strip()
        if text.startswith("${{") and text.endswith("}}") and text.count("${{") == 1:
            return evaluate(text, contexts)
        return interpolate(raw, contexts)
    return raw


def _bool(raw: Any, contexts: Mapping[str, Any], default: bool) -> bool:
    try:
        value = evaluated(raw, contexts)
    except ExpressionError:
        return default
    return default if value is None else as_flag(value)


def _number(raw: Any, contexts: Mapping[str, Any], default: float) -> float:
    try:
        value = evaluated(raw, contexts)
        return float(value) if value not in (None, "") else default
    except (ExpressionError, TypeError, ValueError):
        return default


def strategy(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    value = spec.get("strategy")
    if value is None:  # most jobs have none, and this is read for every job queued
        return _NOTHING
    return value if isinstance(value, Mapping) else _NOTHING


def fail_fast(spec: Mapping[str, Any], contexts: Mapping[str, Any]) -> bool:
    """`strategy.fail-fast`, true by default."""
    return _bool(strategy(spec).get("fail-fast", True), contexts, True)


def max_parallel(spec: Mapping[str, Any], contexts: Mapping[str, Any]) -> int | None:
    """`strategy.max-parallel`: how many legs of the matrix may be in progress at once (None: no limit)."""
    raw = strategy(spec).get("max-parallel")
    if raw is None:
        return None
    return max(1, int(_number(raw, contexts, 0))) if _number(raw, contexts, 0) >= 1 else None


def continue_on_error(spec: Mapping[str, Any], contexts: Mapping[str, Any]) -> bool:
    """Job-level `continue-on-error`: a failure of this job does not fail the run nor its matrix."""
    return _bool(spec.get("continue_on_error", False), contexts, False)


def timeout_minutes(spec: Mapping[str, Any], contexts: Mapping[str, Any], default: float) -> float:
    value = _number(spec.get("timeout_minutes"), contexts, default)
    return value if value > 0 else default


def environment(spec: Mapping[str, Any], contexts: Mapping[str, Any]) -> str | None:
    raw = spec.get("environment")
    if isinstance(raw, Mapping):
        raw = raw.get("name")
    if not raw:
        return None
    try:
        return str(evaluated(str(raw), contexts)) or None
    except ExpressionError:
        return str(raw)


def retry(spec: Mapping[str, Any]) -> Retry:
    raw = spec.get("retry")
    if raw is None and isinstance(spec.get("conveyor"), Mapping):
        raw = spec["conveyor"].get("retry")
    if isinstance(raw, bool) or raw is None:
        return Retry()
    if isinstance(raw, int | float):
        return Retry(max_attempts=max(1, int(raw)))
    if isinstance(raw, Mapping):
        wanted = str(raw.get("on", "infrastructure")).lower()
        on: Literal["infrastructure", "any"] = "any" if wanted in ("any", "failure") else "infrastructure"
        attempts = raw.get("max-attempts", raw.get("max_attempts", 1))
        return Retry(max_attempts=max(1, int(attempts)) if isinstance(attempts, int | float) else 1, on=on)
    return Retry()


EMPTY_GROUP = (
    "The concurrency group evaluated to an empty string: give it a value for every event, with a fallback such "
    "as `${{ github.head_ref || github.run_id }}`"
)
"""Why a workflow or job whose concurrency group came out empty fails, as it fails on GitHub."""


def empty_group(raw: Any, contexts: Mapping[str, Any]) -> bool:
    """A `concurrency:` is written whose group evaluates to nothing (`${{ github.head_ref }}` on a push)."""
    return bool(raw) and concurrency(raw, contexts) is None


def concurrency(raw: Any, contexts: Mapping[str, Any]) -> Concurrency | None:
    """The concurrency of a workflow or job; the group name lower-cased (GitHub compares it so)."""
    if not raw:
        return None
    mapping: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {"group": raw}
    try:
        value = evaluated(str(mapping.get("group", "")), contexts)
        group = ("" if value is None else str(value)).strip().lower()
    except ExpressionError:
        group = str(mapping.get("group", "")).strip().lower()
    if not group:
        return None
    slots = mapping.get("max-in-progress")
    return Concurrency(
        group=group,
        cancel_in_progress=_bool(mapping.get("cancel-in-progress", False), contexts, False),
        max_in_progress=int(slots) if isinstance(slots, int) and slots >= 1 else None,
        queue="max" if mapping.get("queue") == "max" else "single",
    )
