"""The REST API over a running embedded system: register, dispatch, follow a run, read its logs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Until

pytestmark = pytest.mark.e2e

WORKFLOW = """
name: API
run-name: "API on ${{ github.ref_name }} #${{ github.run_number }}"
on: [push, workflow_dispatch]
jobs:
  hello:
    runs-on: ubuntu-latest
    steps:
      - id: greet
        run: |
          echo "hello from ${{ github.ref_name }}"
          echo "who=api" >> "$GITHUB_OUTPUT"
      - run: echo "second step says ${{ steps.greet.outputs.who }} in run ${{ github.run_number }}/$GITHUB_RUN_NUMBER"
"""


async def register(client: httpx.AsyncClient, root: Path) -> None:
    """Register the repository at `root` as `demo`, its default branch `trunk`."""
    registered = await client.post(
        "/api/repositories", json={"name": "demo", "url": str(root), "default_branch": "trunk"}
    )
    assert registered.status_code == 201, registered.text


async def test_dispatch_a_registered_repository_and_follow_the_run(
    client: httpx.AsyncClient, repository: Callable[..., Path], until: Until
) -> None:
    await register(client, repository({".github/workflows/api.yml": WORKFLOW}, branch="trunk"))

    dispatched = await client.post("/api/runs", json={"repository": "demo"})
    assert dispatched.status_code == 202, dispatched.text
    run_id = dispatched.json()["id"]

    run = await until(client, run_id, lambda run: run["status"] == "completed")
    assert run["conclusion"] == "success"
    assert run["ref"] == "refs/heads/trunk"
    assert run["workflows"] == [
        {"path": ".github/workflows/api.yml", "name": "API", "number": 1, "title": "API on trunk #1"}
    ]
    [job] = run["jobs"]
    assert (job["id"], job["key"], job["conclusion"]) == ("api.hello", "hello", "success")
    assert [(step["number"], step["conclusion"]) for step in job["steps"]] == [(1, "success"), (2, "success")]
    assert job["steps"][0]["outputs"] == {"who": "api"}

    logs = await client.get(f"/api/runs/{run_id}/jobs/hello/logs")
    assert logs.status_code == 200
    assert [(line["step"], line["text"]) for line in logs.json()["lines"]] == [
        (1, "hello from trunk"),
        (2, "second step says api in run 1/1"),
    ]
    by_id = await client.get(f"/api/runs/{run_id}/jobs/api.hello/logs", params={"after": 1})
    assert (by_id.json()["job"], [line["text"] for line in by_id.json()["lines"]]) == (
        "api.hello",
        ["second step says api in run 1/1"],
    )
    unknown = await client.get(f"/api/runs/{run_id}/jobs/nope/logs")
    assert (unknown.status_code, unknown.json()["detail"]) == (404, f"no job 'nope' in run '{run_id}'")
    listed = await client.get("/api/runs")
    assert [item["id"] for item in listed.json()] == [run_id]


async def test_each_run_of_a_workflow_takes_the_next_number(
    client: httpx.AsyncClient, repository: Callable[..., Path], until: Until
) -> None:
    await register(client, repository({".github/workflows/api.yml": WORKFLOW}, branch="trunk"))

    numbers: list[list[tuple[int, str]]] = []
    lines: list[str] = []
    for _ in range(2):
        dispatched = await client.post("/api/runs", json={"repository": "demo"})
        run_id = dispatched.json()["id"]
        run = await until(client, run_id, lambda run: run["status"] == "completed")
        numbers.append([(workflow["number"], workflow["title"]) for workflow in run["workflows"]])
        logs = await client.get(f"/api/runs/{run_id}/jobs/hello/logs", params={"after": 1})
        lines.extend(line["text"] for line in logs.json()["lines"])

    assert numbers == [[(1, "API on trunk #1")], [(2, "API on trunk #2")]]  # run-name reads the number
    assert lines == ["second step says api in run 1/1", "second step says api in run 2/2"]


async def test_unknown_ids_are_404_with_a_json_body(client: httpx.AsyncClient) -> None:
    for path in ("/api/runs/nope", "/api/runs/nope/jobs/build/logs"):
        response = await client.get(path)
        assert response.status_code == 404
        assert "nope" in response.json()["detail"]
    response = await client.post("/api/runs", json={"repository": "unregistered"})
    assert response.status_code == 404
    assert response.json() == {"detail": "no repository registered as 'unregistered'"}


async def test_bad_requests_say_what_is_wrong(client: httpx.AsyncClient, repository: Callable[..., Path]) -> None:
    root = repository({".github/workflows/api.yml": WORKFLOW})
    await client.post("/api/repositories", json={"name": "demo", "url": str(root)})

    unknown_ref = await client.post("/api/runs", json={"repository": "demo", "ref": "no-such-branch"})
    assert unknown_ref.status_code == 422
    assert "no-such-branch" in unknown_ref.json()["detail"]

    not_a_repository = await client.post("/api/repositories", json={"name": "x", "url": "/nonexistent"})
    assert not_a_repository.status_code == 422

    missing_field = await client.post("/api/runs", json={})
    assert missing_field.status_code == 422
    assert missing_field.json()["detail"][0]["loc"] == ["body", "repository"]


async def test_the_openapi_document_lists_every_endpoint(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert {"/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/jobs/{job}/logs", "/api/repositories"} <= set(
        document["paths"]
    )
