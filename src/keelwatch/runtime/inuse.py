"""Runtime SBOM verification over the store: what each container ran, against its image's catalog.

The paths come from ``runtime_observations`` (written by ``keelwatch.runtime.ingest``), the
packages and their files from the catalog, the image's other files from its layer listing
(``record_image_files``). Without a listing, a path no package owns cannot be told apart:
it is reported under ``unowned`` instead of ``unpackaged`` or ``drift``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from keelwatch.model import Package
from keelwatch.runtime.layerfiles import ImageFiles, list_image_files
from keelwatch.runtime.verify import OwnerIndex, verify_with
from keelwatch.store import Store
from keelwatch.store import runtime as stored
from keelwatch.store.catalog import load_catalog


def record_image_files(store: Store, reference: str, *, digest: str | None = None) -> str:
    """List an image's layers (``reference`` as ``keelwatch scan`` takes it) and keep the listing; its digest."""
    from keelwatch.images import open_image

    opened = open_image(reference)
    files = list_image_files(opened)
    digest = digest or opened.image.manifest_digest
    with store.session() as session:
        stored.save_image_files(session, digest, files.files, files.links, datetime.now(UTC))
    return digest


def _index(session: Session, digest: str) -> tuple[OwnerIndex, list[Package], bool] | None:
    catalog = load_catalog(session, digest) if digest else None
    if catalog is None:
        return None
    listed = stored.load_image_files(session, digest)
    files, links = listed if listed is not None else (set(), {})
    return OwnerIndex(catalog.packages, ImageFiles(files=files, links=links)), catalog.packages, listed is not None


def verify_containers(session: Session, *, workload: str | None = None,
                      digest: str | None = None) -> list[dict[str, Any]]:
    """Per observed container: ``in_use_packages``, ``unpackaged``, ``drift`` (and how sure that is)."""
    groups: dict[str, list[Any]] = {}
    for row in stored.list_observations(session, digest=digest, workload=workload):
        groups.setdefault(row.container_key, []).append(row)
    indexes: dict[str, tuple[OwnerIndex, list[Package], bool] | None] = {}
    out: list[dict[str, Any]] = []
    for _key, rows in groups.items():
        first = rows[0]
        image_digest = max(rows, key=lambda r: r.last_seen).image_digest
        if image_digest not in indexes:
            indexes[image_digest] = _index(session, image_digest)
        found = indexes[image_digest]
        paths = sorted({r.path for r in rows if r.image_digest == image_digest})
        entry: dict[str, Any] = {
            "cluster": first.cluster, "namespace": first.namespace, "workload": first.workload, "pod": first.pod,
            "container": first.container, "image_digest": image_digest, "paths_seen": len(paths),
            "catalog": found is not None, "image_files": bool(found and found[2]),
            "last_seen": max(r.last_seen for r in rows).isoformat().replace("+00:00", "Z"),
        }
        if found is None:
            entry.update(in_use_packages=[], unpackaged=[], drift=[], unowned=paths)
        else:
            result = verify_with(paths, found[0]).to_json()
            if found[2]:
                entry.update(result, unowned=[])
            else:  # no layer listing: what no package owns may be in the image or not
                unowned = sorted(result["unpackaged"] + [d["path"] for d in result["drift"]])
                entry.update(in_use_packages=result["in_use_packages"], unpackaged=[], drift=[], unowned=unowned)
        out.append(entry)
    out.sort(key=lambda e: (e["cluster"], e["namespace"], e["workload"], e["pod"], e["container"]))
    return out


def in_use(session: Session, digest: str) -> dict[str, bool | None]:
    """Package id (``Package.id``) → whether code of it ran in a container of this image.

    ``None`` (unknown) for every package when no container of the image was observed, and for
    packages whose files the catalog does not know (no file list and no manifest location).
    """
    found = _index(session, digest)
    if found is None:
        return {}
    index, packages, _ = found
    observed = {r.path for r in stored.list_observations(session, digest=digest)}
    if not observed:
        return {p.id: None for p in packages}
    used = {u.package.id for u in verify_with(sorted(observed), index).in_use}
    return {p.id: True if p.id in used else (False if (p.files or p.location) else None) for p in packages}
