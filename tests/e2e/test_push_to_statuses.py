"""The whole loop: a signed `push` delivery for a registered repository becomes a run, and each of its jobs
shows on the commit in GitHub (a fake GitHub API that records calls), with the repository's own token."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor_runtime import RuntimeSettings

from tests.conftest import git
from tests.e2e.test_webhooks import TOKEN, deliver, push, register, serving

if TYPE_CHECKING:
    from tests.e2e.conftest import Until
    from tests.fakes.github_api import FakeGitHub

PUBLIC = "http://conveyor.example:8080"
WORKFLOW = """
name: CI
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo built
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: exit 3
"""


async def test_a_push_delivery_runs_and_its_jobs_show_on_the_commit(
    repository: Callable[..., Path], fake_github: FakeGitHub, tmp_path: Path, until: Until
) -> None:
    root = repository({".github/workflows/ci.yml": WORKFLOW})
    sha = git(root, "rev-parse", "HEAD")
    # No default token: the statuses can only be sent with the token registered with the repository.
    settings = RuntimeSettings(data_dir=tmp_path / "data", github_api_url=fake_github.url, public_url=PUBLIC)
    contexts = ["Conveyor / CI / build", "Conveyor / CI / test"]

    async with serving(settings) as (_, http):
        await register(http, root)
        accepted = await deliver(http, "push", push(sha), "delivery-loop-1")
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["id"]
        run = await until(http, run_id, lambda run: run["status"] == "completed")

        def settled(github: FakeGitHub) -> bool:
            final = {call.body["context"]: call.body["state"] for call in github.statuses()}
            return all(final.get(context, "pending") != "pending" for context in contexts)

        await fake_github.wait_for(settled)

    assert run["conclusion"] == "failure"
    shown: dict[str, list[str]] = {}
    for call in fake_github.statuses():
        assert (call.method, call.path) == ("POST", f"/repos/octo/demo/statuses/{sha}")
        assert call.headers["authorization"] == f"Bearer {TOKEN}"
        assert call.body["target_url"] == f"{PUBLIC}/api/runs/{run_id}"
        shown.setdefault(call.body["context"], []).append(call.body["state"])
    assert set(shown) == set(contexts)
    assert shown["Conveyor / CI / build"][0] == "pending"
    assert shown["Conveyor / CI / build"][-1] == "success"
    assert shown["Conveyor / CI / test"][0] == "pending"
    assert shown["Conveyor / CI / test"][-1] == "failure"
