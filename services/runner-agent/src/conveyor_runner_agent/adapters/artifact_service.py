"""The results service's `ArtifactService`: what `@actions/artifact` (upload-artifact, download-artifact v4) calls."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from conveyor_events import ArtifactDeleted, ArtifactUploaded, deterministic_id
from starlette.requests import Request

from conveyor_runner_agent.adapters.twirp import ResultsError, count, field, required, rfc3339, timestamp

if TYPE_CHECKING:
    from conveyor_runner_agent.adapters.results import Caller, Method, ResultsService

ARTIFACTS = "github.actions.results.api.v1.ArtifactService"
ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed", "application/zip-compressed", "zip"})


async def create_artifact(service: ResultsService, request: Request, caller: Caller, body: dict[str, Any]) -> Any:
    expires = field(body, "expires_at")
    artifact = await asyncio.to_thread(
        service.artifacts.create,
        caller.uploader,
        required(body, "name"),
        field(body, "mime_type") or "application/zip",
        timestamp(expires) if expires else None,
    )
    return {"ok": True, "signed_upload_url": service.signed(request, "artifacts", artifact.id, "w")}


async def finalize_artifact(service: ResultsService, request: Request, caller: Caller, body: dict[str, Any]) -> Any:
    artifact = await asyncio.to_thread(
        service.artifacts.finalize,
        caller.uploader,
        required(body, "name"),
        count(body, "size"),
        field(body, "hash"),
    )
    uploaded = ArtifactUploaded(
        run_id=caller.run_id,
        job_id=caller.job_id,
        attempt=caller.attempt,
        artifact_id=artifact.id,
        name=artifact.name,
        size=artifact.size or 0,
        digest=artifact.digest or "",
    )
    service.report(caller, uploaded)
    return {"ok": True, "artifact_id": str(artifact.id)}


async def list_artifacts(service: ResultsService, request: Request, caller: Caller, body: dict[str, Any]) -> Any:
    by_id = field(body, "id_filter")
    found = await asyncio.to_thread(
        service.artifacts.list,
        caller.run_id,
        name=field(body, "name_filter"),
        artifact_id=count(body, "id_filter") if by_id is not None else None,
    )
    return {
        "artifacts": [
            {
                "workflow_run_backend_id": artifact.run_id,
                "workflow_job_run_backend_id": deterministic_id(artifact.run_id, artifact.job_id),
                "database_id": str(artifact.id),
                "name": artifact.name,
                "size": str(artifact.size or 0),
                "created_at": rfc3339(artifact.created_at),
                **({"digest": artifact.digest} if artifact.digest else {}),
            }
            for artifact in found
        ]
    }


async def signed_artifact_url(service: ResultsService, request: Request, caller: Caller, body: dict[str, Any]) -> Any:
    name = required(body, "name")
    found = await asyncio.to_thread(service.artifacts.list, caller.run_id, name=name)
    if not found:
        raise ResultsError("not_found", f"the run has no artifact named '{name}'")
    artifact = found[-1]
    filename = f"{name}.zip" if artifact.mime_type in ZIP_TYPES else name  # a zip's URL ends in .zip, as GitHub's
    return {"signed_url": service.signed(request, "artifacts", artifact.id, "r", quote(filename))}


async def delete_artifact(service: ResultsService, request: Request, caller: Caller, body: dict[str, Any]) -> Any:
    artifact = await asyncio.to_thread(service.artifacts.delete, caller.run_id, required(body, "name"))
    deleted = ArtifactDeleted(
        run_id=caller.run_id, job_id=caller.job_id, attempt=caller.attempt, artifact_id=artifact.id, name=artifact.name
    )
    service.report(caller, deleted)
    return {"ok": True, "artifact_id": str(artifact.id)}


METHODS: dict[tuple[str, str], Method] = {
    (ARTIFACTS, "CreateArtifact"): create_artifact,
    (ARTIFACTS, "FinalizeArtifact"): finalize_artifact,
    (ARTIFACTS, "ListArtifacts"): list_artifacts,
    (ARTIFACTS, "GetSignedArtifactURL"): signed_artifact_url,
    (ARTIFACTS, "DeleteArtifact"): delete_artifact,
}
