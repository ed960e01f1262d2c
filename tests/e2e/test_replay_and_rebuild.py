"""`conveyor replay` shows a run's events in order; `conveyor projections rebuild` gives the same read models."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conveyor_cli.main import app
from typer.testing import CliRunner

from tests.e2e.read_models import stored_rows

pytestmark = pytest.mark.e2e


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_replay_prints_the_run_in_order_and_rebuild_equals_the_live_models(
    example: Callable[[str], Path], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    code, output = invoke("run", "-C", str(example("failing")), "--data-dir", str(data))
    assert code == 1, output
    run_id = re.findall(r"^run ([0-9a-f-]{36}): ", output, re.M)[0]

    code, replayed = invoke("replay", run_id, "--data-dir", str(data))
    assert code == 0, replayed
    lines = replayed.splitlines()
    types = [line.split()[2] for line in lines]
    assert types[0] == "RunRequested"
    assert types[-1] == "RunCompleted"
    assert "conclusion=failure" in lines[-1]
    sequences = [int(line.split()[1].lstrip("#")) for line in lines]
    assert sequences == list(range(1, len(lines) + 1))
    assert types.index("RunPlanned") < types.index("JobQueued") < types.index("JobStarted")
    assert any("JobSkipped" in line and "job_id=ci.deploy" in line for line in lines)

    live = stored_rows(data)
    code, rebuilt = invoke("projections", "rebuild", "--data-dir", str(data))
    assert code == 0, rebuilt
    assert stored_rows(data) == live
    assert all(live[table] for table in ("runs", "jobs", "steps", "log_lines"))


def test_replay_of_an_unknown_run(tmp_path: Path) -> None:
    code, output = invoke("replay", "no-such-run", "--data-dir", str(tmp_path))
    assert code == 1
    assert "no run 'no-such-run'" in output
