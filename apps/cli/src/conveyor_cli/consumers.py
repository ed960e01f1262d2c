"""The services that follow the log, by name: light to import, as the command line's help names them."""

CONSUMERS = ("planner", "scheduler", "runner-agent", "notifier", "projector")
"""The services that follow the log; ingest, the API, is served by whoever calls `EmbeddedSystem.api()`."""
