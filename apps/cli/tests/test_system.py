"""How a process wires its log: a service's writes are fenced; the edge alone, which decides nothing, is not."""

from __future__ import annotations

from pathlib import Path

from conveyor_cli.system import EmbeddedSystem
from conveyor_runtime import KafkaEventLog, RuntimeSettings


def test_only_a_process_that_runs_no_service_opens_its_log_unfenced(tmp_path: Path) -> None:
    settings = RuntimeSettings(event_log="kafka", kafka_topic_prefix="ci-7", data_dir=tmp_path)

    def fenced(services: list[str]) -> bool:
        log = EmbeddedSystem(settings, services, name="ingest" if not services else services[0]).log
        assert isinstance(log, KafkaEventLog)
        return log._fenced

    assert fenced(["scheduler"]) is True
    assert fenced(["planner", "scheduler", "notifier"]) is True
    assert fenced([]) is False
