"""Catalogs in the database: save, load and query images and their packages.

Functions take a ``Session`` so they can join a caller's transaction; ``Store`` wraps each in one.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from keelwatch.errors import StoreError
from keelwatch.model import CatalogResult, CatalogWarning, Image, Layer, OSRelease, Package, Platform
from keelwatch.store.tables import (
    CatalogWarningRow,
    FileListRow,
    ImagePackageRow,
    ImageReferenceRow,
    ImageRow,
    LayerRow,
    PackageRow,
)

# Well under SQLite's bound-parameter limit (32,766) and PostgreSQL's (65,535) per statement.
IN_CHUNK = 1000
# zlib level 1: measured on a Debian host's 131k owned paths (7.7 MB), level 1 packs to 11.9% in
# 27 ms, level 6 to 9.5% in 77 ms; saving is on the cataloging path, and lists are stored once.
FILES_ZLIB_LEVEL = 1


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """One stored image as listings show it, without its packages."""

    id: int
    manifest_digest: str
    index_digest: str | None
    name: str
    reference: str
    platform: str
    ecosystem: str | None
    os_pretty_name: str | None
    created: datetime | None
    cataloged_at: datetime
    package_count: int
    catalogers: dict[str, int]


@dataclass(frozen=True, slots=True)
class ImagePackage:
    """A package as carried by one image (``package.files`` is left empty: ask ``load_catalog``)."""

    manifest_digest: str
    image_id: int
    package_id: int
    package: Package


@dataclass(frozen=True, slots=True)
class ReferenceRecord:
    """One step of a reference's history: it resolved to this digest from first_seen to last_seen."""

    name: str
    reference: str
    manifest_digest: str
    index_digest: str | None
    first_seen: datetime
    last_seen: datetime


# --- package identity and files ---------------------------------------------------------------------


def package_identity(package: Package) -> tuple[str, ...]:
    return (package.ecosystem, package.name, package.version, package.purl, package.source_name,
            package.source_version, package.arch, package.kind)


def package_key(package: Package) -> int:
    """The packages table's id: a signed 64-bit hash of the identity, the same from any writer."""
    digest = hashlib.sha256("\x00".join(package_identity(package)).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def join_files(files: Sequence[str]) -> bytes:
    """Paths NUL-joined: a path can hold any byte but NUL. Surrogates (undecodable names) survive."""
    return "\x00".join(files).encode("utf-8", "surrogatepass")


def file_list_id(joined: bytes) -> bytes:
    return hashlib.sha256(joined).digest()[:16]


def unpack_files(blob: bytes | None) -> tuple[str, ...]:
    if blob is None:
        return ()
    return tuple(zlib.decompress(blob).decode("utf-8", "surrogatepass").split("\x00"))


# --- writes -------------------------------------------------------------------------------------------


def _insert(session: Session, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT on both SQLite and PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def save_catalog(session: Session, result: CatalogResult, *, now: datetime | None = None) -> int:
    """Store ``result`` as the catalog of its manifest digest, replacing any previous one; the image id.

    The image row is updated in place, so its id (which other tables refer to) survives a
    re-catalog; its layers, package links and warnings are replaced.
    """
    image = result.image
    os_release = image.os
    values = {
        "manifest_digest": image.manifest_digest,
        "index_digest": image.index_digest,
        "config_digest": image.config_digest,
        "platform": str(image.platform),
        "os_id": os_release.id if os_release else None,
        "os_version_id": os_release.version_id if os_release else None,
        "os_pretty_name": os_release.pretty_name if os_release else None,
        "os_codename": os_release.version_codename if os_release else None,
        "ecosystem": os_release.ecosystem if os_release else None,
        "name": image.name,
        "reference": image.reference,
        "repo_tags": list(image.repo_tags),
        "created": image.created,
        "labels": dict(image.labels),
        "source_kind": image.source_kind,
        "cataloged_at": now or datetime.now(UTC),
        "catalogers": dict(result.catalogers),
        "package_count": len(result.packages),
        "extra": dict(result.extra),
    }
    # An upsert, not select-then-insert: two workers saving the same new digest must not collide.
    stmt = _insert(session, ImageRow.__table__).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["manifest_digest"],
        set_={key: stmt.excluded[key] for key in values if key != "manifest_digest"},
    ).returning(ImageRow.__table__.c.id)
    image_id: int = session.execute(stmt).scalar_one()

    for table in (LayerRow, ImagePackageRow, CatalogWarningRow):
        session.execute(delete(table).where(table.image_id == image_id))

    if image.layers:
        session.execute(_insert(session, LayerRow.__table__), [
            {"image_id": image_id, "index": layer.index, "digest": layer.digest, "diff_id": layer.diff_id,
             "media_type": layer.media_type, "size": layer.size}
            for layer in image.layers
        ])
    keys = _save_packages(session, result.packages)
    file_ids = _save_file_lists(session, result.packages)
    if result.packages:
        session.execute(_insert(session, ImagePackageRow.__table__), [
            {"image_id": image_id, "position": position, "package_id": key, "layer_digest": package.layer_digest,
             "location": package.location, "found_by": package.found_by, "licenses": list(package.licenses),
             "files_id": files_id}
            for position, (package, key, files_id) in enumerate(zip(result.packages, keys, file_ids, strict=True))
        ])
    _save_warnings(session, image_id, result.warnings)
    return image_id


def _save_packages(session: Session, packages: Sequence[Package]) -> list[int]:
    """Insert the identities not yet stored; the key of each package, in order."""
    keys = [package_key(p) for p in packages]
    wanted: dict[int, tuple[str, ...]] = {}
    for package, key in zip(packages, keys, strict=True):
        identity = package_identity(package)
        if wanted.setdefault(key, identity) != identity:
            raise _collision(key, wanted[key], identity)
    stored: dict[int, tuple[str, ...]] = {}
    columns = PackageRow.__table__.c
    identity_columns = (columns.ecosystem, columns.name, columns.version, columns.purl, columns.source_name,
                        columns.source_version, columns.arch, columns.kind)
    for chunk in _chunks(list(wanted), IN_CHUNK):
        for row in session.execute(select(columns.id, *identity_columns).where(columns.id.in_(chunk))):
            stored[row[0]] = tuple(row[1:])
    # 64 bits make a collision unlikely, not impossible: two packages must never merge silently.
    for key, identity in stored.items():
        if wanted[key] != identity:
            raise _collision(key, identity, wanted[key])
    missing = [key for key in wanted if key not in stored]
    if missing:
        names = ("ecosystem", "name", "version", "purl", "source_name", "source_version", "arch", "kind")
        stmt = _insert(session, PackageRow.__table__).on_conflict_do_nothing(index_elements=["id"])
        session.execute(stmt, [{"id": key, **dict(zip(names, wanted[key], strict=True))} for key in missing])
    return keys


def _save_file_lists(session: Session, packages: Sequence[Package]) -> list[bytes | None]:
    """Insert the file lists not yet stored; the id of each package's list (None: no files)."""
    ids: list[bytes | None] = []
    joined_by_id: dict[bytes, bytes] = {}
    for package in packages:
        if not package.files:
            ids.append(None)
            continue
        joined = join_files(package.files)
        list_id = file_list_id(joined)
        joined_by_id[list_id] = joined
        ids.append(list_id)
    column = FileListRow.__table__.c.id
    stored: set[bytes] = set()
    for chunk in _chunks(list(joined_by_id), IN_CHUNK):
        stored.update(session.execute(select(column).where(column.in_(chunk))).scalars())
    # Compressing only what is new: re-saves and images on a shared base cost a hash, not a deflate.
    missing = [{"id": list_id, "files": zlib.compress(joined, FILES_ZLIB_LEVEL)}
               for list_id, joined in joined_by_id.items() if list_id not in stored]
    if missing:
        stmt = _insert(session, FileListRow.__table__).on_conflict_do_nothing(index_elements=["id"])
        session.execute(stmt, missing)
    return ids


def _collision(key: int, a: tuple[str, ...], b: tuple[str, ...]) -> StoreError:
    return StoreError(f"package id {key} is shared by two different packages: {a!r} and {b!r}",
                      hint="a 64-bit hash collision; please report it")


def _save_warnings(session: Session, image_id: int, warnings: Sequence[CatalogWarning]) -> None:
    if warnings:
        session.execute(_insert(session, CatalogWarningRow.__table__), [
            {"image_id": image_id, "position": position, "message": w.message, "path": w.path,
             "layer_digest": w.layer_digest, "cataloger": w.cataloger}
            for position, w in enumerate(warnings)
        ])


def record_reference(session: Session, reference: str, name: str, manifest_digest: str,
                     index_digest: str | None, *, seen: datetime | None = None) -> None:
    """Remember that ``name`` (as given: ``reference``) resolved to ``manifest_digest`` at ``seen``."""
    seen = seen or datetime.now(UTC)
    stmt = _insert(session, ImageReferenceRow.__table__).values(
        name=name, reference=reference, manifest_digest=manifest_digest, index_digest=index_digest,
        first_seen=seen, last_seen=seen,
    )
    table = ImageReferenceRow.__table__
    stmt = stmt.on_conflict_do_update(
        index_elements=["name", "manifest_digest"],
        set_={"reference": stmt.excluded.reference, "index_digest": stmt.excluded.index_digest,
              # An observation older than the one stored (a late report) must not move time back.
              "last_seen": _greatest(session, table.c.last_seen, stmt.excluded.last_seen)},
    )
    session.execute(stmt)


def _greatest(session: Session, a: Any, b: Any) -> Any:
    from sqlalchemy import func

    # SQLite's two-argument max() is its GREATEST.
    return func.greatest(a, b) if session.get_bind().dialect.name == "postgresql" else func.max(a, b)


# --- reads --------------------------------------------------------------------------------------------


def has_catalog(session: Session, manifest_digest: str, catalogers: dict[str, int]) -> bool:
    stored = session.execute(
        select(ImageRow.catalogers).where(ImageRow.manifest_digest == manifest_digest)
    ).scalar_one_or_none()
    return stored is not None and stored == catalogers


def load_catalog(session: Session, manifest_digest: str) -> CatalogResult | None:
    row = session.execute(select(ImageRow).where(ImageRow.manifest_digest == manifest_digest)).scalar_one_or_none()
    if row is None:
        return None
    layers = [
        Layer(digest=r.digest, media_type=r.media_type, size=r.size, diff_id=r.diff_id, index=r.index)
        for r in session.execute(select(LayerRow).where(LayerRow.image_id == row.id).order_by(LayerRow.index)).scalars()
    ]
    image = Image(
        reference=row.reference,
        name=row.name,
        manifest_digest=row.manifest_digest,
        config_digest=row.config_digest,
        platform=_platform(row.platform),
        layers=layers,
        index_digest=row.index_digest,
        os=None if row.os_id is None else OSRelease(
            id=row.os_id, version_id=row.os_version_id or "", pretty_name=row.os_pretty_name or "",
            version_codename=row.os_codename or ""),
        created=row.created,
        labels=dict(row.labels),
        source_kind=row.source_kind,
        repo_tags=tuple(row.repo_tags),
    )
    link, pkg, file_list = ImagePackageRow.__table__.c, PackageRow.__table__.c, FileListRow.__table__.c
    packages = [
        Package(ecosystem=r.ecosystem, name=r.name, version=r.version, kind=r.kind, purl=r.purl,
                source_name=r.source_name, source_version=r.source_version, arch=r.arch,
                layer_digest=r.layer_digest, found_by=r.found_by, location=r.location,
                files=unpack_files(r.files), licenses=tuple(r.licenses))
        for r in session.execute(
            select(pkg.ecosystem, pkg.name, pkg.version, pkg.kind, pkg.purl, pkg.source_name, pkg.source_version,
                   pkg.arch, link.layer_digest, link.found_by, link.location, file_list.files, link.licenses)
            .join(PackageRow.__table__, pkg.id == link.package_id)
            .outerjoin(FileListRow.__table__, file_list.id == link.files_id)
            .where(link.image_id == row.id)
            .order_by(link.position)
        )
    ]
    warnings = [
        CatalogWarning(message=w.message, path=w.path, layer_digest=w.layer_digest, cataloger=w.cataloger)
        for w in session.execute(
            select(CatalogWarningRow).where(CatalogWarningRow.image_id == row.id).order_by(CatalogWarningRow.position)
        ).scalars()
    ]
    return CatalogResult(image=image, packages=packages, warnings=warnings,
                         catalogers=dict(row.catalogers), extra=dict(row.extra))


def _platform(text: str) -> Platform:
    parts = (text.split("/") + ["", "", ""])[:3]
    return Platform(os=parts[0], architecture=parts[1], variant=parts[2])


def list_images(session: Session) -> list[ImageSummary]:
    t = ImageRow.__table__.c
    rows = session.execute(
        select(t.id, t.manifest_digest, t.index_digest, t.name, t.reference, t.platform, t.ecosystem,
               t.os_pretty_name, t.created, t.cataloged_at, t.package_count, t.catalogers)
        .order_by(t.name, t.manifest_digest)
    )
    return [ImageSummary(**row._mapping) for row in rows]


def images_with_package(session: Session, ecosystem: str, name: str, *, by_source: bool = False) -> list[ImagePackage]:
    """Every image that carries ``name`` in ``ecosystem`` (its source package's name when ``by_source``).

    One indexed lookup on packages, then the (package_id, image_id) index fans out to the images:
    the matcher's way from an advisory to what it touches.
    """
    link, pkg, img = ImagePackageRow.__table__.c, PackageRow.__table__.c, ImageRow.__table__.c
    key = pkg.source_name if by_source else pkg.name
    rows = session.execute(
        select(img.manifest_digest, link.image_id, pkg.id, pkg.ecosystem, pkg.name, pkg.version, pkg.kind, pkg.purl,
               pkg.source_name, pkg.source_version, pkg.arch, link.layer_digest, link.found_by, link.location,
               link.licenses)
        .select_from(PackageRow.__table__)
        .join(ImagePackageRow.__table__, link.package_id == pkg.id)
        .join(ImageRow.__table__, img.id == link.image_id)
        .where(pkg.ecosystem == ecosystem, key == name)
        .order_by(img.manifest_digest, link.position)
    )
    return [
        ImagePackage(manifest_digest=r.manifest_digest, image_id=r.image_id, package_id=r.id, package=Package(
            ecosystem=r.ecosystem, name=r.name, version=r.version, kind=r.kind, purl=r.purl,
            source_name=r.source_name, source_version=r.source_version, arch=r.arch, layer_digest=r.layer_digest,
            found_by=r.found_by, location=r.location, licenses=tuple(r.licenses)))
        for r in rows
    ]


def reference_history(session: Session, name: str) -> list[ReferenceRecord]:
    t = ImageReferenceRow.__table__.c
    rows = session.execute(
        select(t.name, t.reference, t.manifest_digest, t.index_digest, t.first_seen, t.last_seen)
        .where(t.name == name).order_by(t.last_seen.desc(), t.id.desc())
    )
    return [ReferenceRecord(**row._mapping) for row in rows]


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
