"""The `secrets` context of a job of a called reusable workflow: only what each caller passed down to it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conveyor_events import CallFrame
from conveyor_workflow import interpolate

ALWAYS_PASSED = ("GITHUB_TOKEN",)
"""Secrets a called workflow sees whatever its caller passes, as on GitHub."""


def passed_secrets(
    calls: Sequence[CallFrame],
    secrets: Mapping[str, str],
    contexts: Mapping[str, Any],
    callers: Sequence[Mapping[str, Any]] = (),
) -> dict[str, str]:
    """`secrets` as the job inside `calls` (a `JobPlanned.call`, outermost first) sees them.

    Each call hands on every secret its caller sees (`secrets: inherit`) or only those it names, each value an
    expression over the caller's `secrets` (and `contexts`: github, vars; the caller's matrix leg; and its
    `needs` and `inputs`, from `callers`, one per call as `JobQueued.callers` gives them). Raises
    `ExpressionError` when a value cannot be evaluated.
    """
    seen = dict(secrets)
    for depth, call in enumerate(calls):
        if call.inherit_secrets:
            continue
        caller = callers[depth] if depth < len(callers) else {}
        scope = {**contexts, **caller, "secrets": seen, "matrix": dict(call.matrix or {})}
        passed = {name: interpolate(str(value), scope) for name, value in call.secrets.items()}
        seen = {**{name: seen[name] for name in ALWAYS_PASSED if name in seen}, **passed}
    return seen

