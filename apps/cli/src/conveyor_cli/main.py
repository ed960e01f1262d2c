"""The `conveyor` command.

Each command imports what it runs when it runs: `conveyor validate` need not import the services, the API and
their libraries, which take about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from conveyor_cli import (
    agent_command,
    expr_command,
    kafka_command,
    token_command,
    validate_command,
    webhooks_command,
)
from conveyor_cli.consumers import CONSUMERS
from conveyor_cli.options import parse_pairs, parse_platforms, read_env_file

if TYPE_CHECKING:
    from conveyor_runtime import RuntimeSettings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Run GitHub Actions workflows on your machines.")
projections_app = typer.Typer(no_args_is_help=True, help="Manage the read models.")
app.add_typer(projections_app, name="projections")
expr_command.register(app)
kafka_command.register(app)
validate_command.register(app)
token_command.register(app)
webhooks_command.register(app)
agent_command.register(app)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", "-d", help="Where the log and read models live [default: .conveyor]")
]


def _settings(data_dir: Path | None, **more: object) -> RuntimeSettings:
    from conveyor_runtime import RuntimeSettings

    settings = RuntimeSettings()
    changes = {"data_dir": data_dir, **more}
    return settings.model_copy(update={key: value for key, value in changes.items() if value is not None})


Pairs = Annotated[list[str] | None, typer.Option(metavar="NAME=VALUE")]


@app.command()
def run(
    event: Annotated[str, typer.Argument(help="The event that triggers the workflows.")] = "push",
    directory: Annotated[Path, typer.Option("-C", "--directory", help="The git repository to run.")] = Path("."),
    workflows: Annotated[
        list[Path] | None,
        typer.Option("-W", "--workflows", help="Workflow files or folders [default: .github/workflows]"),
    ] = None,
    event_path: Annotated[Path | None, typer.Option("-e", "--eventpath", help="The event's payload (JSON)")] = None,
    job: Annotated[
        list[str] | None, typer.Option("-j", "--job", help="Run only this job and the jobs it needs")
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option(
            "-s", "--secret", metavar="NAME[=VALUE]", help="A secret; NAME alone reads it from the environment"
        ),
    ] = None,
    secret_file: Annotated[Path | None, typer.Option(help="Secrets in .env format")] = None,
    var: Annotated[list[str] | None, typer.Option("--var", metavar="NAME=VALUE", help="A `vars` context value")] = None,
    var_file: Annotated[Path | None, typer.Option(help="`vars` values in .env format")] = None,
    input_: Annotated[list[str] | None, typer.Option("--input", metavar="NAME=VALUE", help="A workflow input")] = None,
    env_file: Annotated[Path | None, typer.Option(help="Environment for every step, in .env format")] = None,
    platform: Annotated[
        list[str] | None,
        typer.Option(
            "-P",
            "--platform",
            metavar="LABEL=IMAGE",
            help="Run jobs with this runs-on label in IMAGE (-self-hosted: on the host)",
        ),
    ] = None,
    container_socket: Annotated[str | None, typer.Option(help="The Docker Engine API socket to use")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", "-d", help="Keep the run's log here [default: a temporary folder]")
    ] = None,
) -> None:
    """Run the workflows of the repository in DIRECTORY that EVENT triggers, once; exit 0 if the run succeeded."""
    from conveyor_cli.run_command import RunOptions, run_command

    try:
        options = RunOptions(
            event_name=event,
            data_dir=data_dir,
            workflows=tuple(workflows or ()),
            event_path=event_path,
            jobs=tuple(job or ()),
            secrets={**read_env_file(secret_file), **parse_pairs(secret or [], "--secret", from_environment=True)},
            variables={**read_env_file(var_file), **parse_pairs(var or [], "--var")},
            inputs=parse_pairs(input_ or [], "--input"),
            env=read_env_file(env_file),
            platforms=parse_platforms(platform or []),
            container_socket=container_socket,
        )
    except ValueError as error:
        Console(stderr=True, highlight=False).print(f"error: {error}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    raise typer.Exit(run_command(directory, options))


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="Address to serve on [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to serve on [default: 8080]")] = None,
    data_dir: DataDir = None,
) -> None:
    """Serve every service and the API until interrupted."""
    _serve(_settings(data_dir, host=host, port=port), CONSUMERS, api=True, name="up")


@app.command()
def service(
    name: Annotated[str, typer.Argument(help=f"ingest (the API), or one of: {', '.join(CONSUMERS)}")],
    host: Annotated[str | None, typer.Option(help="Address ingest serves on [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port ingest serves on [default: 8080]")] = None,
    health_port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="Serve /healthz and /readyz on this port too [default: $CONVEYOR_HEALTH_PORT]"
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Run one service alone over the log (CONVEYOR_EVENT_LOG: the data directory's, or Kafka's), until interrupted.

    Ingest serves /healthz and /readyz with its API; the other services on --health-port, when given.
    """
    if name != "ingest" and name not in CONSUMERS:
        Console(stderr=True).print(
            f"error: no service '{name}'; the services are ingest, {', '.join(CONSUMERS)}", markup=False
        )
        raise typer.Exit(2)
    settings = _settings(data_dir, host=host, port=port, health_port=health_port)
    _serve(settings, [] if name == "ingest" else [name], api=name == "ingest", name=name)


def _serve(settings: RuntimeSettings, services: Collection[str], *, api: bool, name: str) -> None:
    """Run `services` (and the API) until SIGINT or SIGTERM, then stop them gracefully and exit 0; the health
    probes are served with the API, and on `settings.health_port` when set. `name` is the process's on Kafka.

    The handlers are the loop's own, so a process started with SIGINT ignored (a background job of a
    non-interactive shell) still stops on either signal.
    """
    import uvicorn
    import uvloop
    from conveyor_runtime import tune_collector

    from conveyor_cli.health import health_app
    from conveyor_cli.system import EmbeddedSystem

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tune_collector()

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the loop's handlers below decide when to stop

    async def serve() -> None:
        stopping = asyncio.Event()
        servers: list[Server] = []

        def stop() -> None:
            stopping.set()
            for server in servers:
                server.should_exit = True

        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stop)
        system = EmbeddedSystem(settings, services, edge=api, name=name)
        async with system.running():
            if api:
                config = uvicorn.Config(system.api(), host=settings.host, port=settings.port, log_level="info")
                servers.append(Server(config))
            if settings.health_port is not None:
                probes = health_app(system.health)
                config = uvicorn.Config(
                    probes, host=settings.host, port=settings.health_port, log_level="warning", access_log=False
                )
                servers.append(Server(config))
            if stopping.is_set():
                return
            if servers:
                await asyncio.gather(*(server.serve() for server in servers))
            else:
                await stopping.wait()

    uvloop.run(serve())  # libuv's loop: the served API answers more requests per second than on asyncio's own


@app.command()
def replay(run_id: str, data_dir: DataDir = None) -> None:
    """Print the events of a run in order: time, type and key fields."""
    from conveyor_runtime import describe_event_log

    from conveyor_cli.replay import print_replay

    settings = _settings(data_dir)
    found = asyncio.run(print_replay(settings, run_id, Console(highlight=False)))
    if not found:
        Console(stderr=True).print(f"error: no run '{run_id}' in {describe_event_log(settings)}", markup=False)
        raise typer.Exit(1)


@projections_app.command("rebuild")
def rebuild_projections(data_dir: DataDir = None) -> None:
    """Rebuild every read model from the start of the log."""
    from conveyor_runtime import describe_projections, open_event_log, open_projections, rebuild

    settings = _settings(data_dir)

    async def go() -> int:
        store = open_projections(settings)
        try:
            async with open_event_log(settings) as log:
                return await rebuild(log, store)
        finally:
            await store.close()

    position = asyncio.run(go())
    typer.echo(f"read models in {describe_projections(settings)} rebuilt up to position {position}")


@app.command("repo-add")
def repo_add(
    name: str,
    location: Annotated[str, typer.Argument(metavar="PATH_OR_URL")],
    default_branch: Annotated[str, typer.Option()] = "main",
    github: Annotated[
        str | None, typer.Option(metavar="OWNER/NAME", help="Its name on GitHub [default: NAME if it has a slash]")
    ] = None,
    webhook_secret_env: Annotated[
        str | None,
        typer.Option(metavar="VARIABLE", help="Read the GitHub webhook secret from this environment variable"),
    ] = None,
    token_env: Annotated[
        str | None, typer.Option(metavar="VARIABLE", help="Read a GitHub API token from this environment variable")
    ] = None,
    app_id: Annotated[str | None, typer.Option(help="A GitHub App installed on the repository: its id")] = None,
    installation_id: Annotated[int | None, typer.Option(min=1, help="The GitHub App's installation id")] = None,
    app_key_file: Annotated[
        Path | None, typer.Option(metavar="FILE", help="The GitHub App's private key (PEM), read from this file")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Register a git repository (a local path, or a clone URL fetched with its token) under NAME, so the API can
    dispatch runs of it and take its webhooks.

    Secrets are read from environment variables (never from the command line, which other users can see) and
    stored encrypted.
    """
    from conveyor_events import Envelope
    from conveyor_ingest import REPOSITORIES_STREAM, LocalKeyWrapper, register_repository, seal_for
    from conveyor_runtime import RemoteGitError, is_remote, ls_remote, open_event_log

    settings = _settings(data_dir)
    error = Console(stderr=True)
    path = Path(location)
    if not is_remote(location) and not (path / ".git").exists():
        error.print(f"error: {path}: not a git repository", markup=False)
        raise typer.Exit(1)
    secrets: dict[str, str | None] = {}
    for field, variable in (("webhook_secret", webhook_secret_env), ("token", token_env)):
        if variable is not None and not os.environ.get(variable):
            error.print(f"error: the environment variable {variable} is not set (or empty)", markup=False)
            raise typer.Exit(2)
        secrets[field] = os.environ.get(variable) if variable else None
    private_key = None
    if app_key_file is not None:
        try:
            private_key = app_key_file.read_text()
        except OSError as problem:
            error.print(f"error: {app_key_file}: {problem.strerror or problem}", markup=False)
            raise typer.Exit(1) from None
    if is_remote(location) and (secrets["token"] is not None or private_key is None):
        try:
            ls_remote(location, "HEAD", secrets["token"])
        except RemoteGitError as problem:
            error.print(f"error: {problem}", markup=False)
            raise typer.Exit(1) from None
    keys = LocalKeyWrapper.from_settings(settings)
    try:
        event = register_repository(
            name,
            location if is_remote(location) else str(path.resolve()),
            default_branch,
            github=github,
            webhook_secret=seal_for(name, "webhook_secret", secrets["webhook_secret"], keys),
            token=seal_for(name, "token", secrets["token"], keys),
            app_id=app_id,
            installation_id=installation_id,
            app_private_key=seal_for(name, "app_private_key", private_key, keys),
        )
    except ValueError as problem:
        error.print(f"error: {problem} (--app-id, --installation-id, --app-key-file)", markup=False)
        raise typer.Exit(2) from None

    async def go() -> None:
        async with open_event_log(settings) as log:
            await log.append([Envelope.wrap(event, stream=REPOSITORIES_STREAM)])

    asyncio.run(go())
    typer.echo(f"registered {name} → {path.resolve()}" + (f" (GitHub: {event.github})" if event.github else ""))

