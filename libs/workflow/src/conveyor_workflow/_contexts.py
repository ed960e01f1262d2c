"""Building the `github` context the way GitHub fills it for a run."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

RETENTION_DAYS = 90
"""`github.retention_days`: what GitHub keeps a run's logs and artifacts for by default."""


def github_context(
    *,
    event_name: str,
    payload: Mapping[str, Any],
    ref: str,
    sha: str,
    repository: str,
    actor: str,
    run_id: str,
    run_number: int = 1,
    run_attempt: int = 1,
    workflow: str = "",
    workflow_path: str = "",
    **more: Any,
) -> dict[str, Any]:
    """The `github` context of a run; `more` adds or overrides keys (`workspace`, `job`, `action`, ...).

    `workflow` is the workflow's `name:` (its path when it has none) and `workflow_path` its file, from which
    `workflow_ref` is made. What only the event's payload says (the ids of the repository and the actor, the
    branches of a pull request) is read from it, and empty when it does not say.
    """
    # head_ref and base_ref are set for these two events only, as GitHub sets GITHUB_HEAD_REF and GITHUB_BASE_REF
    pull = _mapping(payload.get("pull_request")) if event_name in ("pull_request", "pull_request_target") else {}
    owner = _mapping(_mapping(payload.get("repository")).get("owner"))
    context: dict[str, Any] = {
        "event_name": event_name,
        "event": dict(payload),
        "ref": ref,
        "ref_name": _ref_name(ref),
        "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
        "ref_protected": False,
        "sha": sha,
        "repository": repository,
        "repository_id": _id(_mapping(payload.get("repository")).get("id")),
        "repository_owner": owner.get("login") or (repository.split("/")[0] if "/" in repository else ""),
        "repository_owner_id": _id(owner.get("id")),
        "actor": actor,
        "actor_id": _id(_mapping(payload.get("sender")).get("id")),
        "triggering_actor": actor,
        "run_id": run_id,
        "run_number": str(run_number),
        "run_attempt": str(run_attempt),
        "retention_days": str(RETENTION_DAYS),
        "workflow": workflow,
        "workflow_ref": f"{repository}/{workflow_path}@{ref}" if workflow_path else "",
        "workflow_sha": sha if workflow_path else "",
        "server_url": "https://github.com",
        "api_url": "https://api.github.com",
        "graphql_url": "https://api.github.com/graphql",
        "base_ref": str(_mapping(pull.get("base")).get("ref") or ""),
        "head_ref": str(_mapping(pull.get("head")).get("ref") or ""),
        "token": "",
    }
    context.update(more)
    return context


def _ref_name(ref: str) -> str:
    """The branch or tag's short name; a pull request's merge ref is `<number>/merge`."""
    if ref.startswith("refs/pull/"):
        return ref.removeprefix("refs/pull/")
    return ref.removeprefix("refs/heads/").removeprefix("refs/tags/")


_NOTHING: Mapping[str, Any] = MappingProxyType({})


def _mapping(value: Any) -> Mapping[str, Any]:
    if value is None:  # most payloads leave these out; answered before the abstract type check, as the context
        return _NOTHING  # is made for every job queued
    return value if isinstance(value, Mapping) else _NOTHING


def _id(value: Any) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
