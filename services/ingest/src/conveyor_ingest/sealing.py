"""Secrets at rest: envelope encryption, so the log and the read models only ever hold ciphertext.

Each secret gets a fresh AES-256-GCM data key; the data key is wrapped by a key-encryption key that a
`KeyWrapper` holds (a local key here, a KMS elsewhere) and never hands out. The ciphertext is bound to what it
is the secret of (`context`), so a sealed value copied onto another repository does not open there.
"""

from __future__ import annotations

import base64
import os
from typing import Protocol

from conveyor_events import SealedSecret
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class SecretKeyError(Exception):
    """A sealed secret cannot be opened with this key: another key sealed it, or it was altered."""


class KeyWrapper(Protocol):
    """Holds a key-encryption key and wraps data keys with it."""

    @property
    def key_id(self) -> str:
        """Names the key-encryption key, so a secret sealed by another key is told apart from a damaged one."""
        ...

    def wrap(self, data_key: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, key_id: str) -> bytes:
        """The data key; `SecretKeyError` when `key_id` is not this key or `wrapped` was altered."""
        ...


def secret_context(repository: str, field: str) -> str:
    """What a repository's secret is bound to: its name and which secret it is."""
    return f"the {field} of the repository {repository!r}"


def seal_for(repository: str, field: str, value: str | None, keys: KeyWrapper) -> SealedSecret | None:
    """A repository's secret sealed, None when there is none (an empty value is none)."""
    return seal(value, keys, context=secret_context(repository, field)) if value else None


def seal(plaintext: str, keys: KeyWrapper, *, context: str) -> SealedSecret:
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext.encode(), context.encode())
    return SealedSecret(
        key_id=keys.key_id,
        wrapped_key=_text(keys.wrap(data_key)),
        nonce=_text(nonce),
        ciphertext=_text(ciphertext),
    )


def unseal(sealed: SealedSecret, keys: KeyWrapper, *, context: str) -> str:
    data_key = keys.unwrap(_bytes(sealed.wrapped_key), sealed.key_id)
    try:
        plaintext = AESGCM(data_key).decrypt(_bytes(sealed.nonce), _bytes(sealed.ciphertext), context.encode())
    except (InvalidTag, ValueError) as error:
        raise SecretKeyError(f"{context} cannot be opened: it was altered, or sealed for something else") from error
    return plaintext.decode()


def _text(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _bytes(text: str) -> bytes:
    return base64.b64decode(text)
