"""A dispatch through the REST API as the `RunRequested` it appends, refused where GitHub's API would refuse it.

- `workflow_dispatch` ("Create a workflow dispatch event"): names one workflow file and a ref (the default branch
  when unset). The file is read at that commit and its declared inputs are checked, defaulted and typed by
  `conveyor_workflow.dispatch_inputs`: the run's `inputs` keep booleans and numbers, while the payload's `inputs`
  (`github.event.inputs`) hold strings, as GitHub sends them.
- `repository_dispatch` ("Create a repository dispatch event"): an `event_type` of 1 to 100 characters and a
  `client_payload` object of at most 10 top-level properties, at the default branch. Which workflows run is the
  planner's trigger matching (`on.repository_dispatch.types` against the payload's `action`); a type that no
  workflow lists is still accepted, as GitHub accepts it.
- Any other event runs the repository's workflows (or the one named) at the ref, with the inputs as given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from conveyor_events import RunRequested
from conveyor_runtime import GitRemotes, RemoteGitError, workflow_blobs
from conveyor_workflow import WorkflowError, dispatch_inputs, load_workflow

from conveyor_ingest.adapters import GitError, resolve_ref
from conveyor_ingest.domain import request_run

WORKFLOWS_DIR = ".github/workflows"
MAX_EVENT_TYPE_LENGTH = 100
MAX_CLIENT_PAYLOAD_PROPERTIES = 10


class DispatchRefused(Exception):
    """A dispatch that cannot run as asked (HTTP 422); the message names the workflow, input or field at fault."""


async def dispatched_run(
    repository: Mapping[str, Any],
    *,
    event: str,
    ref: str | None = None,
    workflow: str | None = None,
    inputs: Mapping[str, Any] | None = None,
    event_type: str | None = None,
    client_payload: Mapping[str, Any] | None = None,
    remotes: GitRemotes | None = None,
) -> RunRequested:
    """The `RunRequested` that dispatching `event` in the registered `repository` (its read-model row: `url`,
    `default_branch`) appends, or `DispatchRefused` saying why GitHub would answer 422.

    `remotes` reads a repository registered by clone URL; without it only local paths can be read."""
    remotes = remotes or GitRemotes()
    given = dict(inputs or {})
    if event != "repository_dispatch" and (event_type is not None or client_payload is not None):
        raise DispatchRefused(f"'event_type' and 'client_payload' are for repository_dispatch, not {event}")
    if event == "repository_dispatch":
        payload = dict(client_payload or {})
        return await _repository_dispatch(repository, ref, workflow, given, event_type, payload, remotes)
    if event == "workflow_dispatch":
        return await _workflow_dispatch(repository, ref, workflow, given, remotes)
    full_ref, sha = await _resolve(repository, ref, remotes)
    return request_run(
        repository=repository["url"],
        repository_name=repository.get("github") or None,
        default_branch=str(repository["default_branch"]),
        ref=full_ref,
        sha=sha,
        event_name=event,
        inputs=given,
        workflows=[workflow_path(workflow)] if workflow else None,
    )


def workflow_path(workflow: str) -> str:
    """A workflow's path from the repository root, given as GitHub's `workflow_id` allows (its file name,
    `deploy.yml`) or as that path (`.github/workflows/deploy.yml`, with or without a leading `./`)."""
    path = workflow.strip().removeprefix("./").lstrip("/")
    return path if "/" in path else f"{WORKFLOWS_DIR}/{path}"


async def _workflow_dispatch(
    repository: Mapping[str, Any], ref: str | None, workflow: str | None, given: dict[str, Any], remotes: GitRemotes
) -> RunRequested:
    if not workflow:
        raise DispatchRefused(
            "workflow_dispatch needs 'workflow': the workflow file to run, by its file name (deploy.yml) "
            f"or its path ({WORKFLOWS_DIR}/deploy.yml)"
        )
    path = workflow_path(workflow)
    full_ref, sha = await _resolve(repository, ref, remotes)
    text = await asyncio.to_thread(_file_at, str(repository["url"]), sha, path, remotes)
    if text is None:
        raise DispatchRefused(
            f"workflow '{path}' not found at {full_ref} ({sha[:12]}): name a .yml or .yaml file in {WORKFLOWS_DIR}"
        )
    try:
        definition = load_workflow(text, path)
    except WorkflowError as error:
        found = "; ".join(str(diagnostic) for diagnostic in error.diagnostics)
        raise DispatchRefused(f"workflow '{path}' at {full_ref} is not a valid workflow: {found}") from error
    checked = dispatch_inputs(definition, given)
    if checked.problems:
        raise DispatchRefused(f"cannot dispatch workflow '{path}': {'; '.join(checked.problems)}")
    return request_run(
        repository=repository["url"],
        repository_name=repository.get("github") or None,
        default_branch=str(repository["default_branch"]),
        ref=full_ref,
        sha=sha,
        event_name="workflow_dispatch",
        inputs=checked.inputs,
        workflows=[path],
        payload={"inputs": checked.event_inputs, "ref": full_ref, "workflow": path},
    )


async def _repository_dispatch(
    repository: Mapping[str, Any],
    ref: str | None,
    workflow: str | None,
    given: dict[str, Any],
    event_type: str | None,
    client_payload: dict[str, Any],
    remotes: GitRemotes,
) -> RunRequested:
    if not event_type or len(event_type) > MAX_EVENT_TYPE_LENGTH:
        raise DispatchRefused(
            f"repository_dispatch needs 'event_type': a custom event name of 1 to {MAX_EVENT_TYPE_LENGTH} "
            f"characters{f', not {len(event_type)}' if event_type else ''}"
        )
    if len(client_payload) > MAX_CLIENT_PAYLOAD_PROPERTIES:
        raise DispatchRefused(
            f"'client_payload' may have at most {MAX_CLIENT_PAYLOAD_PROPERTIES} top-level properties, "
            f"not {len(client_payload)}"
        )
    branch = str(repository["default_branch"])
    if ref is not None:
        raise DispatchRefused(f"repository_dispatch runs at the default branch ('{branch}'): leave 'ref' unset")
    if given:
        raise DispatchRefused("repository_dispatch has no 'inputs': send values in 'client_payload'")
    full_ref, sha = await _resolve(repository, branch, remotes)
    return request_run(
        repository=repository["url"],
        repository_name=repository.get("github") or None,
        default_branch=str(repository["default_branch"]),
        ref=full_ref,
        sha=sha,
        event_name="repository_dispatch",
        workflows=[workflow_path(workflow)] if workflow else None,
        payload={"action": event_type, "branch": branch, "client_payload": client_payload},
    )


async def _resolve(repository: Mapping[str, Any], ref: str | None, remotes: GitRemotes) -> tuple[str, str]:
    url = str(repository["url"])
    try:
        return await asyncio.to_thread(_resolved, url, ref or repository["default_branch"], remotes)
    except GitError as error:
        raise DispatchRefused(str(error)) from error


def _resolved(url: str, ref: str, remotes: GitRemotes) -> tuple[str, str]:
    return resolve_ref(url, ref, token=remotes.token(url))


def typed_inputs(url: str, sha: str, path: str, given: Mapping[str, Any], remotes: GitRemotes) -> dict[str, Any]:
    """The `inputs` context of a dispatch of the workflow at `path` (as GitHub delivers it: every value a string)
    typed and defaulted as the workflow declares its inputs; `given` as it is when the workflow cannot be read
    or does not accept it (GitHub checked the dispatch already)."""
    try:
        text = _file_at(url, sha, path, remotes)
        checked = dispatch_inputs(load_workflow(text, path), dict(given)) if text is not None else None
    except (DispatchRefused, WorkflowError):
        checked = None
    return dict(given) if checked is None or checked.problems else checked.inputs


def _file_at(url: str, sha: str, path: str, remotes: GitRemotes) -> str | None:
    """The text of the workflow file `path` at commit `sha`, or None when the commit has no such file.

    Only files directly in `.github/workflows` ending in `.yml`/`.yaml` count: the planner reads no others.
    """
    folder, _, name = path.rpartition("/")
    if folder != WORKFLOWS_DIR or not name.endswith((".yml", ".yaml")):
        return None
    try:
        data = workflow_blobs(remotes.local_commit(url, sha), sha).get(path)
    except RemoteGitError as error:
        raise DispatchRefused(str(error)) from error
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DispatchRefused(f"workflow '{path}' is not UTF-8 text ({error.reason} at byte {error.start})") from error
