"""Docker container actions: an image built from the action's Dockerfile, or named with `docker://`, run once.

The workspace and the runner's temporary folder are mounted at the same paths as on the host, so the file
commands (`$GITHUB_OUTPUT`, ...) and `$GITHUB_WORKSPACE` mean the same inside; the working directory is the
workspace. Every blocking Docker SDK call runs in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors

from conveyor_runner_agent.adapters.containers import ContainerError, default_socket
from conveyor_runner_agent.domain.log_lines import LineSplitter


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
        mounts: Sequence[Path],
        workdir: Path,
        on_line: Callable[[str], None],
    ) -> int:
        """Run `image` with `args` to its end, passing each output line to `on_line`; its exit code."""
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()

        def run() -> int:
            client = self._client()
            container: Any = None
            try:
                container = client.containers.create(
                    image,
                    command=list(args) or None,
                    entrypoint=entrypoint or None,
                    environment=dict(env),
                    volumes={str(path): {"bind": str(path), "mode": "rw"} for path in mounts},
                    working_dir=str(workdir),
                )
                container.start()
                splitter = LineSplitter()
                for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                    for line in splitter.feed(chunk):
                        loop.call_soon_threadsafe(lines.put_nowait, line)
                for line in splitter.finish():
                    loop.call_soon_threadsafe(lines.put_nowait, line)
                return int(container.wait()["StatusCode"])
            except docker.errors.ImageNotFound as error:
                raise ContainerError(f"no image {image!r} here (images cannot be pulled; build it locally)") from error
            except docker.errors.APIError as error:
                reason = error.explanation or error
                raise ContainerError(f"the action's container ({image}) failed: {reason}") from error
            finally:
                if container is not None:
                    container.remove(force=True)
                client.close()
                loop.call_soon_threadsafe(lines.put_nowait, None)

        running = asyncio.ensure_future(asyncio.to_thread(run))
        while (line := await lines.get()) is not None:
            on_line(line)
        return await running
