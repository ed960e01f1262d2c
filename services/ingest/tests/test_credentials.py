"""Each repository's credentials for GitHub's API: its token, or its GitHub App's installation tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conveyor_events import Envelope
from conveyor_ingest import REPOSITORIES_STREAM, LocalKeyWrapper, RepositoryTokens, register_repository, seal_for
from conveyor_runtime import SqliteEventLog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

if TYPE_CHECKING:
    from tests.fakes.github_api import FakeGitHub

KEYS = LocalKeyWrapper(bytes(range(32)))


def pem_pair() -> tuple[str, str]:
    """A fresh RSA key, as GitHub gives an app's private key, and its public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[SqliteEventLog]:
    async with SqliteEventLog(tmp_path / "events.db") as opened:
        yield opened


async def register(log: SqliteEventLog, name: str, **credentials: object) -> None:
    event = register_repository(name, "/nowhere", **credentials)  # type: ignore[arg-type]
    await log.append([Envelope.wrap(event, stream=REPOSITORIES_STREAM)])


async def test_a_github_app_buys_installation_tokens_with_a_jwt_its_key_signs(
    log: SqliteEventLog, fake_github: FakeGitHub
) -> None:
    private, public = pem_pair()
    fake_github.add_app("4242", public)
    sealed = seal_for("octo/app", "app_private_key", private, KEYS)
    await register(log, "octo/app", app_id="4242", installation_id=77, app_private_key=sealed)
    tokens = RepositoryTokens(log, KEYS, api_url=fake_github.url)

    first = await tokens("OCTO/app")
    again = await tokens("octo/app")
    await tokens.aclose()

    assert first == again == "ghs_4242_77_1"  # kept until shortly before it expires: one call
    [call] = fake_github.recorded()
    assert (call.method, call.path, call.answered) == ("POST", "/app/installations/77/access_tokens", 201)
    assert call.headers["accept"] == "application/vnd.github+json"


async def test_a_key_github_does_not_know_gets_no_token(log: SqliteEventLog, fake_github: FakeGitHub) -> None:
    _, public = pem_pair()
    other, _ = pem_pair()
    fake_github.add_app("4242", public)
    sealed = seal_for("octo/app", "app_private_key", other, KEYS)
    await register(log, "octo/app", app_id="4242", installation_id=77, app_private_key=sealed)
    tokens = RepositoryTokens(log, KEYS, api_url=fake_github.url)

    assert await tokens("octo/app") is None
    await tokens.aclose()
    assert [call.answered for call in fake_github.recorded()] == [401]


async def test_a_token_the_latest_registration_and_none_without_credentials(
    log: SqliteEventLog, fake_github: FakeGitHub
) -> None:
    await register(log, "octo/app", token=seal_for("octo/app", "token", "ghp_first", KEYS))
    await register(log, "octo/app", token=seal_for("octo/app", "token", "ghp_second", KEYS))
    await register(log, "octo/bare")
    tokens = RepositoryTokens(log, KEYS, api_url=fake_github.url)

    assert await tokens("octo/app") == "ghp_second"
    assert await tokens("octo/bare") is None
    assert await tokens("octo/unknown") is None
    await tokens.aclose()
    assert fake_github.recorded() == []


def test_an_app_needs_all_three_of_its_credentials() -> None:
    with pytest.raises(ValueError, match="all three"):
        register_repository("octo/app", "/nowhere", app_id="4242", installation_id=77)
