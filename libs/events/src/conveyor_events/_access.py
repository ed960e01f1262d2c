"""Access to the REST API: API tokens and runner credentials, on the `access` stream.

Only the SHA-256 of a secret is ever appended: a secret is shown once, to whoever it was issued to, and
whoever reads the log learns nothing they could present to the API.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from conveyor_events._base import Event

ACCESS_STREAM = "access"
"""The stream every token's issue and revocation, and every runner credential, is appended to."""

AccessRole = Literal["read", "write", "maintain", "admin"]
"""What a token may do on a repository; each role includes the ones before it."""


class ApiTokenIssued(Event):
    """An API token was issued: from now on the secret whose SHA-256 is `token_hash` acts with `grants`.

    `grants` maps a repository's registered name, or `*` for every repository, to a role.
    """

    token_id: str
    name: str
    token_hash: str
    grants: dict[str, AccessRole] = Field(default_factory=dict)


class ApiTokenRevoked(Event):
    """An API token was revoked: its secret opens nothing any more."""

    token_id: str


class RunnerCredentialIssued(Event):
    """A runner was given its credential: the secret whose SHA-256 is `credential_hash` acts as that runner."""

    runner_id: str
    credential_hash: str
