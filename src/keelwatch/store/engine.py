"""Engines for SQLite and PostgreSQL, and database errors turned into one-line ``StoreError``s."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, exc, make_url
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool

from keelwatch.errors import StoreError

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10
# Execution option naming a write transaction: on SQLite it begins with BEGIN IMMEDIATE.
WRITE_OPTION = "keelwatch_write"


def parse_url(url: str) -> URL:
    """A SQLAlchemy URL, with ``postgres://`` and ``postgresql://`` meaning psycopg 3.

    The bare ``postgresql://`` would pick psycopg2, which keelwatch does not ship.
    """
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError) as error:
        raise StoreError(f"not a database URL: {url!r}", hint="e.g. sqlite:////var/lib/keelwatch/keelwatch.db "
                         "or postgresql+psycopg://user@host/keelwatch") from error
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(f"unsupported database {parsed.get_backend_name()!r} in {display_url(parsed)}",
                         hint="keelwatch stores to SQLite or PostgreSQL")
    return parsed


def display_url(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def create_engine(url: URL) -> Engine:
    from sqlalchemy import create_engine as sa_create_engine

    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, sa_create_engine)
    return sa_create_engine(
        url,
        # A server restart or a dropped idle connection must not fail the next request (scale-out).
        pool_pre_ping=True,
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S, "application_name": "keelwatch"},
    )


def _sqlite_engine(url: URL, sa_create_engine: Any) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory and not database.startswith("file:"):
        parent = Path(database).expanduser().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create the database directory {parent}: {error.strerror or error}") from error
    kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
    if in_memory:
        # One connection shared by every session, or each would see its own empty database.
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    engine = sa_create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling neither wraps DDL nor knows BEGIN IMMEDIATE; we
        # emit BEGIN ourselves (below), as SQLAlchemy's SQLite notes recommend.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                # WAL: readers never block the writer; NORMAL sync is durable enough under WAL.
                _enable_wal(cursor)
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY when
        # another writer got in between; IMMEDIATE takes the write lock up front and waits
        # busy_timeout for it instead.
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _enable_wal(cursor: Any) -> None:
    """Switch a database to WAL once; it stays WAL for every later connection.

    Changing the journal mode does not wait on the busy timeout: processes opening a new
    database together get "database is locked" at once, so this waits for them by hand.
    """
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def store_error(error: BaseException, url: URL) -> StoreError:
    """One line saying what failed where, the password hidden, retryable when the server may come back."""
    original = getattr(error, "orig", None) or error
    reason = " ".join(str(original).split()) or type(original).__name__
    # psycopg repeats the connection attempt per address; the first line says it all.
    reason = reason.split(" Multiple connection attempts failed.")[0]
    if len(reason) > 300:
        reason = reason[:297] + "..."
    backend = url.get_backend_name()
    where = f"SQLite database {url.database}" if backend == "sqlite" else f"PostgreSQL {display_url(url)}"
    retryable = isinstance(error, exc.OperationalError | exc.TimeoutError | exc.DisconnectionError)
    hint = None
    if backend == "sqlite" and "readonly" in reason:
        hint = "check the permissions of the file and its directory"
    elif backend == "sqlite" and "not a database" in reason:
        hint = "the file exists but is not a SQLite database"
    elif backend == "postgresql" and retryable and "connect" in reason.lower():
        hint = "is the server running and the URL right?"
    return StoreError(f"{where}: {reason}", hint=hint, retryable=retryable)


@contextlib.contextmanager
def translate_errors(url: URL) -> Iterator[None]:
    try:
        yield
    except StoreError:
        raise
    except exc.SQLAlchemyError as error:
        raise store_error(error, url) from error
