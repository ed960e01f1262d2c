"""The API's health probes: no token needed, ready once every service loop caught up with the log."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from conveyor_cli.consumers import CONSUMERS
from conveyor_cli.system import EmbeddedSystem
from conveyor_runtime import RuntimeSettings

pytestmark = pytest.mark.e2e


async def test_the_api_answers_its_probes_without_a_token_once_every_loop_caught_up(
    settings: RuntimeSettings,
) -> None:
    system = EmbeddedSystem(settings)
    async with system.running():
        transport = httpx.ASGITransport(app=system.api())
        async with httpx.AsyncClient(transport=transport, base_url="http://conveyor") as http:
            async with asyncio.timeout(20):
                while (ready := await http.get("/readyz")).status_code != 200:
                    assert ready.status_code == 503, ready.text
                    await asyncio.sleep(0.05)
            alive = await http.get("/healthz")
            refused = await http.get("/api/runs")
            document = (await http.get("/openapi.json")).json()

    assert ready.json() == {"status": "ok", "log": "open", "loops": dict.fromkeys(sorted(CONSUMERS), "ready")}
    assert alive.status_code == 200
    assert refused.status_code == 401  # the rest of the API still wants a token
    assert not {"/healthz", "/readyz"} & set(document["paths"])  # for orchestrators, not in the API's document
