"""Jobs in containers end to end: a job container with a service container reached by its key, and -P."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import pytest
from conveyor_cli.main import app
from conveyor_runner_agent.adapters.containers import default_socket
from typer.testing import CliRunner

from tests.e2e.test_actions import tagged_repository

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

WORKFLOW = """
on: push
jobs:
  in-container:
    runs-on: ubuntu-latest
    container:
      image: conveyor/debian:bookworm
      env:
        FROM_CONTAINER_SPEC: spec-value
    services:
      greeter:
        image: conveyor-test/greeter:latest
    steps:
      - uses: actions/checkout@v4
      - name: Where am I
        run: |
          cat /etc/debian_version > /dev/null && echo "in a Debian container"
          echo "spec env: $FROM_CONTAINER_SPEC, workspace file: $(cat marker.txt)"
          echo "host variable: '${CONVEYOR_HOST_ONLY:-}'"
      - name: A step that names no shell runs sh, as on GitHub, for an image may have no bash
        run: 'echo "shell: $([ -n "${BASH_VERSION:-}" ] && echo bash || echo sh)"'
      - name: The job context knows the containers
        run: |
          echo "container set: ${{ job.container.id != '' && job.container.network != '' }}"
          echo "service set: ${{ job.services.greeter.id != '' }}"
          echo "same network: ${{ job.services.greeter.network == job.container.network }}"
      - name: Reach the service by its key
        shell: bash
        run: |
          for attempt in $(seq 1 50); do
            if exec 3<>/dev/tcp/greeter/5000; then cat <&3; exit 0; fi
            sleep 0.2
          done
          exit 1
      - name: A container action joins the job's network
        uses: docker://conveyor/debian:bookworm
        with:
          entrypoint: sh
          args: -c "getent hosts greeter > /dev/null && echo the docker action sees the service"
      - id: out
        run: echo "from=container" >> "$GITHUB_OUTPUT"
      - run: echo "output ${{ steps.out.outputs.from }}"
"""


GREETER_SERVER = (
    "import socket\n"
    "server = socket.create_server(('', 5000))\n"
    "while True:\n"
    "    connection, _ = server.accept()\n"
    "    connection.sendall(b'hello from the service\\n')\n"
    "    connection.close()\n"
)
GREETER = f"FROM conveyor/debian-python:bookworm\nCMD {json.dumps(['python3', '-c', GREETER_SERVER])}\n"


@pytest.fixture(scope="module")
def greeter(container_engine: str) -> str:
    """A service image whose default command serves a greeting on port 5000, built from the local base."""
    client = docker.DockerClient(base_url=default_socket())
    try:
        client.images.build(fileobj=io.BytesIO(GREETER.encode()), tag="conveyor-test/greeter:latest", rm=True)
    finally:
        client.close()
    return "conveyor-test/greeter:latest"


def test_a_job_container_with_a_service(
    greeter: str, repository: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_HOST_ONLY", "must-not-leak")
    root = repository({".github/workflows/ci.yml": WORKFLOW, "marker.txt": "checked-out\n"})
    result = CliRunner().invoke(app, ["run", "-C", str(root)])
    output = result.output

    assert result.exit_code == 0, output
    assert "in a Debian container" in output
    assert "spec env: spec-value, workspace file: checked-out" in output
    assert "host variable: ''" in output
    assert "hello from the service" in output
    assert "output container" in output
    assert "shell: sh" in output
    assert "container set: true" in output
    assert "service set: true" in output
    assert "same network: true" in output
    assert "the docker action sees the service" in output
    client = docker.DockerClient(base_url=default_socket())
    try:
        names = [container.name or "" for container in client.containers.list(all=True)]
        leftovers = [name for name in names if name.startswith("conveyor-ci.in-container")]
    finally:
        client.close()
    assert leftovers == []


HOST_JOB_WITH_A_SERVICE = """
on: push
jobs:
  on-host:
    runs-on: ubuntu-latest
    services:
      greeter:
        image: conveyor-test/greeter:latest
        ports: [5000]
    steps:
      - name: Reach the service through its published port
        env:
          PORT: ${{ job.services.greeter.ports['5000'] }}
        run: |
          test -n "$PORT"
          for attempt in $(seq 1 50); do
            if exec 3<>"/dev/tcp/127.0.0.1/$PORT"; then cat <&3; exit 0; fi
            sleep 0.2
          done
          exit 1
"""


def test_a_job_on_the_host_reaches_its_service_on_a_published_port(
    greeter: str, repository: Callable[..., Path]
) -> None:
    root = repository({".github/workflows/ci.yml": HOST_JOB_WITH_A_SERVICE})
    result = CliRunner().invoke(app, ["run", "-C", str(root)])

    assert result.exit_code == 0, result.output
    assert "hello from the service" in result.output


TOOL_IMAGE = (
    "FROM conveyor/debian:bookworm\n"
    "RUN mkdir -p /opt/tools/bin && printf '#!/bin/sh\\necho tool on the image path\\n' > /opt/tools/bin/the-tool"
    " && chmod +x /opt/tools/bin/the-tool\n"
    "ENV PATH=/opt/tools/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
)


@pytest.fixture
def tool_image(container_engine: str) -> str:
    """An image whose PATH begins with a folder of its own, holding `the-tool`."""
    client = docker.DockerClient(base_url=default_socket())
    try:
        client.images.build(fileobj=io.BytesIO(TOOL_IMAGE.encode()), tag="conveyor-test/tool:latest", rm=True)
    finally:
        client.close()
    return "conveyor-test/tool:latest"


def test_a_job_container_keeps_its_images_path(tool_image: str, repository: Callable[..., Path]) -> None:
    workflow = (
        "on: push\njobs:\n  tool:\n    runs-on: x\n    container: conveyor-test/tool:latest\n    steps:\n"
        "      - run: echo /opt/more >> \"$GITHUB_PATH\"\n"
        "      - run: 'the-tool && echo \"path starts $(echo \"$PATH\" | cut -d : -f1-2)\"'\n"
    )
    root = repository({".github/workflows/ci.yml": workflow})
    result = CliRunner().invoke(app, ["run", "-C", str(root)])

    assert result.exit_code == 0, result.output
    assert "tool on the image path" in result.output
    assert "path starts /opt/more:/opt/tools/bin" in result.output


DOCKER_ACTION_PATHS = """
on: push
jobs:
  host:
    runs-on: x
    steps:
      - run: echo "$GITHUB_WORKSPACE" > where
      - uses: docker://conveyor-test/tool:latest
        with:
          entrypoint: sh
          args: -c 'the-tool && echo "in $(pwd) workspace $GITHUB_WORKSPACE home $HOME file $(cat where)"
            && grep -q refs/heads "$GITHUB_EVENT_PATH" && echo "home file" > "$HOME/kept" && ls "$(cat where)"/where'
  container:
    runs-on: x
    container: conveyor-test/tool:latest
    steps:
      - run: echo "job container home $HOME" && echo "from the job" > "$HOME/note"
      - uses: docker://conveyor-test/tool:latest
        with:
          entrypoint: sh
          args: -c 'echo "action reads $(cat "$HOME/note")"'
"""


def test_a_docker_actions_container_is_laid_out_as_on_github(tool_image: str, repository: Callable[..., Path]) -> None:
    root = repository({".github/workflows/ci.yml": DOCKER_ACTION_PATHS})
    result = CliRunner().invoke(app, ["run", "-C", str(root)])
    output = result.output

    assert result.exit_code == 0, output
    assert "tool on the image path" in output  # the action image's own PATH, in a job on the host
    # the workspace at GitHub's path, and at the host's, which an expression or a file may hold
    assert "in /github/workspace workspace /github/workspace home /github/home file /" in output
    assert "job container home /github/home" in output
    assert "action reads from the job" in output  # one home folder for the job's container and its actions


PROBE = """
name: Probe
inputs:
  who:
    description: who is asking
runs:
  using: node20
  main: main.js
  post: post.js
"""
PROBE_MAIN = """
const fs = require('fs');
const tool = fs.existsSync('/opt/tools/bin/the-tool');
console.log(`probe ${process.env.INPUT_WHO} sees the image's tool: ${tool}, home ${process.env.HOME}`);
fs.appendFileSync(process.env.GITHUB_OUTPUT, `seen=${tool}\\n`);
"""
PROBE_POST = "console.log(`post sees the image's tool: ${require('fs').existsSync('/opt/tools/bin/the-tool')}`);\n"
JAVASCRIPT_IN_A_CONTAINER = """
on: push
jobs:
  js:
    runs-on: x
    container: conveyor-test/tool:latest
    steps:
      - uses: actions/checkout@v4
      - id: remote
        uses: acme/probe@v1
        with:
          who: remote
      - uses: ./local-probe
        with:
          who: local
      - run: echo "output ${{ steps.remote.outputs.seen }}"
"""


def test_javascript_actions_run_in_the_job_container(
    tool_image: str, repository: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tagged_repository(
        tmp_path / "remote" / "acme" / "probe", {"action.yml": PROBE, "main.js": PROBE_MAIN, "post.js": PROBE_POST}
    )
    monkeypatch.setenv("CONVEYOR_ACTIONS_BASE_URL", str(tmp_path / "remote"))
    root = repository(
        {
            ".github/workflows/ci.yml": JAVASCRIPT_IN_A_CONTAINER,
            "local-probe/action.yml": PROBE.replace("  post: post.js\n", ""),
            "local-probe/main.js": PROBE_MAIN,
        }
    )
    result = CliRunner().invoke(app, ["run", "-C", str(root)])
    output = result.output

    assert result.exit_code == 0, output
    assert "probe remote sees the image's tool: true, home /github/home" in output  # fetched: the cache mounted
    assert "probe local sees the image's tool: true, home /github/home" in output  # in the workspace
    assert "output true" in output
    assert "post sees the image's tool: true" in output


NO_CXX_IMAGE = (
    "FROM conveyor/debian:bookworm\n"
    "RUN rm -f /usr/lib/x86_64-linux-gnu/libstdc++.so.6* /usr/lib/aarch64-linux-gnu/libstdc++.so.6* "
    "&& touch /only-in-the-image\n"
)
NODE_REFUSED = """
on: push
jobs:
  js:
    runs-on: x
    container: conveyor-test/no-cxx:latest
    steps:
      - uses: actions/checkout@v4
      - uses: ./probe
"""
PROBE_IMAGE_FILE = "console.log(`in the image: ${require('fs').existsSync('/only-in-the-image')}`);\n"


def test_javascript_actions_fall_back_to_the_host_when_the_container_cannot_run_node(
    container_engine: str, repository: Callable[..., Path]
) -> None:
    # an image the host's Node.js cannot run in (here without libstdc++; Alpine's musl is the usual case)
    client = docker.DockerClient(base_url=default_socket())
    try:
        client.images.build(fileobj=io.BytesIO(NO_CXX_IMAGE.encode()), tag="conveyor-test/no-cxx:latest", rm=True)
    finally:
        client.close()
    root = repository({
        ".github/workflows/ci.yml": NODE_REFUSED,
        "probe/action.yml": "name: Probe\nruns:\n  using: node20\n  main: main.js\n",
        "probe/main.js": PROBE_IMAGE_FILE,
    })

    result = CliRunner().invoke(app, ["run", "-C", str(root)])

    assert result.exit_code == 0, result.output
    assert "Node.js cannot run in the job container" in result.output
    assert "in the image: false" in result.output


def test_a_runs_on_label_mapped_to_an_image(container_engine: str, repository: Callable[..., Path]) -> None:
    workflow = "on: push\njobs:\n  mapped:\n    runs-on: ubuntu-latest\n    steps:\n      - run: cat /etc/os-release\n"
    root = repository({".github/workflows/ci.yml": workflow})
    result = CliRunner().invoke(app, ["run", "-C", str(root), "-P", f"ubuntu-latest={container_engine}"])

    assert result.exit_code == 0, result.output
    assert 'ID=debian' in result.output


DOCKER_ACTION = """
name: Greet in a container
inputs:
  who:
    description: whom to greet
    default: nobody
outputs:
  greeting:
    description: what it said
runs:
  using: docker
  image: Dockerfile
  args:
    - ${{ inputs.who }}
    - second-arg
  env:
    ACTION_LEVEL: set-by-action
"""
DOCKERFILE = """
FROM conveyor/debian:bookworm
COPY entrypoint.sh /entrypoint.sh
ENTRYPOINT ["bash", "/entrypoint.sh"]
"""
ENTRYPOINT = """
echo "hello $1 and $2 (input $INPUT_WHO, $ACTION_LEVEL) in $(pwd)"
echo "greeting=hi-$1" >> "$GITHUB_OUTPUT"
"""


def test_docker_actions_from_a_dockerfile_and_an_image(container_engine: str, repository: Callable[..., Path]) -> None:
    workflow = """
on: push
jobs:
  docker:
    runs-on: x
    steps:
      - uses: actions/checkout@v4
      - id: greet
        uses: ./greet
        with:
          who: world
      - uses: docker://conveyor/debian:bookworm
        with:
          entrypoint: bash
          args: -c "echo image step sees $INPUT_NONE ${{ steps.greet.outputs.greeting }}"
"""
    root = repository(
        {
            ".github/workflows/ci.yml": workflow,
            "greet/action.yml": DOCKER_ACTION,
            "greet/Dockerfile": DOCKERFILE,
            "greet/entrypoint.sh": ENTRYPOINT,
        }
    )
    result = CliRunner().invoke(app, ["run", "-C", str(root)])
    output = result.output

    assert result.exit_code == 0, output
    assert "hello world and second-arg (input world, set-by-action) in /github/workspace" in output
    assert "image step sees hi-world" in output


def test_a_docker_action_that_times_out_is_killed(container_engine: str, repository: Callable[..., Path]) -> None:
    marker = f"conveyor-timeout-{uuid.uuid4().hex[:8]}"
    workflow = f"""
on: push
jobs:
  slow:
    runs-on: x
    steps:
      - uses: docker://{container_engine}
        timeout-minutes: 0.05
        with:
          entrypoint: bash
          args: -c "echo started {marker}; sleep 300"
      - if: always()
        run: echo after the timeout
"""
    root = repository({".github/workflows/ci.yml": workflow})
    started = time.monotonic()
    result = CliRunner().invoke(app, ["run", "-C", str(root)])
    took = time.monotonic() - started

    assert result.exit_code == 1, result.output
    assert f"started {marker}" in result.output
    assert "after the timeout" in result.output
    assert took < 60, f"the run took {took:.0f} s: the step's container was not stopped at its timeout"
    client = docker.DockerClient(base_url=default_socket())
    try:
        left = [c.name for c in client.containers.list(all=True) if marker in " ".join(c.attrs["Args"] or [])]
    finally:
        client.close()
    assert left == []


TOOL_CACHE = """
on: push
jobs:
  setup:
    runs-on: x
    steps:
      - run: |
          mkdir -p "$RUNNER_TOOL_CACHE/the-tool/1.0.0/x64/bin" && touch "$RUNNER_TOOL_CACHE/the-tool/1.0.0/x64.complete"
          printf '#!/bin/sh\\necho cached tool runs\\n' > "$RUNNER_TOOL_CACHE/the-tool/1.0.0/x64/bin/tool"
          chmod +x "$RUNNER_TOOL_CACHE/the-tool/1.0.0/x64/bin/tool"
  later:
    needs: setup
    runs-on: x
    container: IMAGE
    steps:
      - run: >-
          "${{ runner.tool_cache }}/the-tool/1.0.0/x64/bin/tool"
          && test "$RUNNER_TOOL_CACHE" = "${{ runner.tool_cache }}"
"""


def test_the_tool_cache_is_kept_from_job_to_job_and_seen_in_job_containers(
    container_engine: str, repository: Callable[..., Path]
) -> None:
    root = repository({".github/workflows/ci.yml": TOOL_CACHE.replace("IMAGE", container_engine)})
    result = CliRunner().invoke(app, ["run", "-C", str(root)])

    assert result.exit_code == 0, result.output
    assert "[later] " in result.output
    assert "cached tool runs" in result.output
