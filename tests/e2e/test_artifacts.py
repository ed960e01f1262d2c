"""Artifacts end to end: actions on GitHub's own `@actions/artifact` client upload in one job and download in
another, on the host and in a job container, through the runner's results service."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conveyor_cli.main import app
from typer.testing import CliRunner

from tests.e2e.processes import Processes
from tests.e2e.read_models import stored_run
from tests.e2e.test_remote_agents import serving_agents, wait_for

pytestmark = pytest.mark.e2e

UPLOAD = """
name: Upload an artifact
inputs:
  name: {description: the artifact's name, default: artifact}
  path: {description: the folder whose files it holds, required: true}
outputs:
  artifact-id: {description: its id}
  artifact-digest: {description: the SHA-256 of its zip}
runs:
  using: node20
  main: index.js
"""
DOWNLOAD = """
name: Download artifacts
inputs:
  name: {description: the artifact's name (all of the run's when not given)}
  path: {description: where to put its files}
runs:
  using: node20
  main: index.js
"""
WORKFLOW = """
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: |
          mkdir -p out/deep/er
          echo "built by ${{ github.job }}" > out/hello.txt
          head -c 300000 /dev/urandom > out/deep/er/blob.bin
          (cd out && sha256sum hello.txt deep/er/blob.bin > ../sums)
          mkdir logs && echo "a log" > logs/build.log
      - id: app
        uses: ./.github/actions/upload
        with:
          name: app
          path: out
      - uses: ./.github/actions/upload
        with:
          name: logs
          path: logs
      - run: echo "app is artifact ${{ steps.app.outputs.artifact-id }}; run steps get no token${ACTIONS_RUNTIME_TOKEN}"
      - run: mv sums out/ && echo "sums=$(base64 -w0 out/sums)" >> "$GITHUB_OUTPUT"
        id: sums
    outputs:
      sums: ${{ steps.sums.outputs.sums }}
  on-host:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: ./.github/actions/download
        with:
          name: app
          path: got
      - run: echo "${{ needs.build.outputs.sums }}" | base64 -d > sums && cd got && sha256sum -c ../sums
      - run: cat got/hello.txt
  in-a-container:
    needs: build
    runs-on: ubuntu-latest
    container: IMAGE
    steps:
      - uses: actions/checkout@v4
      - uses: ./.github/actions/download
        with:
          path: all
      - run: ls all && cat all/logs/build.log all/app/hello.txt
  twice:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: mkdir again && echo again > again/file
      - uses: ./.github/actions/upload
        with:
          name: app
          path: again
"""


def test_artifacts_pass_between_jobs_on_the_host_and_in_containers(
    actions_toolkit: Path, container_engine: str, repository: Callable[..., Path], tmp_path: Path
) -> None:
    root = repository(
        {
            ".github/workflows/ci.yml": WORKFLOW.replace("IMAGE", container_engine),
            ".github/actions/upload/action.yml": UPLOAD,
            ".github/actions/upload/index.js": (actions_toolkit / "upload-artifact.js").read_text(),
            ".github/actions/download/action.yml": DOWNLOAD,
            ".github/actions/download/index.js": (actions_toolkit / "download-artifact.js").read_text(),
        }
    )
    data = tmp_path / "data"
    result = CliRunner().invoke(app, ["run", "-C", str(root), "--data-dir", str(data)])
    output = result.output

    assert result.exit_code == 1, output  # `twice` fails: the run holds an artifact named app already
    assert "[build]   | app is artifact 1; run steps get no token\n" in output  # as on GitHub: actions alone do
    assert "[on-host]   | hello.txt: OK" in output
    assert "[on-host]   | deep/er/blob.bin: OK" in output
    assert "[on-host]   | built by build" in output
    assert "[in-a-container]   | a log" in output
    assert "[in-a-container]   | built by build" in output
    assert "http://host.containers.internal:" in output  # the container reached the service through its gateway
    assert "(409) Conflict: an artifact with the name 'app' already exists on the workflow run" in output
    cells = [[cell.strip() for cell in line.split("│")[1:3]] for line in output.splitlines() if line.startswith("│")]
    assert dict(cells) == {
        "build": "✅ success", "on-host": "✅ success", "in-a-container": "✅ success", "twice": "❌ failure"
    }, output
    stored = sorted(path.name for path in (data / "results" / "artifacts" / "contents").iterdir())
    assert stored == ["1", "2"]  # app and logs; the refused upload kept nothing
    run_id = re.findall(r"^run ([0-9a-f-]{36}): ", output, re.M)[0]
    listed = {artifact["name"]: artifact for artifact in stored_run(data, run_id)["artifacts"]}  # as the API shows
    assert sorted(listed) == ["app", "logs"]
    app_zip = data / "results" / "artifacts" / "contents" / "1"
    assert listed["app"]["size"] == app_zip.stat().st_size
    assert listed["app"]["digest"] == f"sha256:{hashlib.sha256(app_zip.read_bytes()).hexdigest()}"


REMOTE_WORKFLOW = """
on: push
jobs:
  build:
    runs-on: self-hosted
    steps:
      - uses: actions/checkout@v4
      - run: mkdir out && echo "from an agent" > out/note.txt
      - uses: ./.github/actions/upload
        with:
          name: note
          path: out
"""


def test_an_agent_on_another_host_reports_the_artifacts_its_jobs_upload(
    actions_toolkit: Path, repository: Callable[..., Path], tmp_path: Path, processes: Processes
) -> None:
    root = repository(
        {
            ".github/workflows/ci.yml": REMOTE_WORKFLOW,
            ".github/actions/upload/action.yml": UPLOAD,
            ".github/actions/upload/index.js": (actions_toolkit / "upload-artifact.js").read_text(),
        }
    )
    base, admin, token = serving_agents(tmp_path / "data", processes)
    processes.start("agent", "agent", "--server", base, "--name", "far", "--work-dir", str(tmp_path / "far"), env=token)
    registered = httpx.post(f"{base}/api/repositories", json={"name": "r", "url": str(root)}, headers=admin)
    assert registered.status_code == 201, registered.text
    run_id = httpx.post(f"{base}/api/runs", json={"repository": "r"}, headers=admin).json()["id"]

    def completed() -> dict[str, Any] | None:
        run: dict[str, Any] = httpx.get(f"{base}/api/runs/{run_id}", headers=admin).json()
        return run if run["status"] == "completed" else None

    run = wait_for(completed, "the run did not complete", timeout=40)
    assert isinstance(run, dict)
    assert run["conclusion"] == "success", run
    [note] = run["artifacts"]
    kept = tmp_path / "far" / "results" / "artifacts" / "contents" / str(note["id"])  # on the agent's host
    assert (note["name"], note["size"]) == ("note", kept.stat().st_size)
    assert note["digest"] == f"sha256:{hashlib.sha256(kept.read_bytes()).hexdigest()}"
