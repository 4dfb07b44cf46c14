"""Schema migrations, run programmatically from the migrations shipped inside the package.

Users never see Alembic: opening a store upgrades it (unless ``[store] auto_migrate = false``), and
several processes opening one PostgreSQL at once migrate it once (an advisory lock serialises
them; on SQLite ``BEGIN IMMEDIATE`` does).

For developers adding a table: change ``tables.py``, then draft the migration with
``python -m keelwatch.store.migrate revision "what changed"`` and read what it wrote.
"""

from __future__ import annotations

import functools
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from keelwatch.errors import StoreError
from keelwatch.store.engine import WRITE_OPTION

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant will do; it only has to be the same in every keelwatch process.
PG_MIGRATION_LOCK = 0x6B65656C  # "keel"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def current_revision(connection: Connection) -> str | None:
    heads = MigrationContext.configure(connection).get_current_heads()
    return heads[0] if heads else None


def check_revision(current: str | None) -> None:
    """Refuse a schema this keelwatch does not know: written by a newer keelwatch, most likely."""
    if current is None:
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
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as connection:
        if connection.dialect.name == "sqlite":
            # Checking first keeps every open of an up-to-date store free of the write lock.
            current = current_revision(connection)
            connection.rollback()
            check_revision(current)
            if current == head_revision():
                return False
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
            # Read again under the lock: another process may have migrated while we waited.
            current = current_revision(connection)
            check_revision(current)
            if current == head_revision():
                return False
            command.upgrade(alembic_config(connection), "head")
        return True


def needs_upgrade(engine: Engine) -> bool:
    with engine.connect() as connection:
        current = current_revision(connection)
    check_revision(current)
    return current != head_revision()


def revision(message: str) -> None:
    """Draft a migration from the difference between ``tables.py`` and the migrations' head."""
    from sqlalchemy import create_engine

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/draft.db")
        try:
            with engine.begin() as connection:
                command.upgrade(alembic_config(connection), "head")
            with engine.begin() as connection:
                number = len(list(_scripts().walk_revisions())) + 1
                command.revision(alembic_config(connection), message=message, autogenerate=True,
                                 rev_id=f"{number:04d}")
        finally:
            engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "revision":
        raise SystemExit('usage: python -m keelwatch.store.migrate revision "what changed"')
    revision(sys.argv[2])
