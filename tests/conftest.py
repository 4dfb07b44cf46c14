"""Fixtures every test area shares: where the shared data lives, and how a missing dataset is treated.

Shared data is read in place from ``$KEELWATCH_SHARED/data`` (default ``../shared`` beside the
repository's root). A test that needs it skips with a reason when it is absent, and fails instead
when ``KEELWATCH_REQUIRE_DATASETS=1`` (as CI sets it), so a missing dataset never passes silently.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    return Path(os.environ.get("KEELWATCH_SHARED", REPO_ROOT.parent / "shared")).resolve()


def require_dataset(relative: str) -> Path:
    """Path of ``$KEELWATCH_SHARED/data/RELATIVE``; skip (or fail under CI) when it is missing."""
    path = shared_dir() / "data" / relative
    if not path.exists():
        reason = f"shared dataset missing: {path} (set KEELWATCH_SHARED)"
        if os.environ.get("KEELWATCH_REQUIRE_DATASETS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_dataset("")


@pytest.fixture(scope="session")
def images_dir() -> Path:
    return require_dataset("images")


@pytest.fixture(scope="session")
def feeds_dir() -> Path:
    return require_dataset("feeds")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- databases: the store fixture runs a test on SQLite and on PostgreSQL ----------------------------
#
# PostgreSQL is the local server (127.0.0.1:5432, user postgres, trust auth) unless
# KEELWATCH_TEST_PG_URL names another server URL. The session creates one uniquely named throwaway
# database there and drops it at the end. An unreachable server skips the PostgreSQL tests, or fails
# them when KEELWATCH_REQUIRE_POSTGRES=1 or KEELWATCH_REQUIRE_DATASETS=1 (CI).

DEFAULT_PG_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _pg_unavailable(reason: str) -> None:
    if os.environ.get("KEELWATCH_REQUIRE_POSTGRES") == "1" or os.environ.get("KEELWATCH_REQUIRE_DATASETS") == "1":
        pytest.fail(f"PostgreSQL is required but {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason} (set KEELWATCH_TEST_PG_URL)")


class PgServer:
    """The test PostgreSQL server: creates databases that are all dropped when the session ends."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import make_url

        parsed = make_url(url)
        if parsed.drivername in ("postgres", "postgresql"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed
        self.created: list[str] = []

    def _admin(self):  # type: ignore[no-untyped-def]
        import psycopg

        u = self.url
        return psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username,
                               password=u.password, dbname=u.database or "postgres", autocommit=True,
                               connect_timeout=5)

    def create_database(self) -> str:
        """A new empty database on the server; its SQLAlchemy URL."""
        import secrets

        name = f"keelwatch_test_{os.getpid()}_{secrets.token_hex(4)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop_leftovers(self) -> None:
        """Drop test databases of sessions that were killed before they could (local servers only)."""
        if self.url.host not in (None, "127.0.0.1", "localhost", "::1"):
            return  # on a shared server the pid in a name may be another machine's
        with self._admin() as conn:
            names = [row[0] for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'keelwatch\\_test\\_%'")]
            for name in names:
                try:
                    os.kill(int(name.split("_")[2]), 0)
                except ProcessLookupError:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                except (ValueError, IndexError, PermissionError):
                    pass  # not one of ours, or a live process of another user

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = PgServer(os.environ.get("KEELWATCH_TEST_PG_URL") or DEFAULT_PG_SERVER_URL)
    try:
        with server._admin():
            pass
    except ImportError as exc:
        _pg_unavailable(f"psycopg is not installed ({exc})")
    except Exception as exc:  # psycopg.OperationalError and friends: any failure means no server
        _pg_unavailable(f"cannot connect to {server.url.render_as_string(hide_password=True)}: "
                        f"{' '.join(str(exc).split())}")
    server.drop_leftovers()
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def pg_url(pg_server: PgServer) -> str:
    """A throwaway PostgreSQL database for this test session (SQLAlchemy URL, psycopg 3)."""
    return pg_server.create_database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL: a fresh SQLite file, or the session's PostgreSQL database (emptied per test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keelwatch.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Any]:
    """A migrated, empty ``keelwatch.store.Store`` on SQLite and on PostgreSQL."""
    from sqlalchemy import text

    from keelwatch.store import Store
    from keelwatch.store.tables import Base

    opened = Store.open(store_url)
    if opened.dialect == "postgresql":
        # One database per session, emptied per test: much faster than a database per test.
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with opened.session() as session:
            session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    try:
        yield opened
    finally:
        opened.close()
