"""Which ref and commit each GitHub event runs at, as GitHub documents `GITHUB_REF` and `GITHUB_SHA`."""

from __future__ import annotations

from typing import Any

import pytest
from conveyor_ingest.github_events import EVENTS, Ignored, PayloadError, Trigger, repository_full_name, trigger_for

HEAD = "a" * 40
BASE = "b" * 40
REPOSITORY = {"full_name": "octo/app", "default_branch": "trunk", "private": False, "unknown_field": [1]}
SENDER = {"login": "mona", "id": 1}


def delivery(**fields: Any) -> dict[str, Any]:
    return {"repository": REPOSITORY, "sender": SENDER, **fields}


def pull_request(head_repo: str | None, *, action: str = "opened") -> dict[str, Any]:
    head = {"ref": "feature", "sha": HEAD, "repo": {"full_name": head_repo} if head_repo else None}
    base = {"ref": "trunk", "sha": BASE, "repo": {"full_name": "octo/app"}}
    return delivery(action=action, number=7, pull_request={"number": 7, "head": head, "base": base, "title": "x"})


def test_a_push_runs_at_its_ref_and_after_commit_for_branches_and_tags() -> None:
    for ref in ("refs/heads/main", "refs/tags/v1.0"):
        assert trigger_for("push", delivery(ref=ref, after=HEAD, before=BASE)) == Trigger(ref, HEAD, "mona")


def test_a_push_that_deletes_a_branch_runs_nothing() -> None:
    decision = trigger_for("push", delivery(ref="refs/heads/gone", after="0" * 40, deleted=True))
    assert isinstance(decision, Ignored)
    assert "refs/heads/gone" in decision.reason


def test_a_pull_request_runs_at_its_merge_ref_with_the_head_commit() -> None:
    assert trigger_for("pull_request", pull_request("octo/app")) == Trigger("refs/pull/7/merge", HEAD, "mona")


def test_a_pull_request_from_another_repository_is_a_fork() -> None:
    decision = trigger_for("pull_request", pull_request("stranger/app", action="synchronize"))
    assert isinstance(decision, Trigger)
    assert decision.fork


def test_a_pull_request_whose_fork_was_deleted_is_a_fork() -> None:
    decision = trigger_for("pull_request", pull_request(None, action="closed"))
    assert isinstance(decision, Trigger)
    assert decision.fork


def test_the_same_repository_in_other_letter_case_is_not_a_fork() -> None:
    decision = trigger_for("pull_request", pull_request("Octo/App"))
    assert isinstance(decision, Trigger)
    assert not decision.fork


def test_pull_request_target_runs_the_default_branch_with_secrets() -> None:
    # as GitHub does: the default branch's latest commit, whatever branch the pull request targets
    payload = pull_request("stranger/app", action="labeled")
    payload["pull_request"]["base"]["ref"] = "release"
    assert trigger_for("pull_request_target", payload) == Trigger("refs/heads/trunk", None, "mona", fork=False)


def test_a_merged_pull_request_runs_on_the_branch_it_was_merged_into() -> None:
    payload = pull_request("octo/app", action="closed")
    payload["pull_request"].update(merged=True, merge_commit_sha="c" * 40)
    unmerged = pull_request("octo/app", action="closed")
    unmerged["pull_request"]["merged"] = False

    payload["pull_request"]["base"]["ref"] = "release"
    assert trigger_for("pull_request", payload) == Trigger("refs/heads/release", "c" * 40, "mona")
    assert trigger_for("pull_request", unmerged) == Trigger("refs/pull/7/merge", HEAD, "mona")


def test_a_review_runs_at_the_pull_requests_merge_ref() -> None:
    decision = trigger_for("pull_request_review", pull_request("octo/app", action="submitted"))
    assert decision == Trigger("refs/pull/7/merge", HEAD, "mona")


def test_create_runs_at_the_created_branch_or_tag() -> None:
    branch = trigger_for("create", delivery(ref="topic", ref_type="branch"))
    tag = trigger_for("create", delivery(ref="v2", ref_type="tag"))
    assert (branch, tag) == (Trigger("refs/heads/topic", None, "mona"), Trigger("refs/tags/v2", None, "mona"))


def test_release_runs_at_its_tag() -> None:
    decision = trigger_for("release", delivery(action="published", release={"tag_name": "v3.1", "id": 9}))
    assert decision == Trigger("refs/tags/v3.1", None, "mona")


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        ("delete", {"ref": "topic", "ref_type": "branch"}),
        ("issues", {"action": "opened", "issue": {"number": 1}}),
        ("issue_comment", {"action": "created", "comment": {"body": "hi"}}),
        ("repository_dispatch", {"action": "deploy", "branch": "trunk", "client_payload": {}}),
        ("workflow_run", {"action": "completed", "workflow_run": {"name": "CI", "head_branch": "x"}}),
    ],
)
def test_events_about_the_repository_run_at_its_default_branch(event: str, fields: dict[str, Any]) -> None:
    assert trigger_for(event, delivery(**fields)) == Trigger("refs/heads/trunk", None, "mona")


def test_workflow_dispatch_runs_at_its_ref_with_its_inputs() -> None:
    decision = trigger_for("workflow_dispatch", delivery(ref="refs/heads/dev", inputs={"level": "debug"}))
    assert decision == Trigger("refs/heads/dev", None, "mona", inputs={"level": "debug"})


def test_merge_group_runs_at_the_groups_head() -> None:
    group = {"head_sha": HEAD, "head_ref": "refs/heads/gh-readonly-queue/trunk/pr-7-abc", "base_ref": "trunk"}
    decision = trigger_for("merge_group", delivery(action="checks_requested", merge_group=group))
    assert decision == Trigger(group["head_ref"], HEAD, "mona")


def test_without_a_sender_the_actor_is_github() -> None:
    payload = {"repository": REPOSITORY, "ref": "refs/heads/main", "after": HEAD}
    decision = trigger_for("push", payload)
    assert isinstance(decision, Trigger)
    assert decision.actor == "github"


def test_an_unknown_event_is_refused_with_the_supported_ones() -> None:
    with pytest.raises(PayloadError, match=r"unsupported event 'star'.*merge_group"):
        trigger_for("star", delivery(action="created"))
    assert "ping" not in EVENTS


def test_a_payload_missing_a_field_says_which() -> None:
    with pytest.raises(PayloadError, match=r"push payload: after: Field required"):
        trigger_for("push", delivery(ref="refs/heads/main"))
    with pytest.raises(PayloadError, match=r"pull_request payload: pull_request\.head\.sha"):
        trigger_for("pull_request", delivery(pull_request={"number": 1, "head": {"ref": "x"}, "base": {}}))
    with pytest.raises(PayloadError, match="repository"):
        trigger_for("issues", {"action": "opened"})


def test_the_repository_is_named_by_its_full_name() -> None:
    assert repository_full_name(delivery()) == "octo/app"
    assert repository_full_name({"repository": {"full_name": ""}}) is None
    assert repository_full_name({"repository": "octo/app"}) is None
    assert repository_full_name({"zen": "Keep it logically awesome."}) is None
