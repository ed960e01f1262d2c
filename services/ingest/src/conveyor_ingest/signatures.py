"""GitHub's webhook signatures: `X-Hub-Signature-256` is the HMAC-SHA256 of the raw body under the secret."""

from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body` signed with `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """True when `header` signs `body` with `secret`, compared in constant time; never with an empty secret."""
    if not secret or not header:
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.encode())
