"""Reading `NAME=VALUE` flags and .env files the way act does."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from dotenv import dotenv_values


def parse_pairs(values: Iterable[str], flag: str, *, from_environment: bool = False) -> dict[str, str]:
    """`NAME=VALUE` items as a mapping; with `from_environment`, a bare `NAME` takes the environment's value."""
    pairs: dict[str, str] = {}
    for item in values:
        name, equals, value = item.partition("=")
        if not name:
            raise ValueError(f"{flag} {item!r}: expected NAME=VALUE")
        if not equals:
            if not from_environment:
                raise ValueError(f"{flag} {item!r}: expected NAME=VALUE")
            if name not in os.environ:
                raise ValueError(f"{flag} {name}: no value given and no {name} in the environment")
            value = os.environ[name]
        pairs[name] = value
    return pairs


def read_env_file(path: Path | None) -> dict[str, str]:
    """A .env file's variables (none when `path` is None); a missing file is an error that names it."""
    if path is None:
        return {}
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    return {name: value or "" for name, value in dotenv_values(path).items()}


def parse_platforms(values: Iterable[str]) -> dict[str, str]:
    """act's `-P LABEL=IMAGE`: jobs with that `runs-on` label run in IMAGE; `-self-hosted` keeps them on the host."""
    platforms: dict[str, str] = {}
    for label, image in parse_pairs(values, "-P").items():
        platforms[label] = "" if image == "-self-hosted" else image
    return platforms
