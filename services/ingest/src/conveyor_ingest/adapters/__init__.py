"""Ingest's connections: local git repositories."""

from conveyor_ingest.adapters.git import GitError, resolve_ref

__all__ = ["GitError", "resolve_ref"]
