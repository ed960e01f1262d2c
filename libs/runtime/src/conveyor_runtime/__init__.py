"""Conveyor's runtime: settings, the event log, consumers and the projections that answer queries."""

from conveyor_runtime._consumer import DEAD_LETTERS, Consumer, Handler, consume
from conveyor_runtime._kafka_log import KafkaEventLog
from conveyor_runtime._kafka_topics import KafkaTopics, create_kafka_topics, kafka_bootstrap
from conveyor_runtime._leases import (
    ANY_LABEL,
    LEASE_PERIOD,
    Lease,
    LeaseState,
    claim,
    covers,
    held_lease,
    lease_state,
    renew,
)
from conveyor_runtime._log import Checkpoint, ConcurrencyError, EventLog
from conveyor_runtime._projections import PROJECTOR, SqliteProjections, project, rebuild
from conveyor_runtime._settings import RuntimeSettings
from conveyor_runtime._sqlite_log import SqliteEventLog

__all__ = [
    "ANY_LABEL",
    "DEAD_LETTERS",
    "LEASE_PERIOD",
    "PROJECTOR",
    "Checkpoint",
    "ConcurrencyError",
    "Consumer",
    "EventLog",
    "Handler",
    "KafkaEventLog",
    "KafkaTopics",
    "Lease",
    "LeaseState",
    "RuntimeSettings",
    "SqliteEventLog",
    "SqliteProjections",
    "claim",
    "consume",
    "covers",
    "create_kafka_topics",
    "held_lease",
    "kafka_bootstrap",
    "lease_state",
    "project",
    "rebuild",
    "renew",
]
