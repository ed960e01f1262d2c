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
        ("pull_request_target", {"number": 7, "pull_request": {"base": {"ref": "main"}}}, "refs/heads/main"),
        ("release", {"release": {"tag_name": "v1.2.0"}}, "refs/tags/v1.2.0"),
        ("push", {"ref": "refs/tags/v2"}, "refs/tags/v2"),
        ("workflow_dispatch", {"ref": "release"}, "refs/heads/release"),
        ("issues", {"action": "opened"}, HEAD),
        ("push", {}, HEAD),
    ],
)
def test_the_event_payload_chooses_the_ref(event: str, payload: dict[str, Any], expected: str) -> None:
    assert event_ref(event, payload, HEAD) == expected
