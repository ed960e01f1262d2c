"""Conveyor's runtime: settings, the event log, consumers and the projections that answer queries.

`KafkaEventLog` and `PostgresProjections` are imported when first asked for: aiokafka and SQLAlchemy take about
a third of a second to import, which a process on the embedded log and read models need not pay.
"""

import importlib
from typing import TYPE_CHECKING, Any

from conveyor_runtime._collector import tune_collector
from conveyor_runtime._consumer import DEAD_LETTERS, Consumer, Handler, consume
from conveyor_runtime._git_remote import (
    GitRemotes,
    RemoteGitError,
    TokenLookup,
    git_environment,
    is_remote,
    local_commit,
    ls_remote,
    redacted,
    workflow_blobs,
)
from conveyor_runtime._kafka_topics import KafkaTopics, create_kafka_topics, delete_kafka_topics, kafka_bootstrap
from conveyor_runtime._leases import (
    ANY_LABEL,
    LEASE_PERIOD,
    Lease,
    LeaseState,
    claim,
    covers,
    held_lease,
    held_lease_state,
    lease_state,
    renew,
)
from conveyor_runtime._log import Checkpoint, ConcurrencyError, EventLog
from conveyor_runtime._log_factory import (
    OpenableEventLog,
    describe_event_log,
    describe_projections,
    open_event_log,
    open_projections,
)
from conveyor_runtime._projection_store import ProjectionStore, Row, Rows
from conveyor_runtime._projections import PROJECTOR, project, rebuild
from conveyor_runtime._ref_cache import RefCache
from conveyor_runtime._settings import RuntimeSettings
from conveyor_runtime._sqlite_log import SqliteEventLog
from conveyor_runtime._sqlite_projections import SqliteProjections

if TYPE_CHECKING:
    from conveyor_runtime._kafka_log import KafkaEventLog
    from conveyor_runtime._postgres_projections import PostgresProjections

_IMPORTED_WHEN_ASKED = {
    "KafkaEventLog": "conveyor_runtime._kafka_log",
    "PostgresProjections": "conveyor_runtime._postgres_projections",
}


def __getattr__(name: str) -> Any:
    module = _IMPORTED_WHEN_ASKED.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor_runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

__all__ = [
    "ANY_LABEL",
    "DEAD_LETTERS",
    "LEASE_PERIOD",
    "PROJECTOR",
    "Checkpoint",
    "ConcurrencyError",
    "Consumer",
    "EventLog",
    "GitRemotes",
    "Handler",
    "KafkaEventLog",
    "KafkaTopics",
    "Lease",
    "LeaseState",
    "OpenableEventLog",
    "PostgresProjections",
    "ProjectionStore",
    "RefCache",
    "RemoteGitError",
    "Row",
    "Rows",
    "RuntimeSettings",
    "SqliteEventLog",
    "SqliteProjections",
    "TokenLookup",
    "claim",
    "consume",
    "covers",
    "create_kafka_topics",
    "delete_kafka_topics",
    "describe_event_log",
    "describe_projections",
    "git_environment",
    "held_lease",
    "held_lease_state",
    "is_remote",
    "kafka_bootstrap",
    "lease_state",
    "local_commit",
    "ls_remote",
    "open_event_log",
    "open_projections",
    "project",
    "rebuild",
    "redacted",
    "renew",
    "tune_collector",
    "workflow_blobs",
]
