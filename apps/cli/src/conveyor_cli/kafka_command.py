"""`conveyor kafka init`: create the log's topics on a Kafka cluster, with their settings, once."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

kafka_app = typer.Typer(no_args_is_help=True, help="Set up Kafka for the distributed mode.")


def register(app: typer.Typer) -> None:
    """Add the `kafka` commands to `app`."""
    app.add_typer(kafka_app, name="kafka")


@kafka_app.command("init")
def init(
    bootstrap: Annotated[
        str | None,
        typer.Option(help="Bootstrap servers [default: $CONVEYOR_KAFKA_BOOTSTRAP, else 127.0.0.1:19092]"),
    ] = None,
    prefix: Annotated[
        str | None,
        typer.Option(help="The topics' names start with this [default: $CONVEYOR_KAFKA_TOPIC_PREFIX, else conveyor]"),
    ] = None,
    replication: Annotated[int, typer.Option(min=1, help="Replicas of each partition (3 on a real cluster).")] = 1,
) -> None:
    """Create the events, checkpoints, logs and dead-letter topics that do not exist yet.

    Safe to run again: a topic that exists is left as it is.
    """
    from conveyor_runtime import KafkaTopics, RuntimeSettings, create_kafka_topics

    settings = RuntimeSettings()
    servers = bootstrap or settings.kafka_bootstrap
    prefix = prefix or settings.kafka_topic_prefix
    try:
        created = asyncio.run(create_kafka_topics(servers, KafkaTopics.with_prefix(prefix), replication=replication))
    except Exception as error:
        typer.echo(f"could not create the topics on {servers}: {type(error).__name__}: {error}", err=True)
        raise typer.Exit(code=1) from error
    for name, new in created.items():
        typer.echo(f"{'created' if new else 'exists '} {name}")
