"""The runner's identity kept in its work directory, so that a restarted agent is the same runner to its server."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

from conveyor_runner_agent.adapters.server import ConveyorServer, Identity, Unavailable

IDENTITY_FILE = "runner.json"
logger = logging.getLogger(__name__)


def saved_identity(work_dir: Path, server: str, labels: list[str]) -> Identity | None:
    """The identity saved for `server` with these labels, or None: another server or other labels register anew."""
    path = work_dir / IDENTITY_FILE
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a runner identity ({error}); delete it to register again") from None
    if document.get("server") != server.rstrip("/") or document.get("labels") != labels:
        return None
    return Identity(str(document["runner_id"]), str(document["credential"]))


def save_identity(work_dir: Path, server: str, labels: list[str], identity: Identity) -> Path:
    """Write the identity (its credential included) to a file only its owner may read; where it went."""
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / IDENTITY_FILE
    document = {
        "server": server.rstrip("/"),
        "labels": labels,
        "runner_id": identity.runner_id,
        "credential": identity.credential,
    }
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        os.fchmod(file.fileno(), 0o600)
        json.dump(document, file)
    return path


async def join(
    server: ConveyorServer, work_dir: Path, name: str, labels: list[str], token: str | None, *, pause: float = 2.0
) -> Identity:
    """Become a runner of `server`: the identity saved for it and these labels, else a new registration made with
    `token` (an API token with admin on every repository) and saved. A server not reachable yet is asked again."""
    identity = saved_identity(work_dir, server.base_url, labels)
    while identity is None:
        if not token:
            raise ValueError(
                f"no runner identity is saved in {work_dir / IDENTITY_FILE} for {server.base_url} with these labels: "
                "give an API token with admin on every repository to register with (see --help)"
            )
        try:
            identity = await server.register(token, name, labels)
        except Unavailable as error:
            logger.warning("could not register with %s (%s); trying again in %g s", server.base_url, error, pause)
            await asyncio.sleep(pause)
            continue
        path = save_identity(work_dir, server.base_url, labels, identity)
        logger.info("registered as runner %s; its credential is in %s", identity.runner_id, path)
    server.identity = identity
    return identity
