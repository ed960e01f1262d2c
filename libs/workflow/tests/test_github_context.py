"""The `github` context built for a run, as GitHub documents its keys."""

from conveyor_workflow import github_context

PULL_REQUEST = {
    "action": "opened",
    "number": 12,
    "pull_request": {"base": {"ref": "main"}, "head": {"ref": "feature/login"}},
    "repository": {"id": 4242, "owner": {"login": "octo-org", "id": 77}},
    "sender": {"login": "mona", "id": 583231},
}


def context(**changes: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "event_name": "pull_request",
        "payload": PULL_REQUEST,
        "ref": "refs/pull/12/merge",
        "sha": "a" * 40,
        "repository": "octo-org/app",
        "actor": "mona",
        "run_id": "17",
        "workflow": "CI",
        "workflow_path": ".github/workflows/ci.yml",
    }
    return github_context(**{**arguments, **changes})  # type: ignore[arg-type]


def test_a_pull_requests_refs_and_the_ids_come_from_its_payload() -> None:
    github = context()
    assert github["ref_name"] == "12/merge"
    assert (github["base_ref"], github["head_ref"]) == ("main", "feature/login")
    assert github["repository_id"] == "4242"
    assert (github["repository_owner"], github["repository_owner_id"]) == ("octo-org", "77")
    assert github["actor_id"] == "583231"


def test_head_and_base_refs_are_only_a_pull_request_or_pull_request_targets() -> None:
    review = context(event_name="pull_request_review")
    target = context(event_name="pull_request_target")
    assert (review["base_ref"], review["head_ref"]) == ("", "")
    assert (target["base_ref"], target["head_ref"]) == ("main", "feature/login")


def test_the_workflow_is_named_and_referenced_at_the_ref() -> None:
    github = context()
    assert github["workflow"] == "CI"
    assert github["workflow_ref"] == "octo-org/app/.github/workflows/ci.yml@refs/pull/12/merge"
    assert github["workflow_sha"] == "a" * 40
    assert github["retention_days"] == "90"


def test_a_push_has_empty_pull_request_refs_and_a_branch_name() -> None:
    github = context(event_name="push", payload={}, ref="refs/heads/releases/v1")
    assert (github["ref_name"], github["ref_type"]) == ("releases/v1", "branch")
    assert (github["base_ref"], github["head_ref"], github["actor_id"], github["repository_id"]) == ("", "", "", "")
    assert github["repository_owner"] == "octo-org"
