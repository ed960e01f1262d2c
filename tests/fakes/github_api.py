"""A fake of GitHub's REST API that records every call: a real HTTP server on 127.0.0.1, on a free port.

It answers `201` with the status it was sent, unless told to fail the next calls (`fail_next`) with a status
and headers, as GitHub does when it is down (500) or rate limits a client (403 or 429 with rate-limit headers).

It also serves repository webhooks (https://docs.github.com/rest/repos/webhooks) a test sets up with `add_hook`
and `add_delivery`: `GET /repos/{owner}/{repo}/hooks`, `GET .../hooks/{hook_id}/deliveries` newest first, a page at
a time with a `cursor` named in the `Link` header, and `POST .../deliveries/{delivery_id}/attempts` (202), which
lists a new `redelivery: true` attempt of the same guid and, for a delivery added with its payload, POSTs that
payload signed with the hook's secret to the hook's URL as GitHub does. A repository without hooks answers 404.

And GitHub Apps a test sets up with `add_app`: `POST /app/installations/{id}/access_tokens` checks the JWT
(RS256, signed by the app's key, `iss` the app's id, at most 10 minutes long, not expired) and answers 201 with a
new installation token that expires in an hour; `installation_tokens` lists the tokens given.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt


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
    path: str | None = None


@dataclass
class Hook:
    """A repository webhook: where it delivers, the secret it signs with, and its deliveries in the order made."""

    id: int
    repository: str
    url: str
    secret: str | None
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    """Each as GitHub lists it (`id`, `guid`, `delivered_at`, `redelivery`, `status`, `status_code`, `event` …)."""
    requests: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    """By guid: the event and the body a delivery was sent with, sent again when it is redelivered."""

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "Repository",
            "name": "web",
            "active": True,
            "events": ["*"],
            "config": {"url": self.url, "content_type": "json", "insecure_ssl": "0"},
        }


_ACCESS_TOKENS = re.compile(r"^/app/installations/(?P<installation>\d+)/access_tokens$")
_HOOKS = re.compile(
    r"^/repos/(?P<repo>[^/]+/[^/]+)/hooks(?:/(?P<hook>\d+)/deliveries(?:/(?P<delivery>\d+)/attempts)?)?$"
)


@dataclass
class FakeGitHub:
    """Start it with `with FakeGitHub() as github:`; `github.url` is its API URL."""

    calls: list[Call] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    apps: dict[str, str] = field(default_factory=dict)
    """GitHub Apps by id: the public key (PEM) their JWTs are checked with."""
    installation_tokens: list[str] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _redeliveries: list[threading.Thread] = field(default_factory=list)
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
        path: str | None = None,
    ) -> None:
        """Answer the next `times` calls (whose JSON body `only` holds for, whose path holds `path`) with `status`,
        `headers` and a message."""
        with self._lock:
            self._failures.append(_Failure(times, status, dict(headers or {}), {"message": message}, only, path))

    def recorded(self) -> list[Call]:
        """The calls so far, in the order they came."""
        with self._lock:
            return list(self.calls)

    def statuses(self) -> list[Call]:
        """The commit status calls GitHub took (answered 201)."""
        return [call for call in self.recorded() if call.answered == 201 and "/statuses/" in call.path]

    def add_hook(self, repository: str, url: str, *, secret: str | None = None) -> Hook:
        """A webhook of `repository` (`owner/name`) that delivers to `url`, signing with `secret`."""
        with self._lock:
            hook = Hook(id=1000 + len(self.hooks) + 1, repository=repository, url=url, secret=secret)
            self.hooks.append(hook)
        return hook

    def add_delivery(
        self,
        hook: Hook,
        guid: str,
        *,
        event: str = "push",
        delivered_at: datetime | None = None,
        status_code: int = 502,
        redelivery: bool = False,
        payload: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A delivery GitHub made (by default one that failed: 502), with the payload it sent when given."""
        with self._lock:
            if payload is not None:
                hook.requests[guid] = (event, json.dumps(payload).encode())
            return self._delivered(hook, guid, event, delivered_at or datetime.now(UTC), status_code, redelivery)

    def add_app(self, app_id: str, public_key: str) -> None:
        """A GitHub App whose JWTs `public_key` (PEM) checks; any installation id of it gets tokens."""
        with self._lock:
            self.apps[app_id] = public_key

    def _access_token(self, installation: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str], Any]:
        """An installation token for a valid app JWT (the lock is held)."""
        presented = headers.get("authorization", "").removeprefix("Bearer ")
        try:
            issuer = str(jwt.decode(presented, options={"verify_signature": False})["iss"])
            claims = jwt.decode(presented, self.apps[issuer], algorithms=["RS256"], options={"require": ["exp", "iat"]})
        except (jwt.PyJWTError, KeyError):
            return 401, {}, {"message": "A JSON web token could not be decoded"}
        if claims["exp"] - claims["iat"] > 600:
            return 401, {}, {"message": "'Expiration time' claim ('exp') is too far in the future"}
        token = f"ghs_{issuer}_{installation}_{len(self.installation_tokens) + 1}"
        self.installation_tokens.append(token)
        expires = datetime.fromtimestamp(datetime.now(UTC).timestamp() + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return 201, {}, {"token": token, "expires_at": expires, "permissions": {"statuses": "write"}}

    def redeliveries(self) -> list[Call]:
        """The redelivery requests GitHub took (answered 202)."""
        return [call for call in self.recorded() if call.answered == 202 and call.path.endswith("/attempts")]

    def _delivered(
        self, hook: Hook, guid: str, event: str, at: datetime, status_code: int, redelivery: bool
    ) -> dict[str, Any]:
        delivery = {
            "id": 1 + sum(len(h.deliveries) for h in self.hooks),
            "guid": guid,
            "delivered_at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "redelivery": redelivery,
            "duration": 0.01,
            "status": "OK" if 200 <= status_code < 300 else ("failed to connect" if status_code >= 500 else "Invalid"),
            "status_code": status_code,
            "event": event,
            "action": None,
            "installation_id": None,
            "repository_id": hook.id,
        }
        hook.deliveries.append(delivery)
        return delivery

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
            failure = next(
                (f for f in self._failures if (f.only is None or f.only(body)) and (f.path is None or f.path in path)),
                None,
            )
            if failure is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                answer: tuple[int, dict[str, str], Any] = (failure.status, dict(failure.headers), dict(failure.body))
            elif method == "POST" and "/statuses/" in path and isinstance(body, dict):
                answer = (201, {}, {"id": len(self.calls) + 1, **body})
            elif method == "POST" and (access := _ACCESS_TOKENS.match(urlsplit(path).path)) is not None:
                answer = self._access_token(access["installation"], headers)
            elif (hooks := _HOOKS.match(urlsplit(path).path)) is not None:
                answer = self._hooks_answer(method, path, hooks)
            else:
                answer = (404, {}, {"message": "Not Found"})
            self.calls.append(Call(method, path, dict(headers), body, answer[0]))
        return answer

    def _hooks_answer(self, method: str, path: str, match: re.Match[str]) -> tuple[int, dict[str, str], Any]:
        """Webhooks and their deliveries (the lock is held)."""
        repository, hook_id, delivery_id = match["repo"], match["hook"], match["delivery"]
        hooks = [hook for hook in self.hooks if hook.repository.lower() == repository.lower()]
        hook = next((hook for hook in hooks if str(hook.id) == hook_id), None)
        query = {name: values[0] for name, values in parse_qs(urlsplit(path).query).items()}
        if not hooks or (hook_id is not None and hook is None):
            return 404, {}, {"message": "Not Found"}
        if hook_id is None and method == "GET":
            return 200, {}, [hook.json() for hook in hooks]
        assert hook is not None
        if delivery_id is None and method == "GET":
            return self._deliveries_page(hook, path, query)
        original = next((d for d in hook.deliveries if str(d["id"]) == delivery_id), None)
        if original is None or method != "POST":
            return 404, {}, {"message": "Not Found"}
        thread = threading.Thread(target=self._redeliver, args=(hook, original), name="fake-github-redelivery")
        self._redeliveries.append(thread)
        thread.start()
        return 202, {}, {}

    def _deliveries_page(self, hook: Hook, path: str, query: Mapping[str, str]) -> tuple[int, dict[str, str], Any]:
        """One page of deliveries, newest first; the `Link` header names the next page by its cursor."""
        newest_first = sorted(hook.deliveries, key=lambda d: (d["delivered_at"], d["id"]), reverse=True)
        size = max(1, min(int(query.get("per_page", "30")), 100))
        start = int(query["cursor"].removeprefix("v1_")) if "cursor" in query else 0
        page = newest_first[start : start + size]
        headers: dict[str, str] = {}
        if start + size < len(newest_first):
            base = f"{self.url}{urlsplit(path).path}"
            headers["link"] = f'<{base}?per_page={size}&cursor=v1_{start + size}>; rel="next"'
        return 200, headers, page

    def _redeliver(self, hook: Hook, original: Mapping[str, Any]) -> None:
        """Send the delivery again as GitHub does, with the same guid, and list the attempt with its answer."""
        guid = original["guid"]
        status_code = 502
        if guid in hook.requests:
            event, body = hook.requests[guid]
            headers = {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": guid}
            if hook.secret is not None:
                digest = hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
                headers["X-Hub-Signature-256"] = f"sha256={digest}"
            request = urllib.request.Request(hook.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status_code = response.status
            except urllib.error.HTTPError as error:
                status_code = error.code
            except OSError:
                status_code = 502
        with self._lock:
            self._delivered(hook, guid, original["event"], datetime.now(UTC), status_code, True)

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
        for thread in self._redeliveries:
            thread.join(timeout=5)
