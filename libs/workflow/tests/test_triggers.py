from typing import Any

import pytest
from conveyor_workflow._glob import GlobError
from conveyor_workflow._model import Workflow
from conveyor_workflow._triggers import DEFAULT_ACTIVITY_TYPES, skip_requested, triggered, validate_filters


def workflow(on: dict[str, Any]) -> Workflow:
    return Workflow(path=".github/workflows/ci.yml", on=on)


def push(ref: str) -> dict[str, Any]:
    return {"ref": ref}


BRANCH = "refs/heads/main"
TAG = "refs/tags/v1.2.0"


@pytest.mark.parametrize(
    ("config", "ref", "expected"),
    [
        ({}, BRANCH, True),
        ({}, TAG, True),
        ({"branches": ["main"]}, BRANCH, True),
        ({"branches": ["main"]}, "refs/heads/dev", False),
        ({"branches": ["releases/**"]}, "refs/heads/releases/v1/hotfix", True),
        ({"branches": ["releases/**", "!releases/**-alpha"]}, "refs/heads/releases/beta-alpha", False),
        ({"branches": ["releases/**", "!releases/**-alpha"]}, "refs/heads/releases/beta", True),
        ({"branches-ignore": ["mona/octocat", "releases/**-alpha"]}, "refs/heads/mona/octocat", False),
        ({"branches-ignore": ["mona/octocat", "releases/**-alpha"]}, "refs/heads/main", True),
        ({"tags": ["v2", "v1.*"]}, "refs/tags/v1.9", True),
        ({"tags": ["v2", "v1.*"]}, "refs/tags/v3", False),
        ({"tags-ignore": ["v1.*"]}, "refs/tags/v1.9", False),
        ({"tags-ignore": ["v1.*"]}, "refs/tags/v2", True),
        # Only branch filters: tag pushes do not run; only tag filters: branch pushes do not run.
        ({"branches": ["**"]}, TAG, False),
        ({"branches-ignore": ["dev"]}, TAG, False),
        ({"tags": ["**"]}, BRANCH, False),
        ({"tags-ignore": ["v0*"]}, BRANCH, False),
        # Both kinds given: each applies to its own kind of ref.
        ({"branches": ["main"], "tags": ["v*"]}, BRANCH, True),
        ({"branches": ["main"], "tags": ["v*"]}, TAG, True),
        ({"branches": ["main"], "tags": ["x*"]}, TAG, False),
        ({"branches": ["dev"], "tags-ignore": ["x*"]}, TAG, True),
    ],
)
def test_push_branch_and_tag_filters(config, ref, expected):
    assert triggered(workflow({"push": config}), "push", push(ref)) is expected


@pytest.mark.parametrize(
    ("config", "ref", "changed", "expected"),
    [
        ({"paths": ["**.js"]}, BRANCH, ["src/app.js"], True),
        ({"paths": ["**.js"]}, BRANCH, ["README.md"], False),
        ({"paths": ["**.js"]}, BRANCH, ["README.md", "a.js"], True),
        ({"paths": ["sub/**", "!sub/manifest/**"]}, BRANCH, ["sub/manifest/a.yml"], False),
        ({"paths": ["sub/**", "!sub/manifest/**"]}, BRANCH, ["sub/manifest/a.yml", "sub/b.py"], True),
        ({"paths-ignore": ["docs/**"]}, BRANCH, ["docs/a.md", "docs/b/c.md"], False),
        ({"paths-ignore": ["docs/**"]}, BRANCH, ["docs/a.md", "src/x.py"], True),
        # Both branch and path filters: both must be satisfied.
        ({"branches": ["main"], "paths": ["src/**"]}, BRANCH, ["src/a.py"], True),
        ({"branches": ["main"], "paths": ["src/**"]}, BRANCH, ["docs/a.md"], False),
        ({"branches": ["main"], "paths": ["src/**"]}, "refs/heads/dev", ["src/a.py"], False),
        # Path filters are not evaluated for pushes of tags.
        ({"paths": ["src/**"]}, TAG, ["docs/a.md"], True),
        ({"tags": ["v*"], "paths": ["src/**"]}, TAG, ["docs/a.md"], True),
        ({"paths-ignore": ["**"]}, TAG, ["a"], True),
        # Unknown diff: path filters count as satisfied. Empty diff: neither form is satisfied.
        ({"paths": ["src/**"]}, BRANCH, None, True),
        ({"paths-ignore": ["src/**"]}, BRANCH, None, True),
        ({"paths": ["src/**"]}, BRANCH, [], False),
        ({"paths-ignore": ["src/**"]}, BRANCH, [], False),
        ({}, BRANCH, [], True),
    ],
)
def test_push_path_filters(config, ref, changed, expected):
    assert triggered(workflow({"push": config}), "push", push(ref), changed) is expected


def test_an_event_missing_from_on_does_not_trigger():
    assert not triggered(workflow({"push": {}}), "pull_request", {"action": "opened"})
    assert not triggered(workflow({}), "push", push(BRANCH))


def pull_request(action: str, base: str = "main") -> dict[str, Any]:
    return {"action": action, "pull_request": {"base": {"ref": base}, "head": {"ref": "feature"}}}


@pytest.mark.parametrize("event", ["pull_request", "pull_request_target"])
@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("opened", True),
        ("synchronize", True),
        ("reopened", True),
        ("closed", False),
        ("labeled", False),
        ("edited", False),
        ("ready_for_review", False),
    ],
)
def test_pull_request_default_activity_types(event, action, expected):
    assert triggered(workflow({event: {}}), event, pull_request(action)) is expected


@pytest.mark.parametrize("event", ["pull_request", "pull_request_target"])
@pytest.mark.parametrize(
    ("config", "payload", "changed", "expected"),
    [
        ({"types": ["closed"]}, pull_request("closed"), None, True),
        ({"types": ["closed"]}, pull_request("opened"), None, False),
        ({"types": "labeled"}, pull_request("labeled"), None, True),
        ({"branches": ["main"]}, pull_request("opened", base="main"), None, True),
        ({"branches": ["main"]}, pull_request("opened", base="dev"), None, False),
        ({"branches": ["releases/**"]}, pull_request("opened", base="releases/v1"), None, True),
        ({"branches-ignore": ["releases/**"]}, pull_request("opened", base="releases/v1"), None, False),
        ({"branches": ["main"], "paths": ["src/**"]}, pull_request("opened"), ["src/a"], True),
        ({"branches": ["main"], "paths": ["src/**"]}, pull_request("opened"), ["doc/a"], False),
        ({"paths-ignore": ["doc/**"]}, pull_request("synchronize"), ["doc/a"], False),
        ({"types": ["closed"], "branches": ["main"]}, pull_request("closed", base="dev"), None, False),
        # The head branch is not what branch filters look at.
        ({"branches": ["feature"]}, pull_request("opened", base="main"), None, False),
    ],
)
def test_pull_request_filters(event, config, payload, changed, expected):
    assert triggered(workflow({event: config}), event, payload, changed) is expected


def test_default_activity_types_are_documented_for_pull_requests_only():
    assert set(DEFAULT_ACTIVITY_TYPES) == {"pull_request", "pull_request_target"}


@pytest.mark.parametrize(
    ("event", "config", "action", "expected"),
    [
        # Without `types`, every activity type of these events triggers.
        ("issues", {}, "opened", True),
        ("issues", {}, "deleted", True),
        ("issue_comment", {}, "created", True),
        ("release", {}, "prereleased", True),
        ("workflow_run", {}, "requested", True),
        ("pull_request_review", {}, "dismissed", True),
        ("discussion", {}, "answered", True),
        ("label", {}, "deleted", True),
        ("check_run", {}, "rerequested", True),
        ("merge_group", {}, "checks_requested", True),
        # With `types`, only those listed.
        ("issues", {"types": ["opened", "labeled"]}, "labeled", True),
        ("issues", {"types": ["opened", "labeled"]}, "closed", False),
        ("issue_comment", {"types": ["created"]}, "edited", False),
        ("release", {"types": ["published"]}, "published", True),
        ("release", {"types": ["published"]}, "created", False),
        ("pull_request_review_comment", {"types": ["edited"]}, "edited", True),
        ("registry_package", {"types": ["published"]}, "updated", False),
        ("watch", {"types": ["started"]}, "started", True),
        ("repository_dispatch", {"types": ["deploy"]}, "deploy", True),
        ("repository_dispatch", {"types": ["deploy"]}, "test", False),
        ("repository_dispatch", {}, "anything", True),
    ],
)
def test_activity_types(event, config, action, expected):
    assert triggered(workflow({event: config}), event, {"action": action}) is expected


def test_a_payload_without_action_passes_the_types_check():
    assert triggered(workflow({"issues": {"types": ["opened"]}}), "issues", {})
    assert triggered(workflow({"pull_request": {}}), "pull_request", {"pull_request": {"base": {"ref": "x"}}})


def workflow_run(name: str, branch: str = "main", action: str = "completed") -> dict[str, Any]:
    return {"action": action, "workflow_run": {"name": name, "head_branch": branch}}


@pytest.mark.parametrize(
    ("config", "payload", "expected"),
    [
        ({"workflows": ["Build"]}, workflow_run("Build"), True),
        ({"workflows": ["Build"]}, workflow_run("Lint"), False),
        ({"workflows": ["Build*"]}, workflow_run("Build and test"), True),
        ({"workflows": [r"PR Check - C\+\+"]}, workflow_run("PR Check - C++"), True),
        ({"workflows": ["Build"], "types": ["completed"]}, workflow_run("Build", action="requested"), False),
        ({"workflows": ["Build"], "types": ["requested"]}, workflow_run("Build", action="requested"), True),
        ({"workflows": ["Build"], "branches": ["releases/**"]}, workflow_run("Build", "releases/v1"), True),
        ({"workflows": ["Build"], "branches": ["releases/**"]}, workflow_run("Build", "main"), False),
        ({"workflows": ["Build"], "branches-ignore": ["canary"]}, workflow_run("Build", "canary"), False),
        ({"workflows": ["Build"], "branches-ignore": ["canary"]}, workflow_run("Build", "main"), True),
    ],
)
def test_workflow_run_filters(config, payload, expected):
    assert triggered(workflow({"workflow_run": config}), "workflow_run", payload) is expected


def merge_group(base_ref: str) -> dict[str, Any]:
    return {"action": "checks_requested", "merge_group": {"base_ref": base_ref, "head_ref": "gh-readonly-queue/x"}}


@pytest.mark.parametrize(
    ("config", "payload", "expected"),
    [
        ({}, merge_group("refs/heads/dev"), True),
        ({"branches": ["main"]}, merge_group("refs/heads/main"), True),
        ({"branches": ["main"]}, merge_group("refs/heads/dev"), False),
        ({"branches": ["releases/**"]}, merge_group("refs/heads/releases/v2"), True),
        ({"branches-ignore": ["main"]}, merge_group("refs/heads/main"), False),
        ({"branches-ignore": ["main"]}, merge_group("refs/heads/dev"), True),
    ],
)
def test_merge_group_branch_filters_apply_to_the_branch_merged_into(config, payload, expected):
    assert triggered(workflow({"merge_group": config}), "merge_group", payload) is expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, True),
        ({"schedule": "30 5 * * 1,3"}, True),
        ({"schedule": "30  5 * *  1,3"}, True),
        ({"schedule": "0 0 * * *"}, False),
    ],
)
def test_schedule_matches_the_cron_that_fired(payload, expected):
    on = {"schedule": [{"cron": "30 5 * * 1,3"}, {"cron": "30 5 * * 2,4"}]}
    assert triggered(workflow(on), "schedule", payload) is expected


@pytest.mark.parametrize("event", ["workflow_dispatch", "workflow_call", "fork", "create", "delete", "gollum"])
def test_events_without_filters_trigger_when_listed(event):
    assert triggered(workflow({event: {}}), event, {})
    assert triggered(workflow({event: {"inputs": {"x": {"type": "string"}}}}), event, {"inputs": {"x": "1"}})
    assert not triggered(workflow({"push": {}}), event, {})


def test_a_null_configuration_counts_as_empty():
    assert triggered(workflow({"push": None}), "push", push(BRANCH))


def test_a_plain_object_with_on_is_enough():
    class Source:
        on = {"push": {"branches": ["main"]}}

    assert triggered(Source(), "push", push(BRANCH))


def test_numbers_in_filters_compare_as_text():
    assert triggered(workflow({"push": {"tags": [1.5]}}), "push", push("refs/tags/1.5"))


def test_an_invalid_pattern_raises_a_value_error():
    with pytest.raises(GlobError, match="never closed"):
        triggered(workflow({"push": {"branches": ["[main"]}}), "push", push(BRANCH))


def test_validate_filters_reports_filters_combined_with_their_ignore_form():
    on = {
        "push": {"branches": ["main"], "branches-ignore": ["dev"], "tags": ["v*"], "tags-ignore": ["v0*"]},
        "pull_request": {"paths": ["src/**"], "paths-ignore": ["docs/**"]},
        "workflow_dispatch": {},
        "schedule": [{"cron": "0 0 * * *"}],
    }
    assert validate_filters(on) == [
        "on.push: 'branches' and 'branches-ignore' cannot be used together for one event; "
        "use 'branches' with '!' patterns to exclude",
        "on.push: 'tags' and 'tags-ignore' cannot be used together for one event; "
        "use 'tags' with '!' patterns to exclude",
        "on.pull_request: 'paths' and 'paths-ignore' cannot be used together for one event; "
        "use 'paths' with '!' patterns to exclude",
    ]


def test_validate_filters_reports_invalid_patterns_where_they_are():
    on = {"push": {"branches": ["main", "[oops"], "paths": 7}, "workflow_run": {"workflows": [{"a": 1}]}}
    problems = validate_filters(on)
    assert len(problems) == 3
    assert problems[0].startswith("on.push.branches[1]: Invalid filter pattern '[oops'")
    assert problems[1] == "on.push.paths: expected a list of filter patterns"
    assert problems[2] == "on.workflow_run.workflows[0]: A filter pattern must be a string, got dict"


def test_validate_filters_accepts_good_filters():
    on = {"push": {"branches": ["main", "!dev"], "paths-ignore": ["docs/**"]}, "pull_request": {}}
    assert validate_filters(on) == []


@pytest.mark.parametrize(
    ("message", "skip"),
    [
        ("Fix typo [skip ci]", True),
        ("[ci skip] docs", True),
        ("wip [no ci]", True),
        ("[skip actions]", True),
        ("x [actions skip]", True),
        ("Fix bug\n\nLong text.\n\n\nskip-checks:true", True),
        ("Fix bug\n\nSigned-off-by: A <a@b>\nskip-checks: true\n", True),
        ("Fix bug", False),
        ("skip-checks: true", False),  # a subject line is not a trailer
        ("Fix bug\n\nskip-checks: true\nSigned-off-by: A <a@b>", False),  # skip-checks must be last
        ("Talk about skip ci", False),
    ],
)
def test_skip_requested(message, skip):
    assert skip_requested(message) is skip


def test_a_skip_instruction_stops_push_and_pull_request_but_not_pull_request_target():
    payload = {"ref": BRANCH, "head_commit": {"message": "Docs [skip ci]"}}
    assert not triggered(workflow({"push": {}}), "push", payload)
    assert triggered(workflow({"push": {}}), "push", payload, head_commit_message="Docs")
    assert not triggered(
        workflow({"pull_request": {}}), "pull_request", pull_request("opened"), head_commit_message="[no ci]"
    )
    assert triggered(
        workflow({"pull_request_target": {}}),
        "pull_request_target",
        pull_request("opened"),
        head_commit_message="[no ci]",
    )
