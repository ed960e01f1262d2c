"""Alembic's environment for the read models: migrations run on the connection the store hands over.

Run from `PostgresProjections` (which passes its connection in `config.attributes["connection"]`), or from the
command line with `alembic -x url=postgresql://… upgrade head` in this folder's parent's terms.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


def _online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database with `-x url=postgresql://user@host:port/db`")
    with create_engine(url).begin() as connection:
        _run(connection)


if context.is_offline_mode():
    raise SystemExit("the read models' migrations run against a database (online mode only)")
_online()
