"""What a finished `conveyor run` left in its data directory's read models, asked from synchronous tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conveyor_ingest import Queries
from conveyor_runtime import SqliteProjections


def _queries(data_dir: Path) -> Queries:
    return Queries(SqliteProjections(data_dir / "projections.db"))


def stored_run(data_dir: Path, run_id: str) -> dict[str, Any]:
    """The run with its jobs and steps, as the API shows it; fails when the read models hold no such run."""
    run = asyncio.run(_queries(data_dir).run(run_id))
    assert run is not None, f"no run {run_id} in {data_dir}"
    return run


def stored_log(data_dir: Path, run_id: str, job: str) -> list[str]:
    """The text of each stored log line of a job, given by id or by key."""
    found = asyncio.run(_queries(data_dir).job_logs(run_id, job))
    assert found is not None, f"no run {run_id} in {data_dir}"
    assert found.job_id is not None, f"no job {job} in run {run_id}"
    return [line["text"] for line in found.lines]


def stored_rows(data_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read model, sorted."""
    return asyncio.run(SqliteProjections(data_dir / "projections.db").dump())
