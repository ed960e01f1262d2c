"""Run as a program by the durability test: append events one by one, printing each id once its append returned.

Usage: python _appender.py LOG_PATH. It never stops on its own; the test kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
from itertools import count

from conveyor_events import Envelope, RunCancelRequested
from conveyor_runtime import SqliteEventLog

STREAMS = 3


async def append_forever(path: str) -> None:
    async with SqliteEventLog(path) as log:
        for number in count():
            stream = f"run-{number % STREAMS}"
            envelope = Envelope.wrap(RunCancelRequested(run_id=stream, reason=str(number)), stream=stream)
            await log.append([envelope])
            sys.stdout.write(f"{envelope.event_id}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(append_forever(sys.argv[1]))
