"""Catalogs through the store, on SQLite and PostgreSQL: round trips, re-saves, queries."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from sqlalchemy import func, select, text

from keelwatch.errors import StoreError
from keelwatch.model import Package
from keelwatch.store import Store, catalog
from keelwatch.store.tables import CatalogWarningRow, FileListRow, ImagePackageRow, ImageRow, LayerRow, PackageRow

from .builders import CATALOGERS, catalog_result, debian_package, digest, python_package, utc


def count(store: Store, table: type) -> int:
    with store.session(write=False) as session:
        return session.execute(select(func.count()).select_from(table)).scalar_one()


def test_round_trip_is_exact(store: Store) -> None:
    result = catalog_result()
    store.save_catalog(result)
    assert store.load_catalog(result.image.manifest_digest) == result


def test_round_trip_of_sparse_image_and_awkward_files(store: Store) -> None:
    result = catalog_result(2, [
        # Paths are bytes in a tar: non-UTF-8 names arrive as surrogate escapes and must survive.
        dataclasses.replace(debian_package("odd"), files=("usr/share/ü nicode", "usr/bin/\udcff\udcfe", "a\nb", "")),
        dataclasses.replace(python_package("empty", "0"), files=(), licenses=()),
    ])
    image = result.image
    image.os, image.created, image.index_digest, image.layers = None, None, None, []
    image.labels, image.repo_tags = {}, ()
    result.warnings, result.extra = [], {}
    store.save_catalog(result)
    assert store.load_catalog(image.manifest_digest) == result


def test_debian_sized_file_lists_round_trip(store: Store) -> None:
    files = tuple(f"usr/share/locale/{i % 300}/LC_MESSAGES/package-{i}.mo" for i in range(40_000))
    result = catalog_result(3, [dataclasses.replace(debian_package("locales"), files=files)])
    store.save_catalog(result)
    loaded = store.load_catalog(result.image.manifest_digest)
    assert loaded is not None and loaded.packages[0].files == files


def test_unknown_digest_loads_as_none(store: Store) -> None:
    assert store.load_catalog(digest("nope")) is None
    assert not store.has_catalog(digest("nope"), CATALOGERS)


def test_saving_the_same_digest_again_replaces_it_and_keeps_its_id(store: Store) -> None:
    first = catalog_result()
    image_id = store.save_catalog(first)
    assert store.save_catalog(first) == image_id
    assert store.load_catalog(first.image.manifest_digest) == first
    assert (count(store, ImageRow), count(store, LayerRow), count(store, ImagePackageRow),
            count(store, CatalogWarningRow)) == (1, 2, 5, 2)

    second = catalog_result(packages=[debian_package("openssl", "3.0.13-1~deb12u1")])
    second.warnings = []
    assert store.save_catalog(second) == image_id
    assert store.load_catalog(second.image.manifest_digest) == second
    assert (count(store, ImagePackageRow), count(store, CatalogWarningRow)) == (1, 0)


def test_package_identities_and_file_lists_are_stored_once(store: Store) -> None:
    store.save_catalog(catalog_result(1))
    store.save_catalog(catalog_result(2))
    store.save_catalog(catalog_result(2))
    # Five links per image, but Django twice in one image is one identity: four identities in all.
    assert count(store, ImagePackageRow) == 10
    assert count(store, PackageRow) == 4
    # libssl3, openssl and one list per Django site; base-files owns nothing.
    assert count(store, FileListRow) == 4


def test_changed_cataloger_versions_invalidate_the_catalog(store: Store) -> None:
    result = catalog_result()
    store.save_catalog(result)
    assert store.has_catalog(result.image.manifest_digest, {"python": 1, "dpkg": 3})
    assert not store.has_catalog(result.image.manifest_digest, {"dpkg": 4, "python": 1})
    assert not store.has_catalog(result.image.manifest_digest, {"dpkg": 3})
    assert not store.has_catalog(result.image.manifest_digest, {**CATALOGERS, "npm": 1})
    store.save_catalog(catalog_result(catalogers={"dpkg": 4, "python": 1}))
    assert store.has_catalog(result.image.manifest_digest, {"dpkg": 4, "python": 1})


def test_an_error_in_the_middle_of_a_save_leaves_the_previous_catalog(store: Store,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    before = catalog_result()
    store.save_catalog(before)
    after = catalog_result(packages=[debian_package("curl")])

    def crash(*args: object) -> None:  # the image row is updated and the old links deleted by now
        raise RuntimeError("crash between writes")

    monkeypatch.setattr(catalog, "_save_warnings", crash)
    with pytest.raises(RuntimeError, match="crash between writes"):
        store.save_catalog(after)
    assert store.load_catalog(before.image.manifest_digest) == before

    def database_fails(session, *args: object) -> None:  # type: ignore[no-untyped-def]
        session.execute(text("INSERT INTO no_such_table VALUES (1)"))

    monkeypatch.setattr(catalog, "_save_warnings", database_fails)
    with pytest.raises(StoreError, match="no_such_table"):
        store.save_catalog(after)
    assert store.load_catalog(before.image.manifest_digest) == before


def test_a_package_id_collision_is_an_error_not_a_merge(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.save_catalog(catalog_result(1, [debian_package("a")]))
    key_of_a = catalog.package_key(debian_package("a"))
    monkeypatch.setattr(catalog, "package_key", lambda package: key_of_a)
    with pytest.raises(StoreError, match="shared by two different packages"):
        store.save_catalog(catalog_result(2, [debian_package("b")]))
    with pytest.raises(StoreError, match="shared by two different packages"):
        store.save_catalog(catalog_result(3, [debian_package("c"), debian_package("d")]))
    assert store.load_catalog(digest(2)) is None


def test_package_ids_are_stable_hashes_of_identity() -> None:
    # Stored in every database: changing the hash would orphan every stored link.
    assert catalog.package_key(Package("PyPI", "requests", "2.31.0")) == 4803578823310423582
    moved = dataclasses.replace(python_package("Django", "4.2.7"), location="elsewhere", files=(), found_by="x")
    assert catalog.package_key(moved) == catalog.package_key(python_package("Django", "4.2.7"))


def test_images_with_package_by_name_and_by_source(store: Store) -> None:
    store.save_catalog(catalog_result(1))
    store.save_catalog(catalog_result(2, [debian_package("libssl3", "3.0.9-1", source="openssl")]))
    store.save_catalog(catalog_result(3, [python_package("flask", "3.0.0")]))

    by_name = store.images_with_package("Debian:12", "libssl3")
    assert [(hit.manifest_digest, hit.package.version) for hit in by_name] == [
        (digest(1), "3.0.11-1~deb12u2"), (digest(2), "3.0.9-1")]
    assert by_name[0].package.files == ()  # the matcher needs versions, not 40k paths
    assert by_name[0].package.layer_digest == digest("l1")

    by_source = store.images_with_package("Debian:12", "openssl", by_source=True)
    assert sorted((hit.manifest_digest, hit.package.name) for hit in by_source) == [
        (digest(1), "libssl3"), (digest(1), "openssl"), (digest(2), "libssl3")]

    django = store.images_with_package("PyPI", "Django")
    assert len(django) == 2 and {hit.image_id for hit in django} == {store.save_catalog(catalog_result(1))}
    assert store.images_with_package("Debian:11", "libssl3") == []


def test_list_images(store: Store) -> None:
    assert store.list_images() == []
    other = catalog_result(2, [python_package("flask", "3.0.0")])
    other.image.name, other.image.os = "docker.io/library/alpha", None
    store.save_catalog(catalog_result(1))
    store.save_catalog(other)
    listed = store.list_images()
    assert [(i.name, i.manifest_digest, i.package_count, i.ecosystem) for i in listed] == [
        ("docker.io/library/alpha", digest(2), 1, None), ("localhost:5000/app", digest(1), 5, "Debian:12")]
    assert listed[1].platform == "linux/arm64/v8" and listed[1].catalogers == CATALOGERS
    assert listed[1].created == utc(2024, 5, 6, 5, 8, 9, 123456)
    assert listed[1].cataloged_at.tzinfo is not None


def test_reference_history_follows_a_tag_across_digests(store: Store) -> None:
    name = "docker.io/library/nginx:latest"
    store.record_reference("nginx", name, digest(1), digest("i1"), seen=utc(2026, 1, 1))
    store.record_reference("nginx:latest", name, digest(1), digest("i1"), seen=utc(2026, 1, 5))
    store.record_reference("nginx", name, digest(2), digest("i2"), seen=utc(2026, 2, 1))
    store.record_reference("nginx", name, digest(1), digest("i1"), seen=utc(2026, 1, 3))  # a late report
    history = store.reference_history(name)
    assert [(r.manifest_digest, r.first_seen, r.last_seen, r.reference) for r in history] == [
        (digest(2), utc(2026, 2, 1), utc(2026, 2, 1), "nginx"),
        (digest(1), utc(2026, 1, 1), utc(2026, 1, 5), "nginx"),
    ]
    assert store.reference_history("docker.io/library/redis:latest") == []


def test_concurrent_writers_of_one_digest_leave_one_whole_catalog(store: Store, store_url: str) -> None:
    results = [catalog_result(1, [debian_package(f"p{i}-{j}") for j in range(20)]) for i in range(4)]
    errors: list[BaseException] = []

    def write(result: object) -> None:
        try:
            with Store.open(store_url) as own:
                for _ in range(3):
                    own.save_catalog(result)  # type: ignore[arg-type]
                    own.save_catalog(catalog_result(f"other-{id(result)}"))
        except BaseException as exc:  # reported below, with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.load_catalog(digest(1)) in results
    assert count(store, ImagePackageRow) == 20 + 4 * 5
