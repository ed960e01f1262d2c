"""A key-encryption key kept on this machine: the configured one, or a file in the data directory."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
from pathlib import Path

from conveyor_runtime import RuntimeSettings
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from conveyor_ingest.sealing import SecretKeyError

_WRAP_CONTEXT = b"conveyor data key"


class LocalKeyWrapper:
    """Wraps data keys with AES-256-GCM under a 32-byte key.

    Without a key given, the key is read from `key_file`, which is made (readable by its owner only) the
    first time a secret is sealed or opened: nothing is written for a system that never stores a secret.
    """

    def __init__(self, key: bytes | None = None, *, key_file: Path | None = None) -> None:
        if key is None and key_file is None:
            raise ValueError("a key or a key file is needed")
        if key is not None and len(key) != 32:
            raise ValueError(f"the key-encryption key must be 32 bytes, not {len(key)}")
        self._key = key
        self._key_file = key_file

    @classmethod
    def from_settings(cls, settings: RuntimeSettings) -> LocalKeyWrapper:
        return cls(settings.secret_key_bytes(), key_file=settings.secret_key_path)

    @property
    def key_id(self) -> str:
        return "local:" + hashlib.sha256(b"conveyor key id\x1f" + self._loaded()).hexdigest()[:16]

    def wrap(self, data_key: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self._loaded()).encrypt(nonce, data_key, _WRAP_CONTEXT)

    def unwrap(self, wrapped: bytes, key_id: str) -> bytes:
        if key_id != self.key_id:
            raise SecretKeyError(
                f"the secret was sealed with the key {key_id}, but this server's key is {self.key_id}:"
                " set CONVEYOR_SECRET_KEY (or the data directory's secret.key) to the key it was sealed with"
            )
        try:
            return AESGCM(self._loaded()).decrypt(wrapped[:12], wrapped[12:], _WRAP_CONTEXT)
        except (InvalidTag, ValueError) as error:
            raise SecretKeyError(f"the data key wrapped by {key_id} was altered") from error

    def _loaded(self) -> bytes:
        if self._key is None:
            assert self._key_file is not None
            self._key = _read_or_create(self._key_file)
        return self._key


def _read_or_create(path: Path) -> bytes:
    if not path.exists():
        _create(path)
    text = path.read_text().strip()
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32:
        raise SecretKeyError(f"{path}: not a 32-byte key in base64; restore it, or set CONVEYOR_SECRET_KEY")
    return key


def _create(path: Path) -> None:
    """Write a new key beside `path` and link it into place: another process making one too loses cleanly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(base64.b64encode(os.urandom(32)).decode() + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink()
