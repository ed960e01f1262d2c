"""The log the settings choose: SQLite under the data directory by default, Kafka topics when asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
from conveyor_runtime import KafkaEventLog, KafkaTopics, RuntimeSettings, SqliteEventLog, open_event_log
from pydantic import ValidationError


def test_by_default_the_log_is_the_data_directorys_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEYOR_EVENT_LOG", raising=False)
    log = open_event_log(RuntimeSettings(data_dir=tmp_path, log_sync="FULL"), name="planner")

    assert isinstance(log, SqliteEventLog)
    assert log.path == tmp_path / "events.db"


def test_kafka_is_chosen_by_the_environment_with_the_topics_of_its_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_EVENT_LOG", "kafka")
    monkeypatch.setenv("CONVEYOR_KAFKA_TOPIC_PREFIX", "ci-7")
    monkeypatch.setenv("CONVEYOR_KAFKA_BOOTSTRAP", "broker:9092")

    log = open_event_log(RuntimeSettings(), name="scheduler")

    assert isinstance(log, KafkaEventLog)
    assert (log.bootstrap, log.topics) == ("broker:9092", KafkaTopics.with_prefix("ci-7"))


def test_a_named_service_writes_under_a_stable_transactional_id_and_others_under_unique_ones() -> None:
    settings = RuntimeSettings(event_log="kafka", kafka_topic_prefix="ci-7")

    def transactional_id(name: str | None) -> str:
        log = open_event_log(settings, name=name)
        assert isinstance(log, KafkaEventLog)
        return log._transactional_id

    assert transactional_id("scheduler") == transactional_id("scheduler") == "conveyor-ci-7-scheduler"
    assert transactional_id(None) != transactional_id(None)


def test_a_log_is_fenced_unless_asked_otherwise() -> None:
    settings = RuntimeSettings(event_log="kafka", kafka_topic_prefix="ci-7")
    fenced, unfenced = open_event_log(settings, name="planner"), open_event_log(settings, name="ingest", fenced=False)

    assert isinstance(fenced, KafkaEventLog)
    assert isinstance(unfenced, KafkaEventLog)
    assert (fenced._fenced, unfenced._fenced) == (True, False)


@pytest.mark.parametrize(
    ("name", "value"),
    [("CONVEYOR_EVENT_LOG", "postgres"), ("CONVEYOR_KAFKA_TOPIC_PREFIX", "a b"), ("CONVEYOR_HEALTH_PORT", "70000")],
)
def test_bad_log_settings_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match=name.removeprefix("CONVEYOR_").lower()):
        RuntimeSettings()
