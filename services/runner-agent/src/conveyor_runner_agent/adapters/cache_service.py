"""The results service's `CacheService`: what `@actions/cache` (actions/cache v4) calls with the v2 cache service."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from conveyor_runner_agent.adapters.twirp import count, required, strings

if TYPE_CHECKING:
    from conveyor_runner_agent.adapters.results import Caller, Method, ResultsService

CACHES = "github.actions.results.api.v1.CacheService"


async def create_cache_entry(service: ResultsService, request: Request, caller: Caller, body: dict[str, Any]) -> Any:
    cache = await asyncio.to_thread(
        service.caches.reserve, caller.repository, caller.scope, required(body, "key"), required(body, "version")
    )
    return {"ok": True, "signed_upload_url": service.signed(request, "caches", cache.id, "w")}


async def finalize_cache_entry(service: ResultsService, request: Request, caller: Caller, body: dict[str, Any]) -> Any:
    cache = await asyncio.to_thread(
        service.caches.finalize,
        caller.repository,
        caller.scope,
        required(body, "key"),
        required(body, "version"),
        count(body, "size_bytes"),
    )
    return {"ok": True, "entry_id": str(cache.id)}


async def cache_download_url(service: ResultsService, request: Request, caller: Caller, body: dict[str, Any]) -> Any:
    cache = await asyncio.to_thread(
        service.caches.find,
        caller.repository,
        caller.scopes,
        required(body, "key"),
        strings(body, "restore_keys"),
        required(body, "version"),
    )
    if cache is None:
        return {"ok": False}
    url = service.signed(request, "caches", cache.id, "r", "cache.tzst")
    return {"ok": True, "signed_download_url": url, "matched_key": cache.key}


METHODS: dict[tuple[str, str], Method] = {
    (CACHES, "CreateCacheEntry"): create_cache_entry,
    (CACHES, "FinalizeCacheEntryUpload"): finalize_cache_entry,
    (CACHES, "GetCacheEntryDownloadURL"): cache_download_url,
}
