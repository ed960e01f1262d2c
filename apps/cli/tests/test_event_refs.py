"""The ref `conveyor run EVENT -e payload.json` runs at, as GitHub sets GITHUB_REF for each event."""

from __future__ import annotations

from typing import Any

import pytest
from conveyor_cli.run_command import event_ref

HEAD = "refs/heads/feature"


@pytest.mark.parametrize(
    ("event", "payload", "expected"),
    [
        ("pull_request", {"number": 7, "pull_request": {"base": {"ref": "main"}}}, "refs/pull/7/merge"),
        ("pull_request_review", {"pull_request": {"number": 7, "base": {"ref": "main"}}}, "refs/pull/7/merge"),
        # a merged pull request runs on the branch it was merged into
        ("pull_request", {"action": "closed", "number": 7, "pull_request": {"merged": True, "base": {"ref": "main"}}},
         "refs/heads/main"),
        ("pull_request", {"action": "closed", "number": 7, "pull_request": {"merged": False, "base": {"ref": "m"}}},
         "refs/pull/7/merge"),
        # pull_request_target runs in the base repository's default branch
        ("pull_request_target", {"number": 7, "pull_request": {"base": {"ref": "release"}},
                                 "repository": {"default_branch": "main"}}, "refs/heads/main"),
        ("release", {"release": {"tag_name": "v1.2.0"}}, "refs/tags/v1.2.0"),
        ("push", {"ref": "refs/tags/v2"}, "refs/tags/v2"),
        ("workflow_dispatch", {"ref": "release"}, "refs/heads/release"),
        ("create", {"ref": "v3.0", "ref_type": "tag"}, "refs/tags/v3.0"),
        ("create", {"ref": "topic", "ref_type": "branch"}, "refs/heads/topic"),
        ("delete", {"ref": "old", "ref_type": "branch", "repository": {"default_branch": "main"}}, "refs/heads/main"),
        ("merge_group", {"merge_group": {"head_ref": "refs/heads/gh-readonly-queue/main/pr-7"}},
         "refs/heads/gh-readonly-queue/main/pr-7"),
        ("issue_comment", {"action": "created", "repository": {"default_branch": "main"}}, "refs/heads/main"),
        ("schedule", {"repository": {"default_branch": "trunk"}}, "refs/heads/trunk"),
        ("issues", {"action": "opened"}, HEAD),  # no default branch named: the checked-out one
        ("push", {}, HEAD),
    ],
)
def test_the_event_payload_chooses_the_ref(event: str, payload: dict[str, Any], expected: str) -> None:
    assert event_ref(event, payload, HEAD) == expected
