"""Ingest: the public edge. Turns dispatches and GitHub webhooks into `RunRequested` and answers queries from
the read models."""

from conveyor_ingest.access import ROLES, first_admin_token, issue_token
from conveyor_ingest.adapters import LocalKeyWrapper
from conveyor_ingest.api import create_app
from conveyor_ingest.backfill import BackfillSummary, backfill, backfill_forever
from conveyor_ingest.credentials import RepositoryTokens
from conveyor_ingest.domain import REPOSITORIES_STREAM, register_repository, request_run, run_id_for
from conveyor_ingest.queries import Queries
from conveyor_ingest.schedules import CatchUp, ScheduleTrigger, due_ticks, run_schedules
from conveyor_ingest.sealing import KeyWrapper, SecretKeyError, seal_for

__all__ = [
    "REPOSITORIES_STREAM",
    "ROLES",
    "BackfillSummary",
    "CatchUp",
    "KeyWrapper",
    "LocalKeyWrapper",
    "Queries",
    "RepositoryTokens",
    "ScheduleTrigger",
    "SecretKeyError",
    "backfill",
    "backfill_forever",
    "create_app",
    "due_ticks",
    "first_admin_token",
    "issue_token",
    "register_repository",
    "request_run",
    "run_id_for",
    "run_schedules",
    "seal_for",
]
