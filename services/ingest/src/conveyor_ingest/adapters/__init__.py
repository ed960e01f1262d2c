"""Ingest's connections: local git repositories and the local key that seals secrets."""

from conveyor_ingest.adapters.git import GitError, resolve_ref
from conveyor_ingest.adapters.local_key import LocalKeyWrapper

__all__ = ["GitError", "LocalKeyWrapper", "resolve_ref"]
