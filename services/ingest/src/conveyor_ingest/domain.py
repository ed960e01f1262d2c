"""What ingest decides: the events that start a run or register a repository."""

from __future__ import annotations

import uuid
from typing import Any

from conveyor_events import RepositoryRegistered, RunRequested, SealedSecret, deterministic_id

REPOSITORIES_STREAM = "repositories"


def run_id_for(repository: str, delivery_id: str | None) -> str:
    """The same delivery of the same repository always names the same run; no delivery id, a new run."""
    if delivery_id is None:
        return str(uuid.uuid4())
    return deterministic_id("run", repository, delivery_id)


def request_run(
    *,
    repository: str,
    ref: str,
    sha: str,
    event_name: str = "push",
    payload: dict[str, Any] | None = None,
    workdir: str | None = None,
    workflows: list[str] | None = None,
    inputs: dict[str, Any] | None = None,
    actor: str = "conveyor",
    delivery_id: str | None = None,
    variables: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    jobs: list[str] | None = None,
    repository_name: str | None = None,
    default_branch: str = "",
) -> RunRequested:
    """A `RunRequested`; a push's payload gets the fields its filters read (`ref`, `after`) when it lacks them.
    Other events' payloads are left as given: GitHub's have no such fields."""
    body = {"ref": ref, "after": sha, **(payload or {})} if event_name == "push" else dict(payload or {})
    return RunRequested(
        run_id=run_id_for(repository, delivery_id),
        repository=repository,
        repository_name=repository_name,
        ref=ref,
        sha=sha,
        event_name=event_name,
        payload=body,
        workdir=workdir,
        workflows=workflows or [],
        inputs=inputs or {},
        actor=actor,
        delivery_id=delivery_id,
        variables=variables or {},
        env=env or {},
        jobs=jobs or [],
        default_branch=default_branch,
    )


def register_repository(
    name: str,
    url: str,
    default_branch: str = "main",
    *,
    github: str | None = None,
    webhook_secret: SealedSecret | None = None,
    token: SealedSecret | None = None,
    app_id: str | None = None,
    installation_id: int | None = None,
    app_private_key: SealedSecret | None = None,
) -> RepositoryRegistered:
    """A registration; a name of the form `owner/name` is also the repository's name on GitHub unless told.

    A GitHub App needs all three of `app_id`, `installation_id` and `app_private_key`.
    """
    app = (app_id, installation_id, app_private_key)
    if any(part is not None for part in app) and not all(part is not None for part in app):
        raise ValueError("a GitHub App needs its app id, its installation id and its private key, all three")
    return RepositoryRegistered(
        name=name,
        url=url,
        default_branch=default_branch,
        github=github or (name if "/" in name else None),
        webhook_secret=webhook_secret,
        token=token,
        app_id=app_id,
        installation_id=installation_id,
        app_private_key=app_private_key,
    )


def webhook_event_id(run_id: str) -> str:
    """The id of the `RunRequested` a delivery appends: the same delivery again finds it stored."""
    return deterministic_id("webhook", run_id)
