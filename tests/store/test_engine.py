"""Connections: SQLite's settings, PostgreSQL URLs, and storage failures as one-line StoreErrors."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from sqlalchemy import text

from keelwatch.config import Settings, StoreSettings
from keelwatch.errors import StoreError
from keelwatch.store import Store
from keelwatch.store.engine import parse_url

from .builders import catalog_result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sqlite_runs_wal_with_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "keelwatch.db"  # the directory is created
    with Store.open(f"sqlite:///{path}") as store, store.session(write=False) as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    assert path.is_file()


def test_store_from_settings(tmp_path: Path) -> None:
    settings = Settings(store=StoreSettings(url=f"sqlite:///{tmp_path / 'k.db'}", auto_migrate=False))
    with pytest.raises(StoreError, match="not at the current schema"):
        Store(settings)
    settings.store.auto_migrate = True
    with Store(settings) as store:
        assert store.dialect == "sqlite" and store.list_images() == []


def test_in_memory_sqlite_is_one_database_for_every_session() -> None:
    with Store.open("sqlite://") as store:
        assert store.list_images() == []


def test_a_directory_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot create the database directory"):
        Store.open(f"sqlite:///{tmp_path / 'file' / 'keelwatch.db'}")


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "keelwatch.db"
    path.write_bytes(b"this is not SQLite\n" * 100)
    with pytest.raises(StoreError, match=r"keelwatch\.db: file is not a database"):
        Store.open(f"sqlite:///{path}")


def test_a_read_only_database(tmp_path: Path) -> None:
    # Read-only by URI, so that the test means the same as root (who ignores file modes).
    Store.open(f"sqlite:///{tmp_path / 'k.db'}").close()
    with Store.open(f"sqlite:///file:{tmp_path / 'k.db'}?mode=ro&uri=true") as store:
        assert store.list_images() == []
        with pytest.raises(StoreError, match="attempt to write a readonly database.*check the permissions"):
            store.save_catalog(catalog_result())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files")
def test_a_database_that_is_not_writable(tmp_path: Path) -> None:
    path = tmp_path / "ro" / "keelwatch.db"
    Store.open(f"sqlite:///{path}").close()
    for p in path.parent.iterdir():
        p.chmod(0o444)
    path.parent.chmod(0o555)
    try:
        with pytest.raises(StoreError) as caught, Store.open(f"sqlite:///{path}") as store:
            store.save_catalog(catalog_result())
        assert "\n" not in str(caught.value)
    finally:
        path.parent.chmod(0o755)


def test_unreachable_postgresql_is_one_retryable_line_without_the_password() -> None:
    url = f"postgresql+psycopg://keelwatch:s3cret@127.0.0.1:{free_port()}/keelwatch"
    with pytest.raises(StoreError) as caught:
        Store.open(url)
    message = str(caught.value)
    assert message.startswith(f"PostgreSQL postgresql+psycopg://keelwatch:***@127.0.0.1:{url.split(':')[3]}")
    assert "s3cret" not in message and "\n" not in message
    assert caught.value.retryable


def test_urls() -> None:
    assert parse_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url("sqlite:////var/lib/k.db").database == "/var/lib/k.db"
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        parse_url("mysql://u@h/db")
    with pytest.raises(StoreError, match="not a database URL"):
        parse_url("keelwatch.db")


def test_database_errors_in_a_session_are_store_errors_and_roll_back(store: Store) -> None:
    with pytest.raises(StoreError, match="no_such_table"), store.session() as session:
        session.execute(text("SELECT * FROM no_such_table"))
    with pytest.raises(ValueError, match="mine"), store.session() as session:
        session.execute(text("INSERT INTO image_references (name, reference, manifest_digest, first_seen, last_seen)"
                             " VALUES ('n', 'r', 'd', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        raise ValueError("mine")  # the caller's own error passes unchanged, and nothing is kept
    assert store.reference_history("n") == []
