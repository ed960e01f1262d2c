"""The results service against GitHub's own client (`@actions/artifact`, bundled into small actions), and the
requests it refuses."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from conveyor_runner_agent.adapters.artifact_service import ARTIFACTS
from conveyor_runner_agent.adapters.results import Caller, ResultsService

RUN = "0b4cc8d2-5a0e-4c39-a3ce-4fb1c1b7a001"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ResultsService]:
    results = ResultsService(tmp_path / "results")
    yield results
    await results.stop()


async def action(
    toolkit: Path, bundle: str, service: ResultsService, workspace: Path, token: str, **inputs: str
) -> tuple[int, str]:
    """Run one of the bundled actions as the runner would: its inputs as INPUT_*, the results service's
    variables set; its exit code and output."""
    env = {
        "PATH": os.environ["PATH"],
        "GITHUB_WORKSPACE": str(workspace),
        "ACTIONS_RESULTS_URL": await service.url(),
        "ACTIONS_RUNTIME_TOKEN": token,
        **{f"INPUT_{key.upper()}": value for key, value in inputs.items()},
    }
    process = await asyncio.create_subprocess_exec(
        "node", str(toolkit / f"{bundle}.js"), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


def token(service: ResultsService, job: str = "build", attempt: int = 1, run: str = RUN) -> str:
    caller = Caller(run, job, attempt, f"{job}-backend", "acme/app", "refs/heads/main", ("refs/heads/main",))
    return service.runtime_token(caller, lifetime=600)


async def test_an_artifact_of_several_blocks_goes_up_and_comes_back_whole(
    actions_toolkit: Path, service: ResultsService, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    (source / "nested").mkdir(parents=True)
    blob = os.urandom(9 * 1024 * 1024)  # the client sends 8 MiB blocks: two of them, then the block list
    (source / "nested" / "big.bin").write_bytes(blob)
    (source / "small.txt").write_text("small\n")

    code, output = await action(
        actions_toolkit, "upload-artifact", service, tmp_path, token(service), name="big", path="source"
    )
    assert code == 0, output
    assert "Artifact big successfully finalized. Artifact ID 1" in output

    code, output = await action(
        actions_toolkit, "download-artifact", service, tmp_path, token(service, "test"), name="big", path="back"
    )
    assert code == 0, output
    assert (tmp_path / "back" / "nested" / "big.bin").read_bytes() == blob
    assert (tmp_path / "back" / "small.txt").read_text() == "small\n"
    [stored] = service.artifacts.list(RUN)
    content = service.artifacts.content(stored.id).read_bytes()
    assert stored.digest == f"sha256:{hashlib.sha256(content).hexdigest()}"
    assert stored.size == len(content)
    assert stored.job_id == "build"


async def test_a_name_is_taken_once_per_run_but_a_rerun_of_the_same_job_replaces_its_artifact(
    actions_toolkit: Path, service: ResultsService, tmp_path: Path
) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.txt").write_text("first\n")
    code, output = await action(
        actions_toolkit, "upload-artifact", service, tmp_path, token(service), name="a", path="files"
    )
    assert code == 0, output

    code, output = await action(
        actions_toolkit, "upload-artifact", service, tmp_path, token(service, "other"), name="a", path="files"
    )
    assert code == 1
    assert "(409) Conflict: an artifact with the name 'a' already exists on the workflow run" in output

    (tmp_path / "files" / "a.txt").write_text("second\n")
    code, output = await action(
        actions_toolkit, "upload-artifact", service, tmp_path, token(service, attempt=2), name="a", path="files"
    )
    assert code == 0, output
    [artifact] = service.artifacts.list(RUN)
    assert artifact.attempt == 2

    code, output = await action(
        actions_toolkit, "download-artifact", service, tmp_path, token(service, run="another-run"), path="elsewhere"
    )
    assert code == 0, output
    assert not (tmp_path / "elsewhere").exists() or not any((tmp_path / "elsewhere").iterdir())  # another run's


async def test_requests_without_a_good_token_or_signature_are_refused(service: ResultsService) -> None:
    base = await service.url()
    create = f"{base}twirp/{ARTIFACTS}/CreateArtifact"
    body = {"workflow_run_backend_id": RUN, "workflow_job_run_backend_id": "x", "name": "n", "version": 4}
    async with httpx.AsyncClient() as http:
        unsigned = await http.post(create, json=body)
        assert unsigned.status_code == 401
        assert unsigned.json()["code"] == "unauthenticated"

        forged = await http.post(create, json=body, headers={"Authorization": "Bearer a.b.c"})
        assert forged.status_code == 401

        good = {"Authorization": f"Bearer {token(service)}"}
        other_run = await http.post(create, json={**body, "workflow_run_backend_id": "other"}, headers=good)
        assert other_run.status_code == 403
        assert other_run.json()["code"] == "permission_denied"

        created = await http.post(create, json=body, headers=good)
        assert created.status_code == 200, created.text
        upload_url = created.json()["signed_upload_url"]
        tampered = upload_url.replace("sp=w", "sp=r")
        refused = await http.put(tampered, content=b"data", headers={"x-ms-blob-type": "BlockBlob"})
        assert refused.status_code == 403
        assert "<Code>AuthenticationFailed</Code>" in refused.text

        stored = await http.put(upload_url, content=b"data", headers={"x-ms-blob-type": "BlockBlob"})
        assert stored.status_code == 201
        finalize = f"{base}twirp/{ARTIFACTS}/FinalizeArtifact"
        wrong_size = await http.post(finalize, json={"name": "n", "size": "5"}, headers=good)
        assert wrong_size.status_code == 400
        assert wrong_size.json()["msg"] == "artifact 'n' holds 4 bytes, not the 5 reported"

        unknown = await http.post(f"{base}twirp/{ARTIFACTS}/Nothing", json={}, headers=good)
        assert unknown.status_code == 404
        assert unknown.json()["code"] == "bad_route"


async def test_a_blob_sent_whole_is_written_as_it_streams_in(service: ResultsService) -> None:
    base = await service.url()
    good = {"Authorization": f"Bearer {token(service)}"}
    pieces = [os.urandom(1 << 20) for _ in range(20)]

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    async with httpx.AsyncClient(timeout=30) as http:
        body_of_create = {"name": "big", "version": 4}
        created = await http.post(f"{base}twirp/{ARTIFACTS}/CreateArtifact", json=body_of_create, headers=good)
        stored = await http.put(created.json()["signed_upload_url"], content=body())
        assert stored.status_code == 201, stored.text
        finalize = {"name": "big", "size": str(20 << 20)}
        finalized = await http.post(f"{base}twirp/{ARTIFACTS}/FinalizeArtifact", json=finalize, headers=good)
        assert finalized.status_code == 200, finalized.text

    [artifact] = service.artifacts.list(RUN)
    assert artifact.digest == f"sha256:{hashlib.sha256(b''.join(pieces)).hexdigest()}"


async def test_what_older_clients_and_azure_sdks_send_is_understood(service: ResultsService) -> None:
    base = await service.url()
    caller = {"Authorization": f"Bearer {token(service)}"}
    async with httpx.AsyncClient(timeout=30) as http:
        # @actions/artifact 2.x (upload-artifact v4.0 to v4.6) names no media type and calls its blob a bare 'zip'.
        created = await http.post(f"{base}twirp/{ARTIFACTS}/CreateArtifact", json={"name": "old"}, headers=caller)
        upload = created.json()["signed_upload_url"]
        staged = await http.put(f"{upload}&comp=block&blockid=QQ==", content=b"0123456789")
        assert staged.status_code == 201
        block_list = b'<?xml version="1.0" encoding="utf-8"?><BlockList><Latest>QQ==</Latest></BlockList>'
        bare = {"x-ms-blob-content-type": "zip"}
        committed = await http.put(f"{upload}&comp=blocklist", content=block_list, headers=bare)
        assert committed.status_code == 201
        finalize = {"name": "old", "size": 10}
        assert (await http.post(f"{base}twirp/{ARTIFACTS}/FinalizeArtifact", json=finalize, headers=caller)).is_success
        signed = await http.post(f"{base}twirp/{ARTIFACTS}/GetSignedArtifactURL", json={"name": "old"}, headers=caller)
        url = signed.json()["signed_url"]
        assert url.split("?")[0].endswith("/old.zip")  # a newer client unzips what it downloads from there

        # Azure's SDKs ask for a part of a blob with x-ms-range.
        part = await http.get(url, headers={"x-ms-range": "bytes=2-5"})
        assert (part.status_code, part.content) == (206, b"2345")
        assert part.headers["content-type"] == "application/zip"

    # What BuildKit's gha cache reads of a token.
    claims = jwt.decode(token(service), options={"verify_signature": False})
    assert json.loads(claims["ac"]) == [{"Scope": "refs/heads/main", "Permission": 3}]
    assert claims["nbf"] <= claims["iat"] < claims["exp"]
