"""Bad input to `conveyor run` gives one line that names the file, a non-zero exit, and no traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CONVEYOR = str(Path(sys.executable).parent / "conveyor")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CONVEYOR, *args], capture_output=True, text=True, timeout=120, check=False)


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("error:")]


def test_a_workflow_that_is_not_yaml(repository: Callable[..., Path]) -> None:
    root = repository({".github/workflows/broken.yml": "on: push\njobs:\n  build: [unclosed\n"})

    done = run("run", "-C", str(root))

    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    [line] = error_lines(done)
    assert line.startswith("error: .github/workflows/broken.yml (Line: ")


def test_a_workflow_that_is_yaml_but_not_a_mapping(repository: Callable[..., Path]) -> None:
    root = repository({".github/workflows/list.yml": "- just\n- a list\n"})

    done = run("run", "-C", str(root))

    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    assert all(".github/workflows/list.yml" in line for line in error_lines(done))
    assert error_lines(done)


def test_a_repository_without_workflows(repository: Callable[..., Path]) -> None:
    root = repository({"README.md": "nothing to run\n"})

    done = run("run", "-C", str(root))

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert error_lines(done) == [f"error: {root}/.github/workflows: no workflow files (*.yml, *.yaml) found"]


def test_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    done = run("run", "-C", str(tmp_path / "missing"))

    assert done.returncode == 2
    assert error_lines(done) == [f"error: {tmp_path / 'missing'}: no such directory"]
