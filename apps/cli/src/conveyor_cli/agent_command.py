"""`conveyor agent --server URL`: a runner on this host that runs jobs of a Conveyor elsewhere, over HTTP only.

It registers once, with an API token holding admin on every repository read from the environment (never from the
command line, which other users can see), and keeps the credential it gets in its work directory, so that a
restarted agent is the same runner. SIGTERM or SIGINT stop it gracefully: it takes no new job and lets the running
ones finish, up to the grace period.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

TOKEN_VARIABLE = "CONVEYOR_AGENT_REGISTRATION_TOKEN"


def register(app: typer.Typer) -> None:
    """Add the `agent` command to `app`."""
    app.command("agent")(agent)


def agent(
    server: Annotated[str, typer.Option("--server", metavar="URL", help="The Conveyor to run jobs of")],
    name: Annotated[str | None, typer.Option(help="The runner's name [default: this host's name]")] = None,
    labels: Annotated[
        str | None,
        typer.Option(metavar="A,B", help="runs-on labels besides self-hosted, the OS and the architecture"),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Jobs run at once")] = 1,
    work_dir: Annotated[
        Path, typer.Option("--work-dir", help="Where jobs run and the runner's credential is kept")
    ] = Path(".conveyor-agent"),
    grace: Annotated[
        float, typer.Option(min=0, help="Seconds running jobs get to finish when the agent is stopped")
    ] = 60.0,
    lease_period: Annotated[
        float, typer.Option(min=1, help="The server's lease period in seconds; a lease is renewed 3 times in it")
    ] = 120.0,
) -> None:
    """Run jobs of the Conveyor at URL until interrupted; it registers with the API token in
    CONVEYOR_AGENT_REGISTRATION_TOKEN (admin on every repository) unless its work directory holds its credential."""
    from conveyor_runner_agent import (
        ActionSource,
        AgentError,
        ConveyorServer,
        Refused,
        RemoteAgent,
        default_labels,
        join,
    )

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per long poll says nothing
    extra = [label.strip() for label in (labels or "").split(",") if label.strip()]
    offered = list(dict.fromkeys([*default_labels(), *extra]))
    folder = work_dir.resolve()
    runner = RemoteAgent(
        ConveyorServer(server),
        folder,
        concurrency=concurrency,
        lease_period=timedelta(seconds=lease_period),
        grace=grace,
        action_source=ActionSource(folder / "actions"),
    )

    async def go() -> None:
        main = asyncio.current_task()
        assert main is not None
        joined = False

        def stop() -> None:
            runner.stop()
            if not joined:
                main.cancel()

        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stop)
        try:
            await join(runner.server, folder, name or socket.gethostname(), offered, os.environ.get(TOKEN_VARIABLE))
            joined = True
            logging.getLogger(__name__).info("runner %s takes jobs on %s", runner.runner_id, ", ".join(offered))
            await runner.run()
        except asyncio.CancelledError:
            return
        finally:
            await runner.server.aclose()

    try:
        asyncio.run(go())
    except (AgentError, ValueError, Refused) as error:
        Console(stderr=True, highlight=False).print(f"error: {error}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
