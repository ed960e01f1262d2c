"""Conveyor's runtime: settings, the event log, consumers and the projections that answer queries."""

from conveyor_runtime._consumer import DEAD_LETTERS, Consumer, Handler, consume
from conveyor_runtime._log import Checkpoint, ConcurrencyError, EventLog
from conveyor_runtime._projections import PROJECTOR, SqliteProjections, project, rebuild
from conveyor_runtime._settings import RuntimeSettings
from conveyor_runtime._sqlite_log import SqliteEventLog

__all__ = [
    "DEAD_LETTERS",
    "PROJECTOR",
    "Checkpoint",
    "ConcurrencyError",
    "Consumer",
    "EventLog",
    "Handler",
    "RuntimeSettings",
    "SqliteEventLog",
    "SqliteProjections",
    "consume",
    "project",
    "rebuild",
]
