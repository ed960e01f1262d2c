"""`conveyor kafka init` creates the log's topics on a real broker (scripts/kafka.sh), once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from conveyor_cli.main import app
from conveyor_runtime import KafkaTopics, delete_kafka_topics
from conveyor_runtime._kafka_topics import partition_counts
from typer.testing import CliRunner

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "kafka.sh"
BOOTSTRAP = f"127.0.0.1:{os.environ.get('CONVEYOR_KAFKA_PORT', '19092')}"


@pytest.mark.integration
@pytest.mark.timeout(900)  # a fresh machine fetches the broker's jars first
def test_kafka_init_creates_the_topics_then_leaves_them_alone() -> None:
    started = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=870, check=False)
    assert started.returncode == 0, f"scripts/kafka.sh failed:\n{started.stdout}\n{started.stderr}"
    prefix = f"test-cli-{uuid.uuid4().hex[:12]}"
    runner = CliRunner()
    try:
        first = runner.invoke(app, ["kafka", "init", "--bootstrap", BOOTSTRAP, "--prefix", prefix])
        again = runner.invoke(app, ["kafka", "init", "--bootstrap", BOOTSTRAP, "--prefix", prefix])
    finally:
        deleted = asyncio.run(delete_kafka_topics(BOOTSTRAP, KafkaTopics.with_prefix(prefix)))

    names = [f"{prefix}.events", f"{prefix}.checkpoints", f"{prefix}.logs", f"{prefix}.dead-letter"]
    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == [f"created {name}" for name in names]
    assert again.output.splitlines() == [f"exists  {name}" for name in names]
    assert deleted == names
    assert asyncio.run(partition_counts(BOOTSTRAP, names)) == {}
    assert asyncio.run(delete_kafka_topics(BOOTSTRAP, KafkaTopics.with_prefix(prefix))) == []


def test_kafka_init_without_a_broker_fails_with_the_reason() -> None:
    result = CliRunner().invoke(app, ["kafka", "init", "--bootstrap", "127.0.0.1:9"])

    assert result.exit_code == 1
    assert "could not create the topics on 127.0.0.1:9" in result.output
