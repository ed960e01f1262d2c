"""GitHub webhooks at the edge: a signed `push` delivery answered 202 once its `RunRequested` is durably appended.

Two processes, as a deployment runs them: `conveyor service ingest` (the HTTP API, uvicorn) and `conveyor service
projector` (which keeps the repository read model the edge looks secrets up in), over one SQLite log. The load
comes from benchmarks/loadgen (Go, built by this benchmark), so that the client's own cost stays small. Measured:
the time from sending a delivery to its 202, one in flight (p50/p99), and sustained deliveries/s with 32 in
flight. Baseline, measured in the same run with the same client: a bare uvicorn app whose POST answers 202 at
once (the HTTP floor on this machine).

uv run python -m benchmarks bench_webhooks
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

SECRET = "bench-webhook-secret"
LOADGEN = Path(__file__).parent / "loadgen"
SEQUENTIAL = 500
CONCURRENT = 3_000
IN_FLIGHT = 32
BARE_APP = textwrap.dedent(
    """
    import sys, uvicorn
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 202, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"id": "x"}'})
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def conveyor(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "conveyor"), *args]


@contextlib.contextmanager
def started(command: list[str], env: dict[str, str], output: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`command` running, its output in `output` (printed when the benchmark fails)."""
    with output.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield process
    except BaseException:
        sys.stderr.write(f"--- {' '.join(command[:3])}:\n{output.read_text(errors='replace')[-4000:]}\n")
        raise
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def push(sha: str) -> bytes:
    payload = {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": sha,
        "repository": {"full_name": "octo/bench", "default_branch": "main"},
        "sender": {"login": "octocat"},
    }
    return json.dumps(payload).encode()


def signed(body: bytes, delivery: str) -> dict[str, str]:
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature,
    }


def load(loadgen: Path, url: str, body: Path) -> tuple[list[float], float]:
    """(milliseconds to each answer one at a time, deliveries/s with IN_FLIGHT at once), as loadgen measured."""
    done = subprocess.run(
        [str(loadgen), "-url", url, "-body", str(body), "-secret", SECRET, "-sequential", str(SEQUENTIAL),
         "-total", str(CONCURRENT), "-concurrency", str(IN_FLIGHT)],
        capture_output=True, text=True, check=True,
    )
    measured = json.loads(done.stdout)
    if measured["failures"]:
        raise RuntimeError(f"{measured['failures']} deliveries to {url} failed:\n{done.stderr[-2000:]}")
    return measured["sequential_ms"], measured["per_second"]


async def ready(url: str, body: bytes, *, timeout: float = 30.0) -> None:
    """Until the edge takes a delivery (the server is up and the repository is in its read model)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            with contextlib.suppress(httpx.TransportError):
                response = await http.post(url, content=body, headers=signed(body, str(uuid.uuid4())))
                if response.status_code == 202:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not take a delivery within {timeout:.0f} s")
            await asyncio.sleep(0.2)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        repository, data = folder / "repository", folder / "data"
        repository.mkdir()
        git = ["git", "-C", str(repository), "-c", "user.name=B", "-c", "user.email=b@example.com"]
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "bench"], check=True)
        sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
        env = {**os.environ, "BENCH_SECRET": SECRET, "CONVEYOR_DATA_DIR": str(data)}
        subprocess.run(
            conveyor("repo-add", "octo/bench", str(repository), "--webhook-secret-env", "BENCH_SECRET"),
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        body = push(sha)
        body_file = folder / "push.json"
        body_file.write_bytes(body)
        loadgen = folder / "loadgen"
        subprocess.run(["go", "build", "-o", str(loadgen), "."], cwd=LOADGEN, check=True)
        bare_port, edge_port = free_port(), free_port()
        with started([sys.executable, "-c", BARE_APP, str(bare_port)], env, folder / "bare.log"):
            bare_url = f"http://127.0.0.1:{bare_port}/webhooks/github"
            asyncio.run(ready(bare_url, body))
            bare_latencies, bare_rate = load(loadgen, bare_url, body_file)
        with (
            started(conveyor("service", "projector"), env, folder / "projector.log"),
            started(conveyor("service", "ingest", "--port", str(edge_port)), env, folder / "ingest.log"),
        ):
            edge_url = f"http://127.0.0.1:{edge_port}/webhooks/github"
            asyncio.run(ready(edge_url, body))
            latencies, rate = load(loadgen, edge_url, body_file)
        with contextlib.closing(sqlite3.connect(data / "events.db")) as log:
            (stored,) = log.execute("SELECT COUNT(*) FROM events WHERE type = 'RunRequested'").fetchone()

    sent = 1 + SEQUENTIAL + CONCURRENT
    print(f"{'measure':<52} {'ingest':>10} {'bare HTTP':>10} {'ratio':>8}")
    for label, fraction in (("p50", 0.5), ("p99", 0.99)):
        mine, base = percentile(latencies, fraction), percentile(bare_latencies, fraction)
        print(f"{'delivery → 202 (RunRequested appended), ' + label + ' ms':<52} {mine:>10.2f} {base:>10.2f} "
              f"{mine / base:>7.2f}x")
    print(f"{f'deliveries/s, {IN_FLIGHT} in flight':<52} {rate:>10,.0f} {bare_rate:>10,.0f} {rate / bare_rate:>7.2f}x")
    print(f"RunRequested stored: {stored:,} of {sent:,} deliveries sent (targets: p99 ≤ 20 ms, ≥ 500/s)")


if __name__ == "__main__":
    main()
