"""Ingest: the public edge. Turns dispatches into `RunRequested` and answers queries from the read models."""

from conveyor_ingest.api import create_app
from conveyor_ingest.domain import REPOSITORIES_STREAM, register_repository, request_run, run_id_for
from conveyor_ingest.queries import Queries

__all__ = ["REPOSITORIES_STREAM", "Queries", "create_app", "register_repository", "request_run", "run_id_for"]
