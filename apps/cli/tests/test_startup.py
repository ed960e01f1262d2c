"""What a `conveyor` command imports before it runs: only what the command needs, so that `conveyor validate`
starts in about half a second rather than two."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sqlalchemy", "asyncpg", "alembic", "aiokafka", "fastapi", "uvicorn", "conveyor_ingest",
         "conveyor_runner_agent", "conveyor_scheduler", "conveyor_planner", "conveyor_notifier")


def imported_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(name for name in {HEAVY!r} if name in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


def test_the_command_line_imports_no_service_and_no_server_library_before_a_command_runs() -> None:
    assert imported_after("import conveyor_cli.main") == []


def test_validating_a_workflow_imports_none_of_them_either() -> None:
    code = (
        "from typer.testing import CliRunner\n"
        "from conveyor_cli.main import app\n"
        "import pathlib, tempfile\n"
        "path = pathlib.Path(tempfile.mkdtemp()) / 'ci.yml'\n"
        "path.write_text('on: push\\njobs:\\n  a:\\n    runs-on: x\\n    steps: [{run: echo}]\\n')\n"
        "result = CliRunner().invoke(app, ['validate', str(path)])\n"
        "assert result.exit_code == 0, result.output"
    )
    assert imported_after(code) == []


def test_the_runtime_imports_kafka_and_postgresql_clients_only_when_asked_for_them() -> None:
    assert imported_after("import conveyor_runtime") == []
    assert imported_after("from conveyor_runtime import KafkaEventLog") == ["aiokafka"]
    assert "sqlalchemy" in imported_after("from conveyor_runtime import PostgresProjections")
