"""The results service: artifacts up and down through GitHub's own client, and what a large upload costs in memory.

Baseline, measured in the same run: copying the same file on the same disk (`shutil.copyfile`), once each way.
The clients are the small actions scripts/actions-toolkit.sh bundles from `@actions/artifact` (run with the
machine's Node.js, as the runner runs JavaScript actions); a random file does not compress, so the zip is as
large as the file.

uv run python -m benchmarks bench_results
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from conveyor_runner_agent.adapters.artifact_service import ARTIFACTS
from conveyor_runner_agent.adapters.results import Caller, ResultsService

SIZE = 256 * 1024 * 1024
WHOLE = 128 * 1024 * 1024
"""The largest blob @actions/cache sends in one request (a Put Blob)."""
ROOT = Path(__file__).resolve().parent.parent


def toolkit() -> Path:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "actions-toolkit.sh")], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"scripts/actions-toolkit.sh failed:\n{done.stdout}\n{done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1].split("ready: ", 1)[1])


async def node(bundle: Path, env: dict[str, str], **inputs: str) -> float:
    """Seconds the action took to run."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        "node", str(bundle), env={**env, **{f"INPUT_{key.upper()}": value for key, value in inputs.items()}},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode:
        raise SystemExit(output.decode()[-2000:])
    return time.perf_counter() - started


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(folder: Path, bundles: Path) -> dict[str, float]:
    service = ResultsService(folder / "results")
    caller = Caller("run-1", "build", 1, "build", "acme/app", "refs/heads/main", ("refs/heads/main",))
    token = service.runtime_token(caller, lifetime=3600)
    env = {
        "PATH": os.environ["PATH"],
        "GITHUB_WORKSPACE": str(folder),
        "ACTIONS_RESULTS_URL": await service.url(),
        "ACTIONS_RUNTIME_TOKEN": token,
    }
    (folder / "up").mkdir()
    source = folder / "up" / "blob.bin"
    with source.open("wb") as file:
        for _ in range(SIZE // (1 << 24)):
            file.write(os.urandom(1 << 24))
    results: dict[str, float] = {}
    try:
        started = time.perf_counter()
        shutil.copyfile(source, folder / "copy.bin")
        results["baseline: copy the file, MiB/s"] = SIZE / (1 << 20) / (time.perf_counter() - started)
        upload = await node(bundles / "upload-artifact.js", env, name="big", path="up")
        results["upload-artifact, MiB/s"] = SIZE / (1 << 20) / upload
        download = await node(bundles / "download-artifact.js", env, name="big", path="down")
        results["download-artifact, MiB/s"] = SIZE / (1 << 20) / download

        async with httpx.AsyncClient(timeout=120) as http:
            created = await http.post(
                f"{env['ACTIONS_RESULTS_URL']}twirp/{ARTIFACTS}/CreateArtifact",
                json={"name": "whole"},
                headers={"Authorization": f"Bearer {token}"},
            )
        whole = folder / "whole.bin"
        with source.open("rb") as file, whole.open("wb") as out:
            for _ in range(WHOLE // (1 << 20)):
                out.write(file.read(1 << 20))
        before = peak_mib()
        put = ["curl", "-sSf", "-T", str(whole), "-H", "x-ms-blob-type: BlockBlob", created.json()["signed_upload_url"]]
        sent = await asyncio.create_subprocess_exec(*put)  # another process, so that only the service's memory counts
        if await sent.wait():
            raise SystemExit("the Put Blob failed")
        results["one 128 MiB Put Blob: the service's peak memory growth, MiB"] = peak_mib() - before
    finally:
        await service.stop()
    return results


def main() -> None:
    bundles = toolkit()
    with tempfile.TemporaryDirectory() as scratch:
        results = asyncio.run(measure(Path(scratch), bundles))
    for label, value in results.items():
        print(f"{label:<62} {value:>10,.1f}")
    baseline = results["baseline: copy the file, MiB/s"]
    for label in ("upload-artifact, MiB/s", "download-artifact, MiB/s"):
        print(f"ratio to baseline, {label:<43} {results[label] / baseline:>10.2f}x")


if __name__ == "__main__":
    main()
