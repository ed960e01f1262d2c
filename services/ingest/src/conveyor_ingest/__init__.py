"""Ingest: the public edge. Turns dispatches and GitHub webhooks into `RunRequested` and answers queries from
the read models."""

from conveyor_ingest.adapters import LocalKeyWrapper
from conveyor_ingest.api import create_app
from conveyor_ingest.credentials import RepositoryTokens
from conveyor_ingest.domain import REPOSITORIES_STREAM, register_repository, request_run, run_id_for
from conveyor_ingest.queries import Queries
from conveyor_ingest.sealing import KeyWrapper, SecretKeyError, seal_for

__all__ = [
    "REPOSITORIES_STREAM",
    "KeyWrapper",
    "LocalKeyWrapper",
    "Queries",
    "RepositoryTokens",
    "SecretKeyError",
    "create_app",
    "register_repository",
    "request_run",
    "run_id_for",
    "seal_for",
]
