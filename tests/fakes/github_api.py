"""A fake of GitHub's REST API that records every call: a real HTTP server on 127.0.0.1, on a free port.

It answers `201` with the status it was sent, unless told to fail the next calls (`fail_next`) with a status
and headers, as GitHub does when it is down (500) or rate limits a client (403 or 429 with rate-limit headers).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Call:
    """One request the fake received, and the status it answered."""

    method: str
    path: str
    headers: Mapping[str, str]
    """Header names in lower case."""
    body: Any
    answered: int


@dataclass
class _Failure:
    times: int
    status: int
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    only: Callable[[Any], bool] | None


@dataclass
class FakeGitHub:
    """Start it with `with FakeGitHub() as github:`; `github.url` is its API URL."""

    calls: list[Call] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake GitHub is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(
        self,
        times: int,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        message: str = "fake failure",
        only: Callable[[Any], bool] | None = None,
    ) -> None:
        """Answer the next `times` calls (whose JSON body `only` holds for) with `status`, `headers` and a message."""
        with self._lock:
            self._failures.append(_Failure(times, status, dict(headers or {}), {"message": message}, only))

    def recorded(self) -> list[Call]:
        """The calls so far, in the order they came."""
        with self._lock:
            return list(self.calls)

    def statuses(self) -> list[Call]:
        """The commit status calls GitHub took (answered 201)."""
        return [call for call in self.recorded() if call.answered == 201 and "/statuses/" in call.path]

    async def wait_for(self, done: Callable[[FakeGitHub], bool], *, timeout: float = 15.0) -> None:
        """Wait until `done(self)` holds; a TimeoutError shows the calls recorded."""
        try:
            async with asyncio.timeout(timeout):
                while not done(self):
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise TimeoutError(f"the fake GitHub saw only: {self.recorded()}") from None

    async def wait_for_calls(self, count: int, *, timeout: float = 15.0) -> None:
        """Wait until at least `count` calls came."""
        await self.wait_for(lambda github: len(github.recorded()) >= count, timeout=timeout)

    def _answer(
        self, method: str, path: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any]:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        with self._lock:
            failure = next((f for f in self._failures if f.only is None or f.only(body)), None)
            if failure is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                answer: tuple[int, dict[str, str], Any] = (failure.status, dict(failure.headers), dict(failure.body))
            elif method == "POST" and "/statuses/" in path and isinstance(body, dict):
                answer = (201, {}, {"id": len(self.calls) + 1, **body})
            else:
                answer = (404, {}, {"message": "Not Found"})
            self.calls.append(Call(method, path, dict(headers), body, answer[0]))
        return answer

    def __enter__(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, extra, body = fake._answer(self.command, self.path, headers, raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the calls are recorded instead."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-github", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

