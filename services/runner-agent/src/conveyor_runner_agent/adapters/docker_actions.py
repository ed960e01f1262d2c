"""Docker container actions: an image built from the action's Dockerfile, or named with `docker://`, run once.

The container sees what GitHub's runner gives it: the workspace at `/github/workspace` (its working directory
and `$GITHUB_WORKSPACE`), the job's home folder at `/github/home` (`$HOME`) and the event at
`/github/workflow/event.json` (`$GITHUB_EVENT_PATH`). The workspace and the runner's temporary folder are also
mounted at their host paths, so the file commands (`$GITHUB_OUTPUT`, ...) and a host path an expression gave
(`${{ github.workspace }}` in `args`) mean the same inside. Every blocking Docker SDK call runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors

from conveyor_runner_agent.adapters.containers import ContainerError, default_socket
from conveyor_runner_agent.domain.log_lines import LineSplitter

WORKSPACE = "/github/workspace"
WORKFLOW = "/github/workflow"


class DockerActions:
    """Builds and runs the containers of Docker actions over one Docker Engine API socket."""

    def __init__(self, socket: str | None = None) -> None:
        self.socket = socket or default_socket()

    def _client(self) -> docker.DockerClient:
        try:
            return docker.DockerClient(base_url=self.socket)
        except docker.errors.DockerException as error:
            raise ContainerError(f"no container engine answers at {self.socket}: {error}") from error

    async def build(self, directory: Path, dockerfile: str) -> str:
        """The tag of the image built from `dockerfile` in the action's `directory` (built once per content)."""
        path = (directory / dockerfile).resolve()
        if not path.is_file():
            raise ContainerError(f"the action's Dockerfile {dockerfile} is not in {directory}")
        digest = hashlib.sha256(str(directory).encode() + path.read_bytes()).hexdigest()[:16]
        tag = f"conveyor-action/{digest}:latest"

        def build() -> None:
            client = self._client()
            try:
                client.images.build(path=str(directory), dockerfile=str(path), tag=tag, rm=True)
            except (docker.errors.BuildError, docker.errors.APIError) as error:
                raise ContainerError(f"building the action's image from {dockerfile} failed: {error}") from error
            finally:
                client.close()

        await asyncio.to_thread(build)
        return tag

    async def run(
        self,
        image: str,
        args: Sequence[str],
        *,
        entrypoint: str | None,
        env: Mapping[str, str],
        mounts: Sequence[tuple[Path, str]],
        workdir: str,
        on_line: Callable[[str], None],
        network: str | None = None,
    ) -> int:
        """Run `image` with `args` to its end, passing each output line to `on_line`; its exit code. `mounts`
        are host paths and where the container sees them. With `network` (the job's, when it has containers) it
        joins it: the job's services are reached by their keys.

        The container's end is what `wait` reports; the output is followed as it comes, but a follow that
        outlives the container by `LOG_GRACE` is closed, and whatever it missed is read from the finished
        container's log. A cancelled run kills the container and waits for it to go.
        """
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        started: list[Any] = []

        def emit(line: str) -> None:
            loop.call_soon_threadsafe(lines.put_nowait, line)

        def run() -> int:
            client = self._client()
            try:
                container = client.containers.create(
                    image,
                    command=list(args) or None,
                    entrypoint=entrypoint or None,
                    environment=dict(env),
                    volumes=[f"{path}:{inside}:rw" for path, inside in mounts],
                    working_dir=workdir,
                    network=network,
                )
                started.append(container)
                container.start()
                return _follow_to_end(container, emit)
            except docker.errors.ImageNotFound as error:
                raise ContainerError(f"no image {image!r} here (images cannot be pulled; build it locally)") from error
            except docker.errors.APIError as error:
                reason = error.explanation or error
                raise ContainerError(f"the action's container ({image}) failed: {reason}") from error
            finally:
                for container in started:
                    with contextlib.suppress(docker.errors.APIError):
                        container.remove(force=True)
                client.close()
                loop.call_soon_threadsafe(lines.put_nowait, None)

        running = asyncio.ensure_future(asyncio.to_thread(run))
        try:
            while (line := await lines.get()) is not None:
                on_line(line)
            return await running
        except asyncio.CancelledError:
            if started:
                with contextlib.suppress(Exception):  # it may have ended (and its client closed) meanwhile
                    await asyncio.to_thread(started[0].kill)
            with contextlib.suppress(Exception):
                await asyncio.shield(running)
            raise


LOG_GRACE = 5.0  # seconds a log follow may outlive its container before it is closed


def _follow_to_end(container: Any, emit: Callable[[str], None]) -> int:
    """Pass the container's output lines to `emit` as they come, until it ends; its exit code.

    Some engines' log follows do not end when a container that exits quickly has gone, so the end is taken from
    `wait`; and a follow may miss lines (under load, Podman's has missed a container's first). So after the end
    the finished log is read once, and each of its lines the follow did not pass on, in order, is emitted then.
    """
    stream = container.logs(stream=True, follow=True, stdout=True, stderr=True)
    followed: list[str] = []

    def follow() -> None:
        splitter = LineSplitter()
        with contextlib.suppress(Exception):  # the stream closed under it below
            for chunk in stream:
                for line in splitter.feed(chunk):
                    followed.append(line)
                    emit(line)

    follower = threading.Thread(target=follow, name=f"logs {container.id[:12]}", daemon=True)
    follower.start()
    code = int(container.wait()["StatusCode"])
    follower.join(LOG_GRACE)
    if follower.is_alive():
        stream.close()
        follower.join(LOG_GRACE)
    splitter = LineSplitter()
    finished = container.logs(stream=False, stdout=True, stderr=True)
    seen, matched = list(followed), 0
    for line in [*splitter.feed(finished), *splitter.finish()]:
        if matched < len(seen) and seen[matched] == line:
            matched += 1
        else:
            emit(line)
    return code
