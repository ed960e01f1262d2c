"""How a job's steps are named: GITHUB_ACTION (`github.action`) as GitHub names each step."""

from __future__ import annotations

from conveyor_runner_agent.domain import action_names
from conveyor_workflow import Step


def test_steps_are_named_by_id_else_by_what_they_run_numbered_when_repeated() -> None:
    steps = [
        Step(run="make"),
        Step(uses="actions/checkout@v4"),
        Step(id="build", run="make build"),
        Step(run="make test"),
        Step(uses="actions/checkout@v4"),
        Step(uses="./.github/actions/setup"),
        Step(run="make lint"),
    ]
    assert action_names(steps) == [
        "__run",
        "__actions_checkout",
        "build",
        "__run_2",
        "__actions_checkout_2",
        "__github_actions_setup",
        "__run_3",
    ]
