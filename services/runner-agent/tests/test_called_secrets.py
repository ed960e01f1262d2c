"""The secrets a job of a called reusable workflow sees: only those each caller passed, and GITHUB_TOKEN."""

from __future__ import annotations

from typing import Any

import pytest
from conveyor_events import CallFrame
from conveyor_runner_agent.domain import passed_secrets
from conveyor_workflow import ExpressionError

SECRETS = {"GITHUB_TOKEN": "gh", "DEPLOY": "d3ploy", "OTHER": "0ther"}


def call(**fields: Any) -> CallFrame:
    return CallFrame(job_id="ci.call", job_key="call", workflow=".github/workflows/x.yml", name="call", **fields)


@pytest.mark.parametrize(
    ("calls", "seen"),
    [
        ([], SECRETS),
        ([call()], {"GITHUB_TOKEN": "gh"}),
        ([call(inherit_secrets=True)], SECRETS),
        ([call(secrets={"token": "${{ secrets.DEPLOY }}"})], {"GITHUB_TOKEN": "gh", "token": "d3ploy"}),
        ([call(secrets={"key": "${{ secrets.DEPLOY }}-${{ matrix.env }}"}, matrix={"env": "prod"})],
         {"GITHUB_TOKEN": "gh", "key": "d3ploy-prod"}),
        ([call(secrets={"missing": "${{ secrets.NOPE }}"})], {"GITHUB_TOKEN": "gh", "missing": ""}),
        ([call(secrets={"token": "${{ secrets.DEPLOY }}"}), call(secrets={"inner": "${{ secrets.token }}"})],
         {"GITHUB_TOKEN": "gh", "inner": "d3ploy"}),
        ([call(secrets={"token": "${{ secrets.DEPLOY }}"}), call(secrets={"other": "${{ secrets.OTHER }}"})],
         {"GITHUB_TOKEN": "gh", "other": ""}),
        ([call(inherit_secrets=True), call(secrets={"inner": "${{ secrets.OTHER }}"})],
         {"GITHUB_TOKEN": "gh", "inner": "0ther"}),
    ],
    ids=["not-called", "none-passed", "inherit", "named", "with-matrix", "unknown-is-empty", "nested",
         "nested-sees-only-what-the-outer-passed", "inherit-then-named"],
)
def test_a_called_job_sees_only_the_secrets_passed_down(calls: list[CallFrame], seen: dict[str, str]) -> None:
    assert passed_secrets(calls, SECRETS, {"github": {}, "vars": {}}) == seen


def test_a_secret_that_cannot_be_evaluated_is_an_error() -> None:
    with pytest.raises(ExpressionError):
        passed_secrets([call(secrets={"token": "${{ steps.x.outputs.y }}"})], SECRETS, {"github": {}, "vars": {}})


def test_a_callers_secrets_read_its_needs_and_inputs() -> None:
    calls = [
        call(secrets={"token": "${{ needs.setup.outputs.key }}"}),
        call(secrets={"inner": "${{ secrets.token }}/${{ inputs.suffix }}"}),
    ]
    callers: list[dict[str, Any]] = [
        {"needs": {"setup": {"result": "success", "outputs": {"key": "k3y"}}}, "inputs": {}},
        {"needs": {}, "inputs": {"suffix": "s"}},
    ]

    assert passed_secrets(calls, SECRETS, {"github": {}, "vars": {}}, callers) == {
        "GITHUB_TOKEN": "gh", "inner": "k3y/s"
    }
