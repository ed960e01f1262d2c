"""An approval gate on an environment, and re-running a failed run, through the API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from conveyor_runtime import RuntimeSettings

if TYPE_CHECKING:
    from tests.e2e.conftest import Until

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(tmp_path: Path) -> RuntimeSettings:
    return RuntimeSettings(data_dir=tmp_path / "data", environments={"production": {"reviewers": ["alice", "bob"]}})


async def dispatch(client: httpx.AsyncClient, root: Path) -> str:
    assert (await client.post("/api/repositories", json={"name": "r", "url": str(root)})).status_code == 201
    response = await client.post("/api/runs", json={"repository": "r"})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["id"]
    return run_id


async def test_a_deployment_waits_for_a_reviewer(
    client: httpx.AsyncClient, repository: Callable[..., Path], until: Until
) -> None:
    workflow = """
on: push
jobs:
  build:
    runs-on: x
    steps: [{run: echo built}]
  deploy:
    needs: build
    environment: production
    runs-on: x
    steps: [{run: echo deployed}]
"""
    run_id = await dispatch(client, repository({".github/workflows/ci.yml": workflow}))

    run = await until(client, run_id, lambda run: any(job["status"] == "waiting" for job in run["jobs"]))
    deploy = next(job for job in run["jobs"] if job["key"] == "deploy")
    assert deploy["reason"] == "waiting for alice, bob to approve the environment production"
    [queued] = (await client.get("/api/queue")).json()
    assert (queued["job"], queued["status"]) == ("ci.deploy", "waiting")
    assert queued["waiting_seconds"] >= 0
    early = await client.post(f"/api/runs/{run_id}/jobs/build/approve", json={"approver": "alice"})
    assert early.status_code == 409

    approved = await client.post(f"/api/runs/{run_id}/jobs/deploy/approve", json={"approver": "bob"})
    assert approved.status_code == 202

    run = await until(client, run_id, lambda run: run["status"] == "completed")
    assert run["conclusion"] == "success"
    logs = (await client.get(f"/api/runs/{run_id}/jobs/deploy/logs")).json()["lines"]
    assert [line["text"] for line in logs] == ["deployed"]


async def test_a_rejected_deployment_fails_the_run(
    client: httpx.AsyncClient, repository: Callable[..., Path], until: Until
) -> None:
    workflow = "on: push\njobs:\n  deploy:\n    environment: production\n    runs-on: x\n    steps: [{run: 'true'}]\n"
    run_id = await dispatch(client, repository({".github/workflows/ci.yml": workflow}))
    await until(client, run_id, lambda run: run["jobs"] and run["jobs"][0]["status"] == "waiting")

    rejected = await client.post(f"/api/runs/{run_id}/jobs/deploy/reject", json={"approver": "alice", "comment": "no"})
    assert rejected.status_code == 202

    run = await until(client, run_id, lambda run: run["status"] == "completed")
    assert run["conclusion"] == "failure"
    assert run["jobs"][0]["error"] == "rejected by alice: no"


async def test_rerunning_the_failed_jobs(
    client: httpx.AsyncClient, repository: Callable[..., Path], tmp_path: Path, until: Until
) -> None:
    marker = tmp_path / "ran-once"
    workflow = f"""
on: push
jobs:
  steady:
    runs-on: x
    steps: [{{run: 'echo "steady ${{{{ github.run_attempt }}}}/$GITHUB_RUN_ATTEMPT"'}}]
  flaky:
    runs-on: x
    steps:
      - run: |
          attempt="${{{{ github.run_attempt }}}}/$GITHUB_RUN_ATTEMPT"
          if [ -e {marker} ]; then echo "passes on the re-run $attempt"; exit 0; fi
          touch {marker}; exit 1
"""
    run_id = await dispatch(client, repository({".github/workflows/ci.yml": workflow}))
    run = await until(client, run_id, lambda run: run["status"] == "completed")
    assert run["conclusion"] == "failure"
    refused = await client.post(f"/api/runs/{run_id}/rerun", json={"mode": "sometimes"})
    assert refused.status_code == 422

    assert (await client.post(f"/api/runs/{run_id}/rerun", json={"mode": "failed"})).status_code == 202

    run = await until(client, run_id, lambda run: run["status"] == "completed" and run["conclusion"] == "success")
    jobs = {job["key"]: job for job in run["jobs"]}
    assert (jobs["flaky"]["attempt"], jobs["flaky"]["conclusion"]) == (2, "success")
    assert jobs["steady"]["attempt"] == 1

    # every job again: the run's third attempt, a job's second or third
    assert (await client.post(f"/api/runs/{run_id}/rerun", json={"mode": "all"})).status_code == 202
    run = await until(client, run_id, lambda run: run["status"] == "completed" and run["jobs"][0]["attempt"] == 2)
    lines = {}
    for key, attempt in (("steady", None), ("flaky", None), ("flaky", 2), ("flaky", 1)):
        logs = await client.get(f"/api/runs/{run_id}/jobs/{key}/logs", params={"attempt": attempt} if attempt else {})
        lines[key, logs.json()["attempt"]] = [line["text"] for line in logs.json()["lines"]]
    # each attempt's own lines (numbered from 1 in each), the latest attempt's unless another is asked for
    assert lines == {
        ("steady", 2): ["steady 3/3"],
        ("flaky", 3): ["passes on the re-run 3/3"],
        ("flaky", 2): ["passes on the re-run 2/2"],
        ("flaky", 1): ["##[error]Process completed with exit code 1."],
    }
