"""Schema migrations, run programmatically from the migrations shipped inside the package.

Users never see Alembic: opening a store upgrades it (unless ``[store] auto_migrate = false``), and
several processes opening one PostgreSQL at once migrate it once (an advisory lock serialises
them; on SQLite ``BEGIN IMMEDIATE`` does).

For developers adding a table: change ``tables.py``, then draft the migration with
``python -m keelwatch.store.migrations revision "what changed"`` and read what it wrote.
"""

from __future__ import annotations

import functools
import logging
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, exc, inspect, text

from keelwatch.errors import StoreError
from keelwatch.store.engine import WRITE_OPTION

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: The newest migration's revision. Every open compares the database with it, and Alembic (a
#: tenth of a second to import) is loaded only when they differ; a test keeps it equal to the
#: head of migrations/versions/.
HEAD = "0012"
# Any constant will do; it only has to be the same in every keelwatch process.
PG_MIGRATION_LOCK = 0x6B65656C  # "keel"


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The head as Alembic reads it from migrations/versions/ (``HEAD`` must equal it)."""
    head = _scripts().get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def current_revision(connection: Connection) -> str | None:
    """The database's revision, read the way Alembic stores it; None for an empty database."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    try:
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except exc.DBAPIError as error:
        raise StoreError(f"cannot read the schema revision: {error.orig}") from error
    if len(rows) > 1:
        raise StoreError(f"the database has several schema heads {rows}; keelwatch keeps one")
    return rows[0] if rows else None


def check_revision(current: str | None) -> None:
    """Refuse a schema this keelwatch does not know: written by a newer keelwatch, most likely."""
    if current is None or current == HEAD:
        return
    try:
        known = _scripts().get_revision(current)
    except Exception:
        known = None
    if known is None:
        raise StoreError(f"the database schema is at revision {current!r}, which this keelwatch does not know",
                         hint="it was migrated by a newer keelwatch; upgrade keelwatch")


def upgrade(engine: Engine) -> bool:
    """Bring the schema to head; True when anything was applied."""
    # Checked first without any lock: every open of an up-to-date store stays cheap.
    if not needs_upgrade(engine):
        return False
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
        # Read again under the lock: another process may have migrated while we waited.
        current = current_revision(connection)
        check_revision(current)
        if current == HEAD:
            return False
        log.info("upgrading the database schema from %s to %s", current or "empty", HEAD)
        alembic_log = logging.getLogger("alembic")
        if alembic_log.level == logging.NOTSET:
            # Alembic narrates its plugins and steps at INFO; keelwatch's -v should not show them.
            alembic_log.setLevel(logging.WARNING)
        from alembic import command

        command.upgrade(alembic_config(connection), "head")
    return True


def needs_upgrade(engine: Engine) -> bool:
    with engine.connect() as connection:
        current = current_revision(connection)
    check_revision(current)
    return current != HEAD


def revision(message: str) -> None:
    """Draft a migration from the difference between ``tables.py`` and the migrations' head."""
    from alembic import command
    from sqlalchemy import create_engine

    number = len(list(_scripts().walk_revisions())) + 1
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/draft.db")
        try:
            with engine.begin() as connection:
                command.upgrade(alembic_config(connection), "head")
            with engine.begin() as connection:
                command.revision(alembic_config(connection), message=message, autogenerate=True,
                                 rev_id=f"{number:04d}")
        finally:
            engine.dispose()
    print(f'now set HEAD = "{number:04d}" in {__file__}', file=sys.stderr)
