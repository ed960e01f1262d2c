"""Twirp's JSON protocol as the results service speaks it: request fields, errors, and protobuf's JSON values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse


class ResultsError(Exception):
    """What was asked of the results service cannot be done; `code` is Twirp's name for why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


STATUS = {
    "invalid_argument": 400,
    "malformed": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "failed_precondition": 412,
    "unavailable": 503,
}


def _value(body: dict[str, Any], name: str) -> Any:
    """A field by its proto name (`size_bytes`) or its JSON name (`sizeBytes`): Twirp's JSON takes either."""
    first, *rest = name.split("_")
    return body.get(name, body.get(first + "".join(part.title() for part in rest)))


def field(body: dict[str, Any], name: str) -> str | None:
    """A field of a request; wrapper values (`{"value": ...}`) unwrapped."""
    value = _value(body, name)
    if isinstance(value, dict):
        value = value.get("value")
    return None if value is None else str(value)


def required(body: dict[str, Any], name: str) -> str:
    value = field(body, name)
    if not value:
        raise ResultsError("invalid_argument", f"{name} is required")
    return value


def strings(body: dict[str, Any], name: str) -> list[str]:
    """A repeated string field."""
    value = _value(body, name) or []
    if not isinstance(value, list):
        raise ResultsError("invalid_argument", f"{name} is not a list")
    return [str(item) for item in value]


def count(body: dict[str, Any], name: str) -> int:
    """An int64 field (protobuf's JSON gives it as a string)."""
    value = field(body, name) or "0"
    if not value.isdigit():
        raise ResultsError("invalid_argument", f"{name} {value!r} is not a whole number")
    return int(value)


def timestamp(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        raise ResultsError("invalid_argument", f"{text!r} is not an RFC 3339 time") from None


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def error(code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": message}, status_code=STATUS.get(code, 500))
