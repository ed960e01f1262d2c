"""`conveyor webhooks backfill`: have GitHub redeliver the webhook deliveries ingest missed.

The same pass `conveyor up` makes every `CONVEYOR_WEBHOOK_BACKFILL_MINUTES`, once, now: for each registered
repository with a GitHub name and credentials, the deliveries of its webhook (the one that delivers to
`<public_url>/webhooks/github`) that the log does not hold are redelivered, each at most once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

webhooks_app = typer.Typer(no_args_is_help=True, help="GitHub webhook deliveries.")


def register(app: typer.Typer) -> None:
    """Add the `webhooks` commands to `app`."""
    app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("backfill")
def backfill_command(
    since: Annotated[
        float, typer.Option("--since", min=0.01, max=72, help="Look back this many hours (GitHub keeps 72)")
    ] = 72,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", "-d", help="Where the log and read models live [default: .conveyor]")
    ] = None,
) -> None:
    """Redeliver the deliveries of the last SINCE hours that never became runs; exit 1 if a repository failed."""
    from conveyor_ingest import BackfillSummary, LocalKeyWrapper, backfill
    from conveyor_runtime import RuntimeSettings, open_event_log

    settings = RuntimeSettings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})

    async def go() -> list[BackfillSummary]:
        async with open_event_log(settings) as log:
            return await backfill(log, settings, LocalKeyWrapper.from_settings(settings), since=timedelta(hours=since))

    summaries = asyncio.run(go())
    console = Console(highlight=False)
    if not summaries:
        console.print("no registered repository has a GitHub name and credentials: nothing to back-fill")
        return
    table = Table("repository", "GitHub", "deliveries checked", "redelivered", "errors")
    for summary in summaries:
        table.add_row(
            summary.repository,
            summary.github,
            str(summary.checked),
            "\n".join(summary.redelivered) or "-",
            "\n".join(summary.errors) or "-",
        )
    console.print(table)
    if any(summary.errors for summary in summaries):
        raise typer.Exit(1)
