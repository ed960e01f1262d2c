"""A secret in a line too long to hold is masked also where the line is cut into pieces."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.read_models import stored_log
from tests.e2e.test_conveyor_run import conveyor, run_id_of

pytestmark = pytest.mark.e2e

SECRET = "correct-horse-battery-staple"
CUT = 64 * 1024
WORKFLOW = """
on: push
jobs:
  long:
    runs-on: x
    steps:
      - run: |
          python3 -c "import os; print('x' * OFFSET + os.environ['TOKEN'] + 'y' * 100)"
          echo "short $TOKEN"
        env:
          TOKEN: ${{ secrets.TOKEN }}
"""


@pytest.mark.parametrize("before_cut", [1, 10, len(SECRET) - 1])
def test_a_secret_across_the_cut_of_a_long_line_is_masked(
    repository: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, before_cut: int
) -> None:
    root = repository({".github/workflows/ci.yml": WORKFLOW.replace("OFFSET", str(CUT - before_cut))})
    monkeypatch.setenv("TOKEN", SECRET)
    data = tmp_path / "data"

    code, output = conveyor("run", "-C", str(root), "-s", "TOKEN", "--data-dir", str(data))

    assert code == 0, output[-2000:]
    run_id = run_id_of(output)
    lines = stored_log(data, run_id, "long")
    text = "".join(lines[:-1])
    assert text == "x" * (CUT - before_cut) + "***" + "y" * 100
    assert lines[-1] == "short ***"
    assert all(len(line) <= CUT for line in lines)
