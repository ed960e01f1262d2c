"""Which run a GitHub webhook delivery asks for: its ref and commit, as GitHub sets `GITHUB_REF`/`GITHUB_SHA`.

Pure: the payload in, a `Trigger` (or why nothing runs) out. The payload models read only the fields the
mapping needs and ignore the rest, so payloads that grow new fields keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

EVENTS = frozenset(
    {
        "push",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_target",
        "create",
        "delete",
        "release",
        "issues",
        "issue_comment",
        "workflow_dispatch",
        "repository_dispatch",
        "workflow_run",
        "merge_group",
    }
)
"""The events that start runs; a delivery of any other (but `ping`) is refused."""


class PayloadError(ValueError):
    """The payload lacks a field its event needs, or has one of the wrong type; the message says which."""


@dataclass(frozen=True)
class Trigger:
    """A run to request: `sha` None means the commit `ref` points at in the repository's clone."""

    ref: str
    sha: str | None
    actor: str
    fork: bool = False
    inputs: dict[str, Any] = field(default_factory=dict)
    workflow: str | None = None
    """The one workflow a `workflow_dispatch` runs (its path), as GitHub dispatches it."""


@dataclass(frozen=True)
class Ignored:
    """A delivery GitHub would start no workflow for, and why."""

    reason: str


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Repository(_Model):
    full_name: str
    default_branch: str = "main"


class _Sender(_Model):
    login: str = ""


class _Delivery(_Model):
    repository: _Repository
    sender: _Sender | None = None


class _Push(_Delivery):
    ref: str
    after: str
    deleted: bool = False


class _Side(_Model):
    ref: str
    sha: str
    repo: _Repository | None = None
    """None when the fork the pull request came from was deleted."""


class _PullRequestBody(_Model):
    number: int
    head: _Side
    base: _Side
    merged: bool | None = None
    merge_commit_sha: str | None = None


class _PullRequest(_Delivery):
    action: str = ""
    pull_request: _PullRequestBody


class _Create(_Delivery):
    ref: str
    ref_type: Literal["branch", "tag"]


class _ReleaseBody(_Model):
    tag_name: str


class _Release(_Delivery):
    release: _ReleaseBody


class _WorkflowDispatch(_Delivery):
    ref: str
    inputs: dict[str, Any] | None = None
    workflow: str | None = None


class _MergeGroupBody(_Model):
    head_sha: str
    head_ref: str


class _MergeGroup(_Delivery):
    merge_group: _MergeGroupBody


def repository_full_name(payload: Mapping[str, Any]) -> str | None:
    """The `owner/name` a delivery is about, None when it names no repository."""
    repository = payload.get("repository")
    name = repository.get("full_name") if isinstance(repository, Mapping) else None
    return name if isinstance(name, str) and name else None


def trigger_for(event_name: str, payload: Mapping[str, Any]) -> Trigger | Ignored:
    """The run `event_name` with `payload` asks for; `PayloadError` for an unknown event or a bad payload."""
    if event_name not in EVENTS:
        raise PayloadError(f"unsupported event '{event_name}'; the supported ones are {', '.join(sorted(EVENTS))}")
    try:
        return _trigger(event_name, payload)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise PayloadError(f"{event_name} payload: {where}: {problem['msg']}") from None


def _trigger(event_name: str, payload: Mapping[str, Any]) -> Trigger | Ignored:
    delivery = _Delivery.model_validate(payload)
    actor = delivery.sender.login if delivery.sender and delivery.sender.login else "github"
    default_branch = Trigger(f"refs/heads/{delivery.repository.default_branch}", None, actor)
    match event_name:
        case "push":
            push = _Push.model_validate(payload)
            if push.deleted:
                return Ignored(f"the push deleted {push.ref}: a deletion runs no push workflow")
            return Trigger(push.ref, push.after, actor)
        case "pull_request_target":
            # The default branch's own code, with its secrets: what pull_request_target is for.
            return default_branch
        case "pull_request" | "pull_request_review" | "pull_request_review_comment":
            event = _PullRequest.model_validate(payload)
            pull = event.pull_request
            if event.action == "closed" and pull.merged:  # runs on the branch it was merged into
                return Trigger(f"refs/heads/{pull.base.ref}", pull.merge_commit_sha, actor)
            base = (pull.base.repo or delivery.repository).full_name
            fork = pull.head.repo is None or pull.head.repo.full_name.lower() != base.lower()
            return Trigger(f"refs/pull/{pull.number}/merge", pull.head.sha, actor, fork=fork)
        case "create":
            created = _Create.model_validate(payload)
            kind = "heads" if created.ref_type == "branch" else "tags"
            return Trigger(f"refs/{kind}/{created.ref}", None, actor)
        case "release":
            release = _Release.model_validate(payload).release
            return Trigger(f"refs/tags/{release.tag_name}", None, actor)
        case "workflow_dispatch":
            dispatch = _WorkflowDispatch.model_validate(payload)
            return Trigger(dispatch.ref, None, actor, inputs=dict(dispatch.inputs or {}), workflow=dispatch.workflow)
        case "merge_group":
            group = _MergeGroup.model_validate(payload).merge_group
            return Trigger(group.head_ref, group.head_sha, actor)
    # delete, issues, issue_comment, repository_dispatch, workflow_run: the default branch's latest commit.
    return default_branch
