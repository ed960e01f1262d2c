"""Job and service containers against a real Podman API socket, set up by scripts/containers.sh."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeAlias, TypeVar, cast

import docker
import pytest
from conveyor_runner_agent.adapters.containers import (
    ContainerError,
    JobContainers,
    default_socket,
    parse_container,
)

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "containers.sh"
IMAGE = "conveyor/debian:bookworm"
PYTHON_IMAGE = "conveyor/debian-python:bookworm"
GREETER = """
import socket
server = socket.create_server(("", 5000))
while True:
    connection, _ = server.accept()
    connection.sendall(b"hello from the service\\n")
    connection.close()
"""
GREETER_SERVICE = {
    "image": PYTHON_IMAGE,
    "command": ["python3", "-c", GREETER],
    "options": "--health-cmd \"bash -c 'echo > /dev/tcp/127.0.0.1/5000'\" --health-interval 200ms --health-retries 50",
}
SLEEPER = {"image": IMAGE, "command": "sleep infinity"}
Engine: TypeAlias = docker.DockerClient
Folders: TypeAlias = tuple[Path, Path]
Test = TypeVar("Test", bound=Callable[..., Any])


def integration(test: Test) -> Test:
    # On a fresh machine the session fixture installs Podman and builds the images (2-3 minutes) in the
    # setup of whichever test runs first, and pytest-timeout counts setup time.
    return cast(Test, pytest.mark.integration(pytest.mark.timeout(600)(test)))


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """Podman's API socket with the local images; the tests fail (never skip) when it cannot be set up."""
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        pytest.fail(f"scripts/containers.sh failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    client = docker.DockerClient(base_url=default_socket(), version="auto")
    yield client
    client.close()


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    workspace, temp = tmp_path / "workspace", tmp_path / "temp"
    workspace.mkdir()
    temp.mkdir()
    return workspace, temp


def leftovers(client: Engine, job: JobContainers) -> list[str]:
    containers = client.containers.list(all=True, filters={"label": f"conveyor.containers={job.name}"})
    networks = client.networks.list(names=[job.name])
    return [str(container.name) for container in containers] + [str(network.name) for network in networks]


async def run(job: JobContainers, script: str, **env: str) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = await job.exec(["bash", "-c", script], env, Path("/"), lines.append)
    return code, lines


@integration
async def test_a_command_in_the_job_container_gives_back_its_output_and_code(engine: Engine, folders: Folders) -> None:
    job = JobContainers("job-output", IMAGE)
    try:
        await job.start(*folders)
        code, lines = await run(job, "echo out; echo err >&2; printf 'bad \\xff byte\\nno newline'; exit 3")
    finally:
        await job.stop()
    assert code == 3
    assert [line for line in lines if line != "err"] == ["out", "bad \ufffd byte", "no newline"]
    assert "err" in lines
    assert leftovers(engine, job) == []


@integration
async def test_env_cwd_and_options_are_honoured(engine: Engine, folders: Folders) -> None:
    workspace, temp = folders
    (workspace / "sub").mkdir()
    spec = {"image": IMAGE, "env": {"FROM_SPEC": "spec"}, "options": "-e FROM_OPTION=option --hostname builder"}
    job = JobContainers("job-env", spec)
    try:
        await job.start(workspace, temp)
        lines: list[str] = []
        code = await job.exec(["bash", "-c", 'echo "$GREETING $FROM_SPEC $FROM_OPTION $(hostname) $PWD"'],
                              {"GREETING": "hello"}, workspace / "sub", lines.append)
    finally:
        await job.stop()
    assert (code, lines) == (0, [f"hello spec option builder {workspace / 'sub'}"])


@integration
async def test_files_written_in_the_workspace_and_temp_are_seen_on_the_host(engine: Engine, folders: Folders) -> None:
    workspace, temp = folders
    job = JobContainers("job-files", IMAGE)
    try:
        await job.start(workspace, temp)
        code, _ = await run(job, f"echo built > {workspace}/artifact.txt && echo answer=42 >> {temp}/output")
    finally:
        await job.stop()
    assert code == 0
    assert (workspace / "artifact.txt").read_text() == "built\n"
    assert (temp / "output").read_text() == "answer=42\n"


@integration
async def test_a_service_is_reached_by_its_key_as_host_name(engine: Engine, folders: Folders) -> None:
    job = JobContainers("job-service", IMAGE, {"greeter": GREETER_SERVICE})
    try:
        await job.start(*folders)
        code, lines = await run(job, "exec 3<>/dev/tcp/greeter/5000 && cat <&3")
        assert job.services["greeter"].network == job.name
    finally:
        await job.stop()
        await job.stop()
    assert (code, lines) == (0, ["hello from the service"])
    assert leftovers(engine, job) == []


@integration
async def test_an_unhealthy_service_fails_the_start_naming_it(engine: Engine, folders: Folders) -> None:
    failing = {**SLEEPER, "options": "--health-cmd false --health-interval 100ms --health-retries 2"}
    job = JobContainers("job-unhealthy", {"image": IMAGE}, {"db": failing})
    try:
        with pytest.raises(ContainerError, match=r"service 'db' \(conveyor/debian:bookworm\) is unhealthy"):
            await job.start(*folders)
    finally:
        await job.stop()
    assert leftovers(engine, job) == []


@integration
async def test_stop_after_a_cancelled_start_leaves_nothing(engine: Engine, folders: Folders) -> None:
    never_healthy = {**SLEEPER, "options": "--health-cmd false --health-interval 1s --health-retries 1000"}
    job = JobContainers("job-cancelled", IMAGE, {"slow": never_healthy, "greeter": GREETER_SERVICE})
    starting = asyncio.create_task(job.start(*folders))
    try:
        await asyncio.sleep(2)
        assert leftovers(engine, job) != []
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
    finally:
        await job.stop()
    assert leftovers(engine, job) == []


@integration
async def test_stop_after_a_cancelled_exec_leaves_nothing(engine: Engine, folders: Folders) -> None:
    job = JobContainers("job-cancelled-exec", IMAGE)
    lines: list[str] = []
    try:
        await job.start(*folders)
        running = asyncio.create_task(job.exec(["bash", "-c", "echo started; sleep 60"], {}, Path("/"), lines.append))
        while not lines:
            await asyncio.sleep(0.05)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    finally:
        await job.stop()
    assert lines == ["started"]
    assert leftovers(engine, job) == []


@integration
async def test_a_missing_image_is_a_container_error_naming_it(engine: Engine, folders: Folders) -> None:
    job = JobContainers("job-missing", "localhost/conveyor/no-such-image:never")
    try:
        with pytest.raises(ContainerError, match=r"image 'localhost/conveyor/no-such-image:never'"):
            await job.start(*folders)
    finally:
        await job.stop()
    assert leftovers(engine, job) == []


def test_options_become_create_arguments_and_a_health_check() -> None:
    ports = ["5432:5432", "6379", "127.0.0.1:8080:80/udp"]
    config = parse_container({"image": "postgres:16", "ports": ports, "options": (
        "--cpus 1.5 --memory=512m -h db -u 1000 -e A=1 --health-cmd 'pg_isready -U x' --health-interval 1m30s"
        " --health-retries 5 --privileged")}, what="service 'db'")
    assert config.create == {"nano_cpus": 1_500_000_000, "mem_limit": "512m", "hostname": "db", "user": "1000",
                             "privileged": True}
    assert config.env == {"A": "1"}
    assert config.ports == {"5432/tcp": 5432, "6379/tcp": None, "80/udp": ("127.0.0.1", 8080)}
    assert config.health == {"argv": ["/bin/sh", "-c", "pg_isready -U x"], "interval": 90.0, "retries": 5}


def test_more_docker_create_options_are_understood() -> None:
    config = parse_container({"image": "debian", "options": (
        "--security-opt seccomp=unconfined --ulimit nofile=1024:2048 --ipc host --pids-limit 100"
        " --sysctl net.ipv4.ip_forward=1")}, what="container")
    ulimits = config.create.pop("ulimits")
    assert [(limit.name, limit.soft, limit.hard) for limit in ulimits] == [("nofile", 1024, 2048)]
    assert config.create == {"security_opt": ["seccomp=unconfined"], "ipc_mode": "host", "pids_limit": 100,
                             "sysctls": {"net.ipv4.ip_forward": "1"}}


@pytest.mark.parametrize(("options", "reason"), [
    ("--network host", "unsupported option '--network'"),
    ("--cpus", "'--cpus' needs a value"),
    ("--health-interval soon", "'soon' is not a duration"),
    ("--privileged=yes", "'--privileged' takes no value"),
])
def test_bad_options_are_container_errors_naming_the_image(options: str, reason: str) -> None:
    with pytest.raises(ContainerError, match=rf"service 'db' \(redis:7\): options: {reason}"):
        parse_container({"image": "redis:7", "options": options}, what="service 'db'")


def test_a_spec_without_an_image_is_refused() -> None:
    with pytest.raises(ContainerError, match="container: 'image' is required"):
        JobContainers("job", {"env": {"A": "1"}}, socket="unix:///nowhere.sock")


async def test_an_unreachable_engine_is_a_container_error_naming_the_socket(folders: Folders) -> None:
    job = JobContainers("job", IMAGE, socket="unix:///nowhere/engine.sock")
    try:
        with pytest.raises(ContainerError, match=r"cannot reach the container engine at unix:///nowhere/engine\.sock"):
            await job.start(*folders)
    finally:
        await job.stop()
