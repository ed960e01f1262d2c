"""Fixtures shared by the end-to-end tests: example repositories as real git repositories."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def git(repository: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repository), "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def make_repository(root: Path, files: dict[str, str], *, branch: str = "main") -> Path:
    """A git repository at `root` with `files` committed on `branch`."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "init", "-q", "-b", branch)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


@pytest.fixture
def example(tmp_path: Path) -> Callable[[str], Path]:
    """A copy of `examples/<name>` committed into a fresh git repository."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(EXAMPLES / name, target)
        git(target, "init", "-q", "-b", "main")
        git(target, "add", "-A")
        git(target, "commit", "-q", "-m", "initial")
        return target

    return copy


@pytest.fixture
def repository(tmp_path: Path) -> Callable[..., Path]:
    """Make a git repository under tmp_path from a mapping of file names to text."""
    counter = iter(range(1_000_000))

    def make(files: dict[str, str], *, branch: str = "main") -> Path:
        return make_repository(tmp_path / f"repo-{next(counter)}", files, branch=branch)

    return make


SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture(scope="session")
def container_engine() -> str:
    """Podman's Docker-compatible API socket with the local images; fails (never skips) when it cannot be set up."""
    done = subprocess.run(
        ["bash", str(SCRIPTS / "containers.sh")], capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/containers.sh failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return "conveyor/debian:bookworm"
