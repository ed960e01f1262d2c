"""The API's OpenAPI document, exercised by schemathesis against `conveyor up` as a real process.

Schemathesis generates requests from the document, valid and not, for every operation, and sends them with
an admin token; none may get a server error (5xx). A registered repository with a run gives the reads and
writes something to find.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_repository
from tests.e2e.processes import CONVEYOR
from tests.e2e.test_conveyor_up import WORKFLOW, dispatch_and_wait, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`conveyor up` on a free port, with a repository registered and run once; its URL and admin header.

    Its output goes to a file: a pipe nobody reads would fill with the access log and stall the server.
    """
    data = tmp_path_factory.mktemp("data")
    root = make_repository(tmp_path_factory.mktemp("repository"), {".github/workflows/ci.yml": WORKFLOW})
    base = f"http://127.0.0.1:{free_port()}"
    output = data.parent / f"{data.name}-server.log"
    with output.open("w") as sink:
        server = subprocess.Popen(
            [CONVEYOR, "up", "--port", base.rsplit(":", 1)[1], "--data-dir", str(data)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        run = dispatch_and_wait(base, root, server, data)
        assert run["conclusion"] == "success"
        yield {"base": base, "authorization": f"Authorization: Bearer {(data / 'admin-token').read_text()}"}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    assert server.returncode == 0, output.read_text()[-4000:]


SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


def test_no_request_the_document_allows_gets_a_server_error(served: dict[str, Any], tmp_path: Path) -> None:
    """Every operation, with examples, generated valid and invalid data and the stateful phase: no 5xx."""
    report = tmp_path / "report.json"
    command = [
        SCHEMATHESIS,
        "run",
        f"{served['base']}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--header",
        served["authorization"],
        "--max-examples",
        "25",
        "--seed",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--generation-database",
        "none",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    events = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    assert len(events) > 20, "schemathesis reported too little to have run"


def test_the_document_names_every_operation(served: dict[str, Any]) -> None:
    document = httpx.get(f"{served['base']}/openapi.json").json()
    paths = set(document["paths"])
    assert {"/api/runs", "/api/runs/{run_id}", "/api/tokens", "/webhooks/github", "/api/runners"} <= paths
