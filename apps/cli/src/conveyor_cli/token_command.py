"""`conveyor token create --name N --role R [--repository NAME]`: issue an API token straight into the log.

For when no admin token is at hand (the first one was lost, or every one was revoked): whoever can write the log
(the data directory's, or the Kafka topics CONVEYOR_EVENT_LOG=kafka names) holds it anyway. The secret is printed
once, on standard output; the log keeps only its hash.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, get_args

import typer
from conveyor_events import AccessRole
from rich.console import Console

ROLES = get_args(AccessRole)

token_app = typer.Typer(no_args_is_help=True, help="Manage the API's tokens.")


def register(app: typer.Typer) -> None:
    """Add the `token` commands to `app`."""
    app.add_typer(token_app, name="token")


@token_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="What the token is for, to tell it apart in GET /api/tokens")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}")],
    repository: Annotated[
        str, typer.Option("--repository", help="The repository's registered name, or * for every repository")
    ] = "*",
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", "-d", help="Where the log and read models live [default: .conveyor]")
    ] = None,
) -> None:
    """Issue a token with ROLE on REPOSITORY and print its secret, which is shown this once."""
    from conveyor_ingest import issue_token
    from conveyor_ingest.access import TokenRequest
    from conveyor_runtime import RuntimeSettings, open_event_log
    from pydantic import ValidationError

    try:
        request = TokenRequest.model_validate({"name": name, "grants": {repository: role}})
    except ValidationError as error:
        problems = "; ".join(f"{problem['msg']} ({problem['input']!r})" for problem in error.errors())
        error_console = Console(stderr=True)
        error_console.print(f"error: {problems}; the roles are {', '.join(ROLES)}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    settings = RuntimeSettings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})

    async def go() -> tuple[str, str]:
        async with open_event_log(settings) as log:
            issued = await issue_token(log, request.name, request.grants)
        assert issued is not None
        return issued[0], issued[1].token_id

    secret, token_id = asyncio.run(go())
    Console(stderr=True, highlight=False).print(
        f"issued token {token_id} ({name}): {role} on {repository}; it is shown only now",
        markup=False,
        soft_wrap=True,
    )
    typer.echo(secret)
