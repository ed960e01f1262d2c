"""A job's containers over the Docker Engine API (Docker, or Podman's compatible socket).

`JobContainers` gives one job a network of its own, its `services:` reachable by their keys as host names,
and a long-lived job container in which each step runs with `exec`. The workspace and temp folders are
bind-mounted at their host paths, so file commands (GITHUB_OUTPUT, GITHUB_ENV, …) work unchanged; `$HOME` is
`/github/home`, a folder of the job's, as on GitHub. JavaScript actions run in the job container too, with the
host's Node.js mounted into it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
from docker.utils import parse_repository_tag

from conveyor_runner_agent.domain.log_lines import LineSplitter

ContainerSpec = str | Mapping[str, Any]
"""A `container:` value, or one entry of `services:`: an image name, or a mapping with `image` and more."""

PODMAN_SOCKET = "unix:///run/podman/podman.sock"
_LABEL = "conveyor.containers"
_KEEP_ALIVE = ["tail", "-f", "/dev/null"]
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


CONTAINER_HOME = "/github/home"
"""`$HOME` in a job container and in a Docker action's container, as on GitHub: one folder of the job's, mounted
into each."""


CONTAINER_HOST = "host.containers.internal"
"""The name a container reaches the host by (Podman gives it to every container; Docker with `host-gateway`)."""


CONTAINER_NODE = "/__e/node/bin/node"
"""Where a job container finds the host's Node.js (GitHub's runner mounts its own under `/__e`)."""


def host_node() -> Path | None:
    """The host's `node` executable, its links followed; None when there is none."""
    found = shutil.which("node")
    return Path(found).resolve() if found else None


def github_home(temp: Path) -> Path:
    """The job's folder mounted as `CONTAINER_HOME`, created when first asked for."""
    home = temp / "_github_home"
    home.mkdir(exist_ok=True)
    return home


class ContainerError(Exception):
    """A job's container or service could not be set up; the message names the image or service and why."""


def default_socket(environ: Mapping[str, str] = os.environ) -> str:
    """`CONVEYOR_CONTAINER_SOCKET`, else Podman's root socket when it exists, else `DOCKER_HOST`, else Docker's."""
    if url := environ.get("CONVEYOR_CONTAINER_SOCKET"):
        return url
    if Path(PODMAN_SOCKET.removeprefix("unix://")).exists():
        return PODMAN_SOCKET
    return environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class HealthCheck:
    """A probe run in a service container until it succeeds (exit 0) or has failed `retries` times."""

    argv: list[str]
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0


@dataclass
class ContainerConfig:
    """A parsed container spec: what `containers.create` needs, plus the health check to wait for."""

    image: str
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int | tuple[str, int] | None] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    credentials: dict[str, str] | None = None
    entrypoint: list[str] | None = None
    command: list[str] | None = None
    create: dict[str, Any] = field(default_factory=dict)
    health: dict[str, Any] = field(default_factory=dict)
    """Health settings from `--health-*` options; `{"argv": None}` after `--no-healthcheck`."""


def parse_container(spec: ContainerSpec, *, what: str) -> ContainerConfig:
    """Read a `container:`/`services.<key>` value; `what` names it in errors (e.g. "service 'db'")."""
    if isinstance(spec, str):
        spec = {"image": spec}
    image = spec.get("image")
    if not isinstance(image, str) or not image.strip():
        raise ContainerError(f"{what}: 'image' is required")
    config = ContainerConfig(image=image.strip(), env={str(k): str(v) for k, v in (spec.get("env") or {}).items()})
    for port in spec.get("ports") or []:
        host, _, inner = str(port).rpartition(":")
        address, _, host_port = host.rpartition(":")
        try:
            config.ports[inner if "/" in inner else f"{inner}/tcp"] = (
                (address, int(host_port)) if address else int(host_port) if host_port else None)
        except ValueError:
            raise ContainerError(f"{what} ({config.image}): port '{port}' is not [[ADDRESS:]HOST:]CONTAINER") from None
    config.volumes = [str(volume) for volume in spec.get("volumes") or []]
    if credentials := spec.get("credentials"):
        config.credentials = {"username": str(credentials.get("username", "")),
                              "password": str(credentials.get("password", ""))}
    for key in ("entrypoint", "command"):
        value = spec.get(key)
        if value is not None:
            setattr(config, key, shlex.split(value) if isinstance(value, str) else [str(v) for v in value])
    try:
        _apply_options(config, shlex.split(str(spec.get("options") or "")))
    except ValueError as error:
        raise ContainerError(f"{what} ({config.image}): options: {error}") from error
    return config


_VALUE_OPTIONS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "--cpus": ("nano_cpus", lambda value: int(float(value) * 1e9)),
    "--memory": ("mem_limit", str), "-m": ("mem_limit", str),
    "--memory-swap": ("memswap_limit", str),
    "--shm-size": ("shm_size", str),
    "--hostname": ("hostname", str), "-h": ("hostname", str),
    "--user": ("user", str), "-u": ("user", str),
    "--workdir": ("working_dir", str), "-w": ("working_dir", str),
    "--ipc": ("ipc_mode", str), "--pid": ("pid_mode", str), "--pids-limit": ("pids_limit", int),
    "--stop-signal": ("stop_signal", str),
}
_LIST_OPTIONS = {
    "--cap-add": "cap_add", "--cap-drop": "cap_drop", "--device": "devices", "--dns": "dns",
    "--security-opt": "security_opt", "--group-add": "group_add",
}
_FLAG_OPTIONS = {"--privileged": "privileged", "--init": "init", "--read-only": "read_only"}
_HEALTH_OPTIONS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "--health-cmd": ("argv", lambda value: ["/bin/sh", "-c", value]),
    "--health-interval": ("interval", lambda value: _duration(value)),
    "--health-timeout": ("timeout", lambda value: _duration(value)),
    "--health-retries": ("retries", int),
    "--health-start-period": ("start_period", lambda value: _duration(value)),
}


def _apply_options(config: ContainerConfig, words: list[str]) -> None:
    items = iter(words)
    for word in items:
        name, has_value, inline = word.partition("=")
        if name in _FLAG_OPTIONS or name == "--no-healthcheck":
            if has_value:
                raise ValueError(f"'{name}' takes no value")
            if name == "--no-healthcheck":
                config.health["argv"] = None
            else:
                config.create[_FLAG_OPTIONS[name]] = True
            continue
        known = name in _VALUE_OPTIONS or name in _LIST_OPTIONS or name in _HEALTH_OPTIONS
        others = ("--env", "-e", "--label", "-l", "--entrypoint", "--tmpfs", "--add-host", "--ulimit", "--sysctl")
        if not known and name not in others:
            raise ValueError(f"unsupported option '{name}'")
        value = inline if has_value else next(items, None)
        if value is None:
            raise ValueError(f"'{name}' needs a value")
        if name in _VALUE_OPTIONS:
            key, convert = _VALUE_OPTIONS[name]
            config.create[key] = convert(value)
        elif name in _HEALTH_OPTIONS:
            key, convert = _HEALTH_OPTIONS[name]
            config.health[key] = convert(value)
        elif name in _LIST_OPTIONS:
            config.create.setdefault(_LIST_OPTIONS[name], []).append(value)
        elif name in ("--env", "-e"):
            env_name, has_env_value, env_value = value.partition("=")
            config.env[env_name] = env_value if has_env_value else os.environ.get(env_name, "")
        elif name in ("--label", "-l"):
            label, _, label_value = value.partition("=")
            config.create.setdefault("labels", {})[label] = label_value
        elif name == "--tmpfs":
            path, _, mount_options = value.partition(":")
            config.create.setdefault("tmpfs", {})[path] = mount_options
        elif name == "--add-host":
            host, _, address = value.partition(":")
            config.create.setdefault("extra_hosts", {})[host] = address
        elif name == "--ulimit":
            limit, _, bounds = value.partition("=")
            soft, _, hard = bounds.partition(":")
            ulimit = docker.types.Ulimit(name=limit, soft=int(soft), hard=int(hard or soft))
            config.create.setdefault("ulimits", []).append(ulimit)
        elif name == "--sysctl":
            key, _, setting = value.partition("=")
            config.create.setdefault("sysctls", {})[key] = setting
        else:
            config.entrypoint = [value]


def _duration(text: str) -> float:
    """A Go duration as the Docker CLI takes it ("10s", "1m30s", "500ms") in seconds."""
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"'{text}' is not a duration like 10s, 500ms or 1m30s")
    return sum(float(number) * _SECONDS[unit] for number, unit in parts)


@dataclass(frozen=True)
class ServiceInfo:
    """A running service, as `job.services.<key>` shows it: its id, network, and published ports."""

    id: str
    network: str
    ports: dict[str, str]


class JobContainers:
    """One job's network, service containers and job container (none for a job on the host with services, which
    reaches them through their published ports); `stop()` removes all of them.

    Every blocking Docker SDK call runs in a thread. Creating calls are awaited by `stop()` even when
    `start()` was cancelled during them, so nothing they create is left behind.
    """

    def __init__(self, job_id: str, container: ContainerSpec | None,
                 services: Mapping[str, ContainerSpec] | None = None, *, socket: str | None = None) -> None:
        self.socket = socket or default_socket()
        self.config = parse_container(container, what="container") if container is not None else None
        self.service_configs = {key: parse_container(spec, what=f"service '{key}'")
                                for key, spec in (services or {}).items()}
        self.name = f"conveyor-{re.sub(r'[^a-zA-Z0-9_.-]', '-', job_id)[:40]}-{uuid.uuid4().hex[:8]}"
        """The network's name, the prefix of every container's name, and the value of their label."""
        self.container_id: str | None = None
        self.path: str | None = None
        self.node: str | None = None
        """Node.js in the job container (`CONTAINER_NODE`), or None when the host has none to lend it."""
        self._node_checked: bool | None = None
        self.node_refused = ""
        """Why the job container could not run the host's Node.js, once `usable_node` found it could not."""
        """The job image's own PATH, which its steps start from."""
        self.services: dict[str, ServiceInfo] = {}
        self._client: docker.DockerClient | None = None
        self._creating: set[asyncio.Future[Any]] = set()

    async def start(self, workspace: Path, temp: Path, *, shared: Sequence[Path] = ()) -> None:
        """Create the network, start the services and wait until they are healthy, then the job container.

        The job container sees the workspace and temp folders, and the runner's `shared` folders (the actions it
        fetched, its tool cache), at their host paths, and the host's Node.js at `CONTAINER_NODE`, as GitHub's
        runner mounts its own: the job's JavaScript actions run in it.
        """
        await self._call(self._connect, creates=True)
        await self._call(lambda: self._network_create(), creates=True)
        services = list(self.service_configs.items())
        started = await asyncio.gather(*(self._call(self._starter(key, config), creates=True)
                                         for key, config in services))
        await asyncio.gather(*(self._wait_healthy(key, config, container, check)
                               for (key, config), (container, check) in zip(services, started, strict=True)))
        config = self.config
        if config is None:
            return
        home = github_home(temp)
        volumes = [f"{workspace}:{workspace}", f"{temp}:{temp}", f"{home}:{CONTAINER_HOME}"]
        volumes += [f"{folder}:{folder}" for folder in shared if not folder.is_relative_to(workspace)]
        if (node := host_node()) is not None:
            volumes.append(f"{node}:{CONTAINER_NODE}:ro")
            self.node = CONTAINER_NODE
        job, _ = await self._call(lambda: self._run(config, "the job container", f"{self.name}-job",
                                                    aliases=[], volumes=volumes, keep_alive=True,
                                                    working_dir=str(workspace)), creates=True)
        self.container_id = job.id
        image_env = job.attrs.get("Config", {}).get("Env") or []
        self.path = next((item.removeprefix("PATH=") for item in image_env if item.startswith("PATH=")), None)

    async def exec(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path | str,
                   on_line: Callable[[str], None]) -> int:
        """Run `argv` in the job container; pass each output line (stdout and stderr merged) to `on_line`.

        Returns the exit code. Cancelling stops the reading; the process itself ends when `stop()` removes
        the container.
        """
        client, container_id, config = self._client, self.container_id, self.config
        if client is None or container_id is None or config is None:
            raise ContainerError("the job container is not running: start() must succeed before exec()")
        try:
            created = await self._call(lambda: client.api.exec_create(container_id, list(argv), environment=dict(env),
                                                                     workdir=str(cwd)))
            stream = await self._call(lambda: client.api.exec_start(created["Id"], stream=True, demux=True))
        except docker.errors.APIError as error:
            raise ContainerError(f"the job container ({config.image}) could not run {shlex.join(argv)!r}: "
                                 f"{error.explanation or error}") from error
        # One splitter per stream, so that a partial stdout line is never joined to a stderr line.
        out, err = _Lines(on_line), _Lines(on_line)
        try:
            async for stdout, stderr in _pump(stream):
                out.feed(stdout or b"")
                err.feed(stderr or b"")
        finally:
            stream.close()  # wakes the reading thread when we stop early
        out.close()
        err.close()
        return int(await self._call(lambda: _exit_code(client, created["Id"])))

    async def usable_node(self) -> str | None:
        """`node` when the host's Node.js runs in the job container, else None (asked once): an image whose C
        library is not the host's (Alpine's musl) cannot run it, and its JavaScript actions run on the host."""
        if self.node is not None and self._node_checked is None:
            said: list[str] = []
            try:
                code = await self.exec([self.node, "--version"], {}, "/", said.append)
            except ContainerError:
                code = -1
            self._node_checked = code == 0
            if code != 0:
                self.node_refused = "; ".join(said[-2:]) or f"exit code {code}"
        return self.node if self._node_checked else None

    async def stop(self) -> None:
        """Remove every container of the job and its network. Safe to call twice, or after a failed start."""
        await asyncio.shield(self._stop())

    async def _stop(self) -> None:
        await asyncio.gather(*self._creating, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(self._remove_all, client)

    # -- blocking parts, run in threads ---------------------------------------------------------------------

    async def _call(self, function: Callable[[], Any], *, creates: bool = False) -> Any:
        future = asyncio.ensure_future(asyncio.to_thread(function))
        future.add_done_callback(_retrieve)  # its error is raised by the await below, unless that was cancelled
        if creates:
            self._creating.add(future)
            future.add_done_callback(self._creating.discard)
        return await asyncio.shield(future)

    def _connect(self) -> None:
        try:
            if self.socket.startswith("unix://"):  # the SDK leaks the socket of a failed unix connection
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.settimeout(10)
                    probe.connect(self.socket.removeprefix("unix://"))
            # Kept at once, so that stop() closes it even when start() was cancelled meanwhile.
            self._client = docker.DockerClient(base_url=self.socket, version="auto", timeout=120)
        except (docker.errors.DockerException, OSError) as error:
            raise ContainerError(f"cannot reach the container engine at {self.socket}: {error}") from error

    def _network_create(self) -> None:
        assert self._client is not None
        self._client.networks.create(self.name, driver="bridge", labels={_LABEL: self.name})

    def _starter(self, key: str, config: ContainerConfig) -> Callable[[], tuple[Any, HealthCheck | None]]:
        def start() -> tuple[Any, HealthCheck | None]:
            container, check = self._run(config, f"service '{key}'", f"{self.name}-{key}"[:120], aliases=[key])
            ports = container.attrs.get("NetworkSettings", {}).get("Ports") or {}
            self.services[key] = ServiceInfo(
                id=container.id, network=self.name,
                ports={inner.split("/")[0]: bound[0]["HostPort"] for inner, bound in ports.items() if bound})
            return container, check
        return start

    def _run(self, config: ContainerConfig, what: str, name: str, *, aliases: list[str],
             volumes: Sequence[str] = (), keep_alive: bool = False,
             working_dir: str | None = None) -> tuple[Any, HealthCheck | None]:
        assert self._client is not None
        client = self._client
        image = self._image(config, what)
        create = dict(config.create)
        labels = {**create.pop("labels", {}), _LABEL: self.name}
        create.setdefault("working_dir", working_dir)
        try:
            container = client.containers.create(
                config.image, name=name, labels=labels, environment=config.env, ports=config.ports or None,
                volumes=[*volumes, *config.volumes], network=self.name,
                networking_config={self.name: client.api.create_endpoint_config(aliases=aliases)},
                entrypoint=_KEEP_ALIVE if keep_alive else config.entrypoint,
                command=[] if keep_alive else config.command, **create)
            container.start()
            container.reload()
        except docker.errors.APIError as error:
            raise ContainerError(f"{what} ({config.image}) could not start: {error.explanation or error}") from error
        if container.status != "running":
            logs = container.logs(tail=20).decode(errors="replace").strip()
            raise ContainerError(f"{what} ({config.image}) exited at once: {logs or 'no output'}")
        return container, _health_check(config.health, image.attrs.get("Config", {}).get("Healthcheck"))

    def _image(self, config: ContainerConfig, what: str) -> Any:
        assert self._client is not None
        try:
            return self._client.images.get(config.image)
        except docker.errors.ImageNotFound:
            pass
        repository, tag = parse_repository_tag(config.image)
        try:
            return self._client.images.pull(repository, tag=tag or "latest", auth_config=config.credentials)
        except docker.errors.APIError as error:
            raise ContainerError(f"{what}: image '{config.image}' is not on this machine and could not be pulled: "
                                 f"{error.explanation or error}") from error

    def _remove_all(self, client: docker.DockerClient) -> None:
        try:
            for container in client.containers.list(all=True, filters={"label": f"{_LABEL}={self.name}"}):
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True, v=True)
            for network in client.networks.list(names=[self.name]):
                with contextlib.suppress(docker.errors.NotFound):
                    network.remove()
        finally:
            client.close()

    async def _wait_healthy(self, key: str, config: ContainerConfig, container: Any,
                            check: HealthCheck | None) -> None:
        if check is None:
            return
        what = f"service '{key}' ({config.image})"
        counted_from = time.monotonic() + check.start_period
        failures, last = 0, ""
        while True:
            await self._call(container.reload)
            if container.status != "running":
                logs = (await self._call(lambda: container.logs(tail=20))).decode(errors="replace").strip()
                raise ContainerError(f"{what} stopped before it was healthy: {logs or 'no output'}")
            try:
                code, output = await asyncio.wait_for(self._call(lambda: container.exec_run(check.argv)),
                                                      check.timeout)
                if code == 0:
                    return
                last = f"exit code {code}: {output.decode(errors='replace').strip()[-500:]}"
            except TimeoutError:
                last = f"timed out after {check.timeout:g}s"
            except docker.errors.APIError as error:
                last = str(error.explanation or error)
            if time.monotonic() >= counted_from:
                failures += 1
            if failures >= check.retries:
                raise ContainerError(f"{what} is unhealthy: its health check failed {failures} times ({last})")
            await asyncio.sleep(check.interval)


def _health_check(options: Mapping[str, Any], image: Mapping[str, Any] | None) -> HealthCheck | None:
    """The image's health check overridden by `--health-*` options; None when there is none to run."""
    image = image or {}
    test = list(image.get("Test") or [])
    argv: list[str] | None = None
    if test and test[0] == "CMD":
        argv = test[1:]
    elif test and test[0] == "CMD-SHELL":
        argv = ["/bin/sh", "-c", test[1]]
    argv = options.get("argv", argv)
    if not argv:
        return None
    nanoseconds = {key: image.get(name) for key, name in
                   (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod"))}
    defaults = {key: value / 1e9 for key, value in nanoseconds.items() if value}
    if image.get("Retries"):
        defaults["retries"] = image["Retries"]
    return HealthCheck(**{**defaults, **options, "argv": argv})


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _exit_code(client: docker.DockerClient, exec_id: str) -> int:
    for _ in range(50):
        info = client.api.exec_inspect(exec_id)
        if not info.get("Running") and info.get("ExitCode") is not None:
            return int(info["ExitCode"])
        time.sleep(0.1)
    raise ContainerError(f"the job container did not report the exit code of exec {exec_id}")


async def _pump(stream: Any) -> AsyncIterator[tuple[bytes | None, bytes | None]]:
    """Yield the chunks of an SDK `CancellableStream`, read in a daemon thread that never holds up shutdown."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def put(item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is reading any more
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def read() -> None:
        try:
            for chunk in stream:
                put(chunk)
        except Exception as error:
            put(error)
        finally:
            stream._response.close()  # the upgraded connection's socket is closed only by its response
            put(None)

    threading.Thread(target=read, name="conveyor-exec-output", daemon=True).start()
    while (item := await queue.get()) is not None:
        if isinstance(item, BaseException):
            raise ContainerError(f"reading the output of a step failed: {item}") from item
        yield item


class _Lines:
    """Splits chunks into lines as a host step's output is split (`LineSplitter`: safe text, long lines in
    pieces), passing each to `on_line`."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line = on_line
        self._splitter = LineSplitter()

    def feed(self, chunk: bytes) -> None:
        for line in self._splitter.feed(chunk):
            self.on_line(line)

    def close(self) -> None:
        for line in self._splitter.finish():
            self.on_line(line)
