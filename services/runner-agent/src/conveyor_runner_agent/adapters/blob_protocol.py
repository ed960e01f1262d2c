"""As much of Azure's Blob service as the toolkit's clients speak to a signed URL: `Put Block`, `Put Block List`,
`Put Blob` (a body written to its file as it arrives) and the errors, worded as Azure words them."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from typing import Protocol
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response

from conveyor_runner_agent.adapters import twirp
from conveyor_runner_agent.adapters.blobs import BlockWriter
from conveyor_runner_agent.adapters.twirp import ResultsError

WRITE_SIZE = 1 << 20
"""How much of an upload is gathered before it is written to its file."""


class Blocks(Protocol):
    """Where the blocks of numbered blobs are written."""

    def open_block(self, number: int, block_id: str) -> BlockWriter: ...


async def receive(request: Request, store: Blocks, number: int, block_id: str) -> None:
    """A request's body into one block, as it comes: a cache's archive may come whole (Put Blob), at hundreds of
    megabytes, and never waits in memory."""
    writer = await asyncio.to_thread(store.open_block, number, block_id)
    try:
        pending = bytearray()
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= WRITE_SIZE:
                await asyncio.to_thread(writer.write, bytes(pending))
                pending.clear()
        await asyncio.to_thread(writer.write, bytes(pending))
    except BaseException:
        await asyncio.to_thread(writer.abandon)
        raise
    await asyncio.to_thread(writer.finish)


def block_list(document: bytes) -> list[str]:
    """The block ids of a `Put Block List` body, in order (`Latest`, `Committed` and `Uncommitted` alike)."""
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as error:
        raise ResultsError("invalid_argument", f"the block list is not XML: {error}") from None
    return [element.text or "" for element in root if element.tag in ("Latest", "Committed", "Uncommitted")]


def blob_headers() -> dict[str, str]:
    now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    return {"x-ms-version": "2024-11-04", "x-ms-request-server-encrypted": "false", "date": now}


def blob_error(error: ResultsError) -> Response:
    """An error as Azure's Blob service words it: an XML `Error` with a code and a message."""
    code = {"not_found": "BlobNotFound", "permission_denied": "AuthenticationFailed"}.get(error.code, "InvalidInput")
    message = escape(str(error))
    body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(
        body,
        status_code=twirp.STATUS.get(error.code, 400),
        media_type="application/xml",
        headers={"x-ms-error-code": code},
    )
