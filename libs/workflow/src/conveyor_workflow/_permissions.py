"""`permissions:` of the GITHUB_TOKEN: the scopes, the levels each takes, and what a `permissions:` value grants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SCOPES = frozenset(
    [
        "actions",
        "artifact-metadata",
        "attestations",
        "checks",
        "contents",
        "copilot-requests",
        "deployments",
        "discussions",
        "id-token",
        "issues",
        "models",
        "packages",
        "pages",
        "pull-requests",
        "repository-projects",
        "security-events",
        "statuses",
        "vulnerability-alerts",
    ]
)
LEVELS: Mapping[str, tuple[str, ...]] = {
    "copilot-requests": ("write", "none"),
    "id-token": ("write", "none"),
    "models": ("read", "none"),
    "vulnerability-alerts": ("read", "none"),
}
"""Scopes that take fewer access levels than read, write and none."""
_RANK = {"none": 0, "read": 1, "write": 2}


def levels(scope: str) -> tuple[str, ...]:
    """The access levels `scope` takes."""
    return LEVELS.get(scope, ("read", "write", "none"))


def granted(permissions: Any) -> dict[str, str] | None:
    """Each scope's access level under `permissions` as loaded (`read-all`, `write-all` or scope → level, the
    scopes not named getting none); None when there is no `permissions:`, which leaves the default."""
    if permissions is None:
        return None
    if permissions in ("read-all", "write-all"):
        ceiling = _RANK[str(permissions).removesuffix("-all")]
        return {scope: max(levels(scope), key=lambda level: _RANK[level] if _RANK[level] <= ceiling else -1)
                for scope in SCOPES}
    given: Mapping[str, str] = permissions if isinstance(permissions, Mapping) else {}
    return {scope: given.get(scope, "none") for scope in SCOPES}


def elevated(requested: Mapping[str, str], allowed: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """The scopes `requested` asks for at a higher level than `allowed`: (scope, requested, allowed), sorted."""
    return sorted(
        (scope, level, allowed.get(scope, "none"))
        for scope, level in requested.items()
        if _RANK.get(level, 0) > _RANK.get(allowed.get(scope, "none"), 0)
    )
