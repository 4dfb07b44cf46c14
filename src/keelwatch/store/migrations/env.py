"""Alembic's environment: migrate the connection ``keelwatch.store.migrate`` hands over.

Run by keelwatch itself, never through an ``alembic.ini``; the fallback to a URL is for a
developer who points the ``alembic`` command at this directory by hand.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import create_engine

from keelwatch.store.tables import Base, UTCDateTime


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    # Migrations spell plain SQLAlchemy types so that they never import the models they predate.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode copies the table, and is a no-op elsewhere.
        render_as_batch=connection.dialect.name == "sqlite",
        # keelwatch begins SQLite transactions itself (store/engine.py), so DDL is transactional
        # there too: a failed migration leaves the schema as it was.
        transactional_ddl=True,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url, or migrate with keelwatch.store.migrate.upgrade()")
    with create_engine(url).connect() as conn:
        run(conn)
