"""`conveyor` processes of the end-to-end tests, started with their output in files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

CONVEYOR = str(Path(sys.executable).parent / "conveyor")


class Processes:
    """Processes started with their output in files (nobody reads a pipe here), all stopped at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[tuple[subprocess.Popen[bytes], Path, IO[bytes]]] = []

    def start(self, name: str, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        output = self.folder / f"{name}.log"
        file = output.open("wb")
        process = subprocess.Popen([CONVEYOR, *args], stdout=file, stderr=subprocess.STDOUT, env={**os.environ, **env})
        self.started.append((process, output, file))
        return process

    def output(self, process: subprocess.Popen[bytes]) -> str:
        return next(path.read_text() for started, path, _ in self.started if started is process)

    def stop(self) -> list[tuple[int | None, str]]:
        """SIGTERM to all at once; each one's exit status (None: it had to be killed) and output."""
        for process, _, _ in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        ended: list[tuple[int | None, str]] = []
        for process, path, file in self.started:
            try:
                status: int | None = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                status = None
            file.close()
            ended.append((status, path.read_text()))
        return ended
