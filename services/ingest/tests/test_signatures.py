"""GitHub's `X-Hub-Signature-256`: HMAC-SHA256 of the raw body, compared in constant time."""

from __future__ import annotations

from conveyor_ingest.signatures import signature, signature_valid

# The test values of GitHub's "Validating webhook deliveries".
SECRET = "It's a Secret to Everybody"
BODY = b"Hello, World!"
EXPECTED = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_documented_test_vector() -> None:
    assert signature(SECRET, BODY) == EXPECTED
    assert signature_valid(SECRET, BODY, EXPECTED)


def test_a_changed_body_secret_or_signature_does_not_verify() -> None:
    assert not signature_valid(SECRET, BODY + b" ", EXPECTED)
    assert not signature_valid("another secret", BODY, EXPECTED)
    assert not signature_valid(SECRET, BODY, EXPECTED[:-1] + "f")
    assert not signature_valid(SECRET, BODY, EXPECTED.upper())


def test_no_header_an_sha1_header_or_an_empty_secret_never_verifies() -> None:
    assert not signature_valid(SECRET, BODY, None)
    assert not signature_valid(SECRET, BODY, "")
    assert not signature_valid(SECRET, BODY, "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59")
    assert not signature_valid("", BODY, signature("", BODY))


def test_a_header_that_is_not_ascii_is_refused_not_raised() -> None:
    assert not signature_valid(SECRET, BODY, "sha256=é")
