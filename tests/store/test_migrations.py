"""The shipped migrations: from an empty database to head on both engines, and equal to the models."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from keelwatch.errors import StoreError
from keelwatch.store import Store
from keelwatch.store.migrate import HEAD, alembic_config, head_revision
from keelwatch.store.tables import Base

from .builders import catalog_result


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A database nobody has migrated yet (the shared store fixture's is migrated already)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sub' / 'dir' / 'empty.db'}"
    else:
        yield request.getfixturevalue("pg_server").create_database()


def table_names(store: Store) -> set[str]:
    return set(inspect(store.engine).get_table_names())


def test_opening_an_empty_database_migrates_it_to_head(empty_url: str) -> None:
    with Store.open(empty_url) as store:
        assert table_names(store) == set(Base.metadata.tables) | {"alembic_version"}
        with store.engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_heads() == (head_revision(),)
        assert store.migrate() is False  # already at head: nothing to do
        store.save_catalog(catalog_result())


def test_head_matches_the_models(empty_url: str) -> None:
    with Store.open(empty_url) as store, store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_migrations_downgrade_to_nothing_and_back(empty_url: str) -> None:
    with Store.open(empty_url) as store:
        with store.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        assert table_names(store) == {"alembic_version"}
        assert store.migrate() is True
        assert table_names(store) == set(Base.metadata.tables) | {"alembic_version"}


def test_file_lists_survive_a_downgrade_and_upgrade_through_0002(empty_url: str) -> None:
    result = catalog_result()
    with Store.open(empty_url) as store:
        store.save_catalog(result)
        store.save_catalog(catalog_result(2))  # the same lists again: stored once, moved once
        with store.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0001")
        with store.engine.connect() as connection:
            blobs = connection.execute(text("SELECT files FROM image_packages WHERE files IS NOT NULL")).scalars()
            assert len(list(blobs)) == 8  # five packages an image, one of which owns no files
        assert store.migrate() is True
        assert store.load_catalog(result.image.manifest_digest) == result
        with store.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM file_lists")).scalar() == 4


def test_without_auto_migrate_an_old_schema_is_an_error(empty_url: str) -> None:
    with pytest.raises(StoreError, match="not at the current schema") as caught:
        Store.open(empty_url, migrate=False)
    assert "keelwatch db migrate" in str(caught.value)
    Store.open(empty_url).close()
    Store.open(empty_url, migrate=False).close()


def test_a_schema_from_a_newer_keelwatch_is_refused(empty_url: str) -> None:
    Store.open(empty_url).close()
    engine = create_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    for migrate in (True, False):
        with pytest.raises(StoreError, match="revision '9999'.*upgrade keelwatch"):
            Store.open(empty_url, migrate=migrate)


def test_processes_opening_one_new_database_together_migrate_it_once(empty_url: str) -> None:
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            Store.open(empty_url).close()
        except BaseException as exc:  # reported below, with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_the_head_constant_is_the_newest_migration() -> None:
    # Opening a store compares the database with HEAD and loads Alembic only when they differ.
    assert head_revision() == HEAD, "a migration was added: set HEAD in keelwatch/store/migrate.py to its revision"


def test_0012_fills_each_scanned_images_risk_from_its_findings(empty_url: str) -> None:
    from datetime import UTC, datetime

    from keelwatch.model import Finding, Package
    from keelwatch.risk import finding_risk
    from keelwatch.store import findings as stored
    from keelwatch.store.findings import StoredFinding, finding_key, finding_row

    now = datetime.now(UTC)
    digest = "sha256:" + "a" * 64
    package = Package(ecosystem="PyPI", name="requests", version="2.25.1", kind="lang")
    made = [Finding(id=f"PYSEC-{n}", package=package, installed_version="2.25.1", severity=sev, kev=kev, epss=epss,
                    fix_available=fix)
            for n, (sev, kev, epss, fix) in enumerate([("critical", True, 0.5, True), ("low", False, None, False),
                                                       ("unknown", False, 0.05, True)])]
    with Store.open(empty_url) as store:
        with store.session() as session:
            session.execute(stored.FINDINGS.insert(), [finding_row(StoredFinding(
                finding_key(digest, f.id, package.id), digest, f, now, now, now)) for f in made])
            stored.refresh_counts(session, [digest], sync=None, now=now)
        expected = sum(finding_risk(f.severity, f.kev, f.epss, f.fix_available) for f in made)
        with store.session(write=False) as session:
            assert stored.image_scan(session, digest).risk == pytest.approx(expected)  # type: ignore[union-attr]
        with store.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0011")
        assert store.migrate() is True  # the upgrade recomputes from the findings
        with store.session(write=False) as session:
            scan = stored.image_scan(session, digest)
        assert scan is not None and scan.risk == pytest.approx(expected) and scan.epss_over == 1
