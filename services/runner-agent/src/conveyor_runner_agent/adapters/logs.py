"""Publishing a job's output as `StepLogged` batches: one append in flight, the next batch gathering."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from conveyor_events import Envelope, LogLine, StepLogged, deterministic_id

from conveyor_runner_agent.sink import JobEvents


class LogPublisher:
    """Lines are numbered within the job and appended in order.

    While one batch is being appended the next one gathers, so a quiet step's line is stored at once and a
    chatty step's lines go out in batches of up to `max_lines`.
    """

    def __init__(
        self,
        log: JobEvents,
        cause: Envelope,
        *,
        run_id: str,
        job_id: str,
        attempt: int,
        max_lines: int = 1000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._log = log
        self._cause = cause
        self._run_id = run_id
        self._job_id = job_id
        self._attempt = attempt
        self._max_lines = max_lines
        self._clock = clock
        self._pending: list[tuple[int, LogLine]] = []
        self._next_line = 1
        self._wakeup = asyncio.Event()
        self._closed = False
        self._busy = False
        self._idle = asyncio.Event()
        self._task = asyncio.create_task(self._flush_forever())

    def write(self, step_index: int, text: str) -> None:
        self._pending.append((step_index, LogLine(at=self._clock(), text=text)))
        self._wakeup.set()

    async def flush(self) -> None:
        """Return once everything written so far is appended."""
        while self._pending or self._busy:
            self._idle.clear()
            await self._idle.wait()

    async def close(self) -> None:
        """Append everything written so far, then stop."""
        self._closed = True
        self._wakeup.set()
        await self._task

    async def _flush_forever(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                self._busy = True
                while self._pending:
                    await self._flush()
                self._busy = False
                self._idle.set()
                if self._closed:
                    return
        finally:
            self._busy = False
            self._idle.set()

    async def _flush(self) -> None:
        step_index = self._pending[0][0]
        count = 0
        while (
            count < len(self._pending) and count < self._max_lines and self._pending[count][0] == step_index
        ):
            count += 1
        batch, self._pending = self._pending[:count], self._pending[count:]
        first = self._next_line
        self._next_line += count
        event = StepLogged(
            run_id=self._run_id,
            job_id=self._job_id,
            attempt=self._attempt,
            step_index=step_index,
            first_line=first,
            lines=[line for _, line in batch],
        )
        event_id = deterministic_id(self._run_id, self._job_id, self._attempt, "log", first)
        await self._log.append([Envelope.wrap(event, stream=self._run_id, cause=self._cause, event_id=event_id)])
