"""Secrets at rest: a fresh data key per secret, wrapped by the key-encryption key; only ciphertext is kept."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from conveyor_events import Envelope, SealedSecret, envelope_from_json
from conveyor_ingest import LocalKeyWrapper, SecretKeyError, register_repository, seal_for
from conveyor_ingest.sealing import seal, secret_context, unseal
from conveyor_runtime import RuntimeSettings
from pydantic import ValidationError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
SECRET = "correct horse battery staple"


def test_a_sealed_secret_opens_with_its_key_and_context() -> None:
    keys = LocalKeyWrapper(KEY)
    sealed = seal(SECRET, keys, context="ctx")
    assert unseal(sealed, keys, context="ctx") == SECRET
    assert sealed.key_id == keys.key_id


def test_each_secret_gets_its_own_data_key_and_nonce() -> None:
    keys = LocalKeyWrapper(KEY)
    first, second = seal(SECRET, keys, context="ctx"), seal(SECRET, keys, context="ctx")
    assert first.wrapped_key != second.wrapped_key
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext


def test_the_sealed_form_holds_no_plaintext() -> None:
    sealed = seal(SECRET, LocalKeyWrapper(KEY), context="ctx")
    text = sealed.model_dump_json()
    assert SECRET not in text
    assert base64.b64encode(SECRET.encode()).decode() not in text


def test_another_key_is_refused_with_a_clear_error() -> None:
    sealed = seal(SECRET, LocalKeyWrapper(KEY), context="ctx")
    other = LocalKeyWrapper(OTHER_KEY)
    with pytest.raises(SecretKeyError, match=rf"sealed with the key {sealed.key_id}.*CONVEYOR_SECRET_KEY"):
        unseal(sealed, other, context="ctx")


def test_an_altered_or_moved_secret_is_refused() -> None:
    keys = LocalKeyWrapper(KEY)
    sealed = seal(SECRET, keys, context=secret_context("app", "webhook_secret"))
    with pytest.raises(SecretKeyError, match=r"'other'.*altered, or sealed for something else"):
        unseal(sealed, keys, context=secret_context("other", "webhook_secret"))
    flipped = bytearray(base64.b64decode(sealed.ciphertext))
    flipped[0] ^= 1
    altered = sealed.model_copy(update={"ciphertext": base64.b64encode(bytes(flipped)).decode()})
    with pytest.raises(SecretKeyError):
        unseal(altered, keys, context=secret_context("app", "webhook_secret"))
    wrapped = bytearray(base64.b64decode(sealed.wrapped_key))
    wrapped[-1] ^= 1
    rewrapped = sealed.model_copy(update={"wrapped_key": base64.b64encode(bytes(wrapped)).decode()})
    with pytest.raises(SecretKeyError, match="altered"):
        unseal(rewrapped, keys, context=secret_context("app", "webhook_secret"))


def test_without_a_configured_key_one_is_made_in_the_data_directory_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    settings = RuntimeSettings(data_dir=tmp_path / "data")
    keys = LocalKeyWrapper.from_settings(settings)
    assert not settings.secret_key_path.exists()  # nothing is written until a secret is

    sealed = seal(SECRET, keys, context="ctx")

    assert stat.S_IMODE(settings.secret_key_path.stat().st_mode) == 0o600
    assert len(base64.b64decode(settings.secret_key_path.read_text())) == 32
    assert [path.name for path in settings.secret_key_path.parent.iterdir()] == ["secret.key"]
    again = LocalKeyWrapper.from_settings(settings)  # a restart reads the same key
    assert unseal(sealed, again, context="ctx") == SECRET


def test_a_configured_key_is_used_and_the_data_directory_keeps_none(tmp_path: Path) -> None:
    settings = RuntimeSettings(data_dir=tmp_path / "data", secret_key=base64.b64encode(KEY).decode())
    sealed = seal(SECRET, LocalKeyWrapper.from_settings(settings), context="ctx")
    assert unseal(sealed, LocalKeyWrapper(KEY), context="ctx") == SECRET
    assert not settings.secret_key_path.exists()


def test_a_configured_key_must_be_32_bytes_of_base64() -> None:
    for wrong in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ValidationError, match="CONVEYOR_SECRET_KEY must be 32 bytes in base64"):
            RuntimeSettings(secret_key=wrong)


def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_text("garbage\n")
    with pytest.raises(SecretKeyError, match=r"secret.key: not a 32-byte key"):
        seal(SECRET, LocalKeyWrapper(key_file=key_file), context="ctx")


def test_an_empty_secret_is_no_secret() -> None:
    keys = LocalKeyWrapper(KEY)
    assert seal_for("app", "token", "", keys) is None
    assert seal_for("app", "token", None, keys) is None


def test_a_registration_carries_only_ciphertext_and_reads_back() -> None:
    keys = LocalKeyWrapper(KEY)
    event = register_repository(
        "octo/app", "/src/app", webhook_secret=seal_for("octo/app", "webhook_secret", SECRET, keys)
    )
    stored = Envelope.wrap(event, stream="repositories").to_json()
    assert SECRET not in stored
    read = envelope_from_json(stored).event
    assert read == event
    assert event.github == "octo/app"
    assert isinstance(event.webhook_secret, SealedSecret)
    assert unseal(event.webhook_secret, keys, context=secret_context("octo/app", "webhook_secret")) == SECRET


def test_a_registration_written_before_secrets_existed_still_loads() -> None:
    old = (
        '{"event_id":"e1","type":"RepositoryRegistered","schema_version":1,"stream":"repositories","sequence":1,'
        '"position":1,"occurred_at":"2026-01-01T00:00:00Z","correlation_id":"repositories","causation_id":null,'
        '"traceparent":null,"tracestate":null,"data":{"name":"app","url":"/src/app","default_branch":"main"}}'
    )
    event = envelope_from_json(old).event
    assert (event.github, event.webhook_secret, event.token) == (None, None, None)  # type: ignore[attr-defined]
