"""A Conveyor server's runner endpoints over HTTP: register, long-poll for a lease, heartbeat, report events.

Every answer that is not what was asked for becomes one of three errors, by what the caller should do next:
`LeaseOver` (stop the job), `Unavailable` (try again later: the server or the network failed) and `Refused`
(do not try again: the request itself is wrong, or the credential is).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from conveyor_events import Envelope, JobPlanned, RunRequested, envelope_from_dict

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


class Unavailable(Exception):
    """The server could not be reached or failed to answer; the same request may succeed later."""


class Refused(Exception):
    """The server refused the request; sending it again would be refused again."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class LeaseOver(Exception):
    """The attempt was cancelled, timed out, lost or completed: the job is to stop (a stopped one still reports)."""

    def __init__(self, state: str, timeout_minutes: float | None = None) -> None:
        super().__init__(f"the lease is over: the attempt was {state}")
        self.state = state
        self.timeout_minutes = timeout_minutes

    @property
    def winding_down(self) -> bool:
        """Whether the runner still holds the attempt while it stops it: its events are still taken."""
        return self.state in ("cancelled", "timed out")


@dataclass(frozen=True)
class Identity:
    """Who a runner is to the server: its id and the credential it got when it registered."""

    runner_id: str
    credential: str


@dataclass(frozen=True)
class Leased:
    """A leased attempt with everything needed to run it."""

    lease_id: str
    queued: Envelope
    request: RunRequested
    plan: JobPlanned


class ConveyorServer:
    """The runner endpoints of the Conveyor at `base_url`; `identity` must be set before leasing."""

    def __init__(
        self, base_url: str, *, timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.identity: Identity | None = None
        self._timeout = timeout
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def register(self, token: str, name: str, labels: Sequence[str]) -> Identity:
        """Register a runner with an API token holding admin on every repository; its identity."""
        body = {"name": name, "labels": list(labels)}
        answer = await self._call("POST", "/api/runners", token, json=body)
        document = answer.json()
        return Identity(str(document["id"]), str(document["credential"]))

    async def lease(self, wait: float) -> Leased | None:
        """The next attempt this runner may run, waiting up to `wait` seconds for one; None when none came."""
        answer = await self._call(
            "POST", f"{self._runner_path()}/lease", params={"wait": wait}, timeout=wait + self._timeout
        )
        if answer.status_code == 204:
            return None
        document = answer.json()
        request, plan = envelope_from_dict(document["request"]).event, envelope_from_dict(document["plan"]).event
        if not isinstance(request, RunRequested) or not isinstance(plan, JobPlanned):
            raise Refused(answer.status_code, "the lease holds no run request or no job plan")
        return Leased(str(document["lease_id"]), envelope_from_dict(document["queued"]), request, plan)

    async def heartbeat(self, lease_id: str) -> None:
        """Renew the lease; `LeaseOver` when the attempt is to stop."""
        await self._call("POST", f"{self._runner_path()}/leases/{lease_id}/heartbeat")

    async def check(self, lease_id: str) -> None:
        """Ask whether the lease still holds, without renewing it; `LeaseOver` when the attempt is to stop."""
        await self._call("GET", f"{self._runner_path()}/leases/{lease_id}")

    async def report(self, lease_id: str, events: Sequence[Envelope]) -> list[int]:
        """Append the attempt's `events` in order; their positions in the log."""
        body = {"events": [json.loads(envelope.to_json()) for envelope in events]}
        answer = await self._call("POST", f"{self._runner_path()}/leases/{lease_id}/events", json=body)
        return [int(position) for position in answer.json()["positions"]]

    def _runner_path(self) -> str:
        if self.identity is None:
            raise RuntimeError("the runner has no identity yet: register it first")
        return f"/api/runners/{self.identity.runner_id}"

    async def _call(
        self, method: str, path: str, token: str | None = None, *, timeout: float | None = None, **options: Any
    ) -> httpx.Response:
        secret = token or (self.identity.credential if self.identity else "")
        headers = {"Authorization": f"Bearer {secret}"}
        try:
            answer = await self._http.request(
                method, path, headers=headers, timeout=timeout or self._timeout, **options
            )
        except httpx.TransportError as error:
            raise Unavailable(f"{method} {self.base_url}{path}: {type(error).__name__}: {error}") from error
        if answer.status_code < 300:
            return answer
        detail = _detail(answer)
        if answer.status_code == 410:
            minutes = answer.headers.get("conveyor-timeout-minutes")
            raise LeaseOver(answer.headers.get("conveyor-lease-state", "over"), float(minutes) if minutes else None)
        if answer.status_code in RETRYABLE:
            raise Unavailable(f"{method} {self.base_url}{path}: {answer.status_code} {detail}")
        raise Refused(answer.status_code, f"{method} {path}: {detail}")


def _detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return answer.text[:500]
