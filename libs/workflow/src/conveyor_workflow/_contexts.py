"""Building the `github` context the way GitHub fills it for a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
    **more: Any,
) -> dict[str, Any]:
    """The `github` context of a run; `more` adds or overrides keys (`workspace`, `job`, `action`, ...)."""
    ref_type = "tag" if ref.startswith("refs/tags/") else "branch"
    ref_name = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
    context: dict[str, Any] = {
        "event_name": event_name,
        "event": dict(payload),
        "ref": ref,
        "ref_name": ref_name,
        "ref_type": ref_type,
        "ref_protected": False,
        "sha": sha,
        "repository": repository,
        "repository_owner": repository.split("/")[0] if "/" in repository else "",
        "actor": actor,
        "triggering_actor": actor,
        "run_id": run_id,
        "run_number": str(run_number),
        "run_attempt": str(run_attempt),
        "server_url": "https://github.com",
        "api_url": "https://api.github.com",
        "graphql_url": "https://api.github.com/graphql",
        "base_ref": "",
        "head_ref": "",
        "token": "",
    }
    context.update(more)
    return context
