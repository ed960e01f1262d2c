"""`conveyor replay`: a run's events in order, one line each."""

from __future__ import annotations

from typing import Any

from conveyor_events import Envelope
from conveyor_runtime import RuntimeSettings, open_event_log
from rich.console import Console

_KEY_FIELDS = ("workflow", "job_id", "attempt", "step_index", "name", "outcome", "conclusion", "reason", "runner_id")


def describe(envelope: Envelope) -> str:
    """`<time> <sequence> <type> key=value ...` for one event."""
    data: dict[str, Any] = envelope.event.model_dump(mode="json")
    fields = [f"{key}={data[key]}" for key in _KEY_FIELDS if data.get(key) not in (None, "", [])]
    if envelope.type == "StepLogged":
        fields.append(f"lines={data['first_line']}..{data['first_line'] + len(data['lines']) - 1}")
    if envelope.type == "RunRequested":
        fields.extend(f"{key}={data[key]}" for key in ("event_name", "ref", "sha"))
    at = envelope.occurred_at.strftime("%H:%M:%S.%f")[:-3]
    return f"{at} #{envelope.sequence:<4} {envelope.type:<18} {' '.join(fields)}".rstrip()


async def print_replay(settings: RuntimeSettings, run_id: str, console: Console) -> bool:
    if settings.event_log == "sqlite" and not settings.log_path.exists():
        return False  # opening the SQLite log would create the file
    async with open_event_log(settings) as log:
        events = await log.read_stream(run_id)
    for envelope in events:
        console.print(describe(envelope), markup=False, soft_wrap=True)
    return bool(events)
