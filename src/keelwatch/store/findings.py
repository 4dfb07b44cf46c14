"""Findings in the database: per image digest, with their events, unknowns and severity counts.

Functions take a ``Session`` so keelwatch.match can write one image's (or a whole re-match's)
findings, events and counts in one transaction; ``Store`` wraps the reads in one transaction each.

Writes are set-based: the findings of the packages a scan or re-match judged are deleted and
inserted again in bulk (one executemany per table), first_seen carried over by the caller, then
the image's counts are recomputed by one grouped query in the same transaction, so
``image_scans`` never disagrees with ``findings``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, and_, case, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from keelwatch.model import AffectedRange, Finding, MatchDetail, Package, Unknown
from keelwatch.names import ecosystem_family
from keelwatch.risk import EPSS_THRESHOLD, WEIGHT
from keelwatch.store.catalog import ImagePackage, _insert
from keelwatch.store.tables import (
    FindingAliasRow,
    FindingEventRow,
    FindingRow,
    ImagePackageRow,
    ImageRow,
    ImageScanRow,
    ImageUnknownRow,
    PackageRow,
    PackageSearchKeyRow,
    RematchStateRow,
    SyncRow,
)

FINDINGS: Table = FindingRow.__table__  # type: ignore[assignment]
ALIASES: Table = FindingAliasRow.__table__  # type: ignore[assignment]
EVENTS: Table = FindingEventRow.__table__  # type: ignore[assignment]
UNKNOWNS: Table = ImageUnknownRow.__table__  # type: ignore[assignment]
SCANS: Table = ImageScanRow.__table__  # type: ignore[assignment]
SEARCH_KEYS: Table = PackageSearchKeyRow.__table__  # type: ignore[assignment]

IN_CHUNK = 1000
SEVERITIES = ("critical", "high", "medium", "low", "unknown")
_ECOSYSTEM_WIDE = ("no-data", "no-release", "no-matcher")


def finding_key(image_digest: str, group_id: str, package_uid: str) -> str:
    """The stable key of a finding: hash of (image digest, alias-group id, package identity)."""
    return hashlib.sha256(f"{image_digest}\x00{group_id}\x00{package_uid}".encode()).hexdigest()[:32]


# --- values ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredFinding:
    key: str
    image_digest: str
    finding: Finding
    first_seen: datetime
    last_seen: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class FindingEvent:
    """One opened / closed / changed finding, as alerting reads it."""

    id: int
    event: str
    finding_key: str
    advisory_id: str
    aliases: tuple[str, ...]
    image_digest: str
    package_ecosystem: str
    package_name: str
    package_version: str
    severity: str
    sync: int | None
    time: datetime
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ImageScan:
    """An image's severity counts and scan state: the table posture groups by."""

    image_digest: str
    scanned_at: datetime
    sync: int | None
    counts: dict[str, int]  # severity → open findings
    total: int
    kev: int
    fixable: int
    unknowns: int
    no_data: tuple[str, ...]
    epss_over: int = 0  # findings with EPSS ≥ keelwatch.risk.EPSS_THRESHOLD
    risk: float = 0.0  # the sum of keelwatch.risk.finding_risk over its findings


@dataclass(slots=True)
class ImageWrite:
    """What one scan or re-match writes for one image, applied by ``apply_image_write``.

    ``package_uids`` None replaces every finding and unknown of the image (a full scan); a set
    replaces only those packages' findings and per-package unknowns (a re-match of what changed).
    """

    image_digest: str
    findings: list[StoredFinding]
    events: list[dict[str, Any]]  # opened/closed/changed, as ``event_row`` makes them
    unknowns: list[Unknown] = field(default_factory=list)
    package_uids: Collection[str] | None = None
    replace_keys: Collection[str] = ()  # stored keys to delete besides those of package_uids
    no_data: Sequence[str] | None = None  # None: keep what is stored


# --- codecs ---------------------------------------------------------------------------------------------


def _detail_json(d: MatchDetail) -> dict[str, Any]:
    return {"advisory_id": d.advisory_id, "source": d.source, "kind": d.kind, "ecosystem": d.ecosystem,
            "name": d.name, "version": d.version, "listed": d.listed,
            "ranges": [{"type": r.type, "events": [list(e) for e in r.events], **({"repo": r.repo} if r.repo else {})}
                       for r in d.ranges]}


def _detail_model(doc: dict[str, Any]) -> MatchDetail:
    return MatchDetail(advisory_id=doc["advisory_id"], source=doc["source"], kind=doc["kind"],
                       ecosystem=doc["ecosystem"], name=doc["name"], version=doc["version"],
                       listed=bool(doc.get("listed")),
                       ranges=tuple(AffectedRange(type=r["type"], events=tuple((k, v) for k, v in r["events"]),
                                                  repo=r.get("repo", "")) for r in doc.get("ranges", ())))


def finding_row(stored: StoredFinding) -> dict[str, Any]:
    f, p = stored.finding, stored.finding.package
    return {
        "key": stored.key, "image_digest": stored.image_digest, "advisory_id": f.id,
        "advisory_ids": list(f.advisory_ids), "aliases": list(f.aliases), "upstream": list(f.upstream),
        "summary": f.summary, "package_uid": p.id, "package_ecosystem": p.ecosystem, "package_name": p.name,
        "package_version": p.version, "package_purl": p.purl, "package_kind": p.kind,
        "package_source_name": p.source_name, "package_source_version": p.source_version, "package_arch": p.arch,
        "package_location": p.location, "installed_version": f.installed_version,
        "fixed_versions": list(f.fixed_versions), "fix_available": f.fix_available, "severity": f.severity,
        "severity_source": f.severity_source, "cvss_score": f.cvss_score, "cvss_vector": f.cvss_vector,
        "cvss_source": f.cvss_source, "kev": f.kev, "kev_date_added": f.kev_date_added, "epss": f.epss,
        "epss_percentile": f.epss_percentile, "layer_digest": f.layer_digest,
        "details": [_detail_json(d) for d in f.details],
        "sources": sorted({d.source for d in f.details}),
        "first_seen": stored.first_seen, "last_seen": stored.last_seen, "updated": stored.updated,
    }


def _finding_model(r: Any) -> StoredFinding:
    package = Package(ecosystem=r.package_ecosystem, name=r.package_name, version=r.package_version,
                      kind=r.package_kind, purl=r.package_purl, source_name=r.package_source_name,
                      source_version=r.package_source_version, arch=r.package_arch, layer_digest=r.layer_digest,
                      location=r.package_location)
    finding = Finding(
        id=r.advisory_id, package=package, installed_version=r.installed_version,
        advisory_ids=tuple(r.advisory_ids), aliases=tuple(r.aliases), upstream=tuple(r.upstream), summary=r.summary,
        fixed_versions=tuple(r.fixed_versions), fix_available=bool(r.fix_available), severity=r.severity,
        severity_source=r.severity_source, cvss_score=r.cvss_score, cvss_vector=r.cvss_vector,
        cvss_source=r.cvss_source, kev=bool(r.kev), kev_date_added=r.kev_date_added, epss=r.epss,
        epss_percentile=r.epss_percentile, layer_digest=r.layer_digest,
        details=tuple(_detail_model(d) for d in r.details))
    return StoredFinding(key=r.key, image_digest=r.image_digest, finding=finding, first_seen=r.first_seen,
                         last_seen=r.last_seen, updated=r.updated)


def event_row(event: str, key: str, image_digest: str, finding: Finding, *, sync: int | None, time: datetime,
              changes: dict[str, Any] | None = None) -> dict[str, Any]:
    p = finding.package
    return {"event": event, "finding_key": key, "advisory_id": finding.id, "aliases": list(finding.aliases),
            "image_digest": image_digest, "package_ecosystem": p.ecosystem, "package_name": p.name,
            "package_version": p.version, "severity": finding.severity, "sync": sync, "time": time,
            "changes": changes or {}}


def _unknown_row(image_digest: str, position: int, u: Unknown) -> dict[str, Any]:
    return {"image_digest": image_digest, "position": position, "kind": u.kind, "reason": u.reason,
            "ecosystem": u.ecosystem, "package_uid": u.package.id if u.package else None,
            "package_name": u.package.name if u.package else "", "package_version": u.package.version if u.package
            else "", "advisory_ids": list(u.advisory_ids), "package_count": u.package_count}


def _unknown_model(r: Any) -> Unknown:
    # The package is kept as name and version only: enough to show, and to replace by uid.
    package = Package(ecosystem=r.ecosystem, name=r.package_name, version=r.package_version) \
        if r.package_uid is not None else None
    return Unknown(kind=r.kind, reason=r.reason, ecosystem=r.ecosystem, package=package,
                   advisory_ids=tuple(r.advisory_ids), package_count=r.package_count)


# --- reads ----------------------------------------------------------------------------------------------


def load_findings(session: Session, image_digest: str, package_uids: Collection[str] | None = None,
                  keys: Collection[str] = ()) -> list[StoredFinding]:
    """An image's stored findings; only those of ``package_uids`` (and ``keys``) when given."""
    query = select(FindingRow).where(FindingRow.image_digest == image_digest)
    if package_uids is None:
        return [_finding_model(r) for r in session.execute(query.order_by(FindingRow.key)).scalars()]
    out: dict[str, StoredFinding] = {}
    uids, wanted = sorted(package_uids), sorted(keys)
    for i in range(0, len(uids), IN_CHUNK):
        for r in session.execute(query.where(FindingRow.package_uid.in_(uids[i:i + IN_CHUNK]))).scalars():
            out[r.key] = _finding_model(r)
    for i in range(0, len(wanted), IN_CHUNK):
        for r in session.execute(query.where(FindingRow.key.in_(wanted[i:i + IN_CHUNK]))).scalars():
            out[r.key] = _finding_model(r)
    return sorted(out.values(), key=lambda s: s.key)


def load_findings_many(session: Session, digests: Collection[str]) -> dict[str, list[StoredFinding]]:
    """The stored findings of many images at once (one query per chunk of digests), by digest."""
    wanted = sorted(set(digests))
    out: dict[str, list[StoredFinding]] = {d: [] for d in wanted}
    for i in range(0, len(wanted), IN_CHUNK):
        query = (select(FindingRow).where(FindingRow.image_digest.in_(wanted[i:i + IN_CHUNK]))
                 .order_by(FindingRow.image_digest, FindingRow.key))
        for r in session.execute(query).scalars():
            out[r.image_digest].append(_finding_model(r))
    return out


def findings_with_alias(session: Session, aliases: Iterable[str]) -> dict[str, set[str]]:
    """Image digest → keys of the findings that name any of ``aliases`` (a KEV/EPSS change's CVEs)."""
    wanted = sorted(set(aliases))
    out: dict[str, set[str]] = {}
    for i in range(0, len(wanted), IN_CHUNK):
        rows = session.execute(select(FindingRow.image_digest, FindingRow.key)
                               .join(FindingAliasRow, FindingAliasRow.finding_key == FindingRow.key)
                               .where(FindingAliasRow.alias.in_(wanted[i:i + IN_CHUNK])))
        for digest, key in rows:
            out.setdefault(digest, set()).add(key)
    return out


def load_unknowns(session: Session, image_digest: str) -> list[Unknown]:
    rows = session.execute(select(ImageUnknownRow).where(ImageUnknownRow.image_digest == image_digest)
                           .order_by(ImageUnknownRow.position)).scalars()
    return [_unknown_model(r) for r in rows]


def image_scan(session: Session, image_digest: str) -> ImageScan | None:
    r = session.get(ImageScanRow, image_digest)
    return None if r is None else _scan_model(r)


def image_scans(session: Session, digests: Collection[str] | None = None) -> dict[str, ImageScan]:
    query = select(ImageScanRow)
    if digests is None:
        return {r.image_digest: _scan_model(r) for r in session.execute(query).scalars()}
    out: dict[str, ImageScan] = {}
    wanted = sorted(digests)
    for i in range(0, len(wanted), IN_CHUNK):
        for r in session.execute(query.where(ImageScanRow.image_digest.in_(wanted[i:i + IN_CHUNK]))).scalars():
            out[r.image_digest] = _scan_model(r)
    return out


def _scan_model(r: ImageScanRow) -> ImageScan:
    return ImageScan(image_digest=r.image_digest, scanned_at=r.scanned_at, sync=r.sync,
                     counts={s: getattr(r, s) for s in SEVERITIES}, total=r.total, kev=r.kev, fixable=r.fixable,
                     unknowns=r.unknowns, no_data=tuple(r.no_data), epss_over=r.epss_over, risk=r.risk)


def finding_events(session: Session, since: int | datetime | None = None, *,
                   image_digest: str | None = None) -> list[FindingEvent]:
    """Events after sync ``since`` (those of later syncs, and scans after it finished), or at/after a time."""
    query = select(FindingEventRow).order_by(FindingEventRow.id)
    if isinstance(since, datetime):
        query = query.where(FindingEventRow.time >= (since if since.tzinfo else since.replace(tzinfo=UTC)))
    elif since is not None:
        finished = session.execute(select(SyncRow.finished).where(SyncRow.id == since)).scalar()
        scans_after = and_(FindingEventRow.sync.is_(None), FindingEventRow.time > finished) \
            if finished is not None else FindingEventRow.sync.is_(None)
        query = query.where(or_(FindingEventRow.sync > since, scans_after))
    if image_digest is not None:
        query = query.where(FindingEventRow.image_digest == image_digest)
    return [FindingEvent(id=r.id, event=r.event, finding_key=r.finding_key, advisory_id=r.advisory_id,
                         aliases=tuple(r.aliases), image_digest=r.image_digest,
                         package_ecosystem=r.package_ecosystem, package_name=r.package_name,
                         package_version=r.package_version, severity=r.severity, sync=r.sync, time=r.time,
                         changes=dict(r.changes)) for r in session.execute(query).scalars()]


# --- the package index: (ecosystem, match name) → packages → images -------------------------------------


def unkeyed_packages(session: Session) -> list[tuple[int, Package]]:
    """Stored packages without search keys yet (every keyed package has at least one row)."""
    p = PackageRow.__table__.c
    keyed = select(SEARCH_KEYS.c.package_id).where(SEARCH_KEYS.c.package_id == p.id).exists()
    rows = session.execute(select(p.id, p.ecosystem, p.name, p.version, p.kind, p.purl, p.source_name,
                                  p.source_version, p.arch).where(~keyed))
    return [(r.id, Package(ecosystem=r.ecosystem, name=r.name, version=r.version, kind=r.kind, purl=r.purl,
                           source_name=r.source_name, source_version=r.source_version, arch=r.arch)) for r in rows]


def insert_search_keys(session: Session, rows: Sequence[tuple[int, str, str]]) -> None:
    if rows:
        stmt = _insert(session, SEARCH_KEYS).on_conflict_do_nothing()
        session.execute(stmt, [{"package_id": i, "ecosystem": e, "match_name": n} for i, e, n in sorted(set(rows))])


def scanned_images_with_keys(session: Session, keys: Iterable[tuple[str, str]]) -> list[ImagePackage]:
    """The packages of *scanned* images whose search keys are among ``keys`` ((ecosystem, match name)).

    A distro package keyed under its bare family (its release unknown to the cataloger) is found
    too when its image's release is the key's (``Debian`` + image ``Debian:12`` for ``Debian:12``).
    """
    link, pkg, img, k = ImagePackageRow.__table__.c, PackageRow.__table__.c, ImageRow.__table__.c, SEARCH_KEYS.c
    exact = sorted(set(keys))
    base = (select(img.manifest_digest, link.image_id, pkg.id, pkg.ecosystem, pkg.name, pkg.version, pkg.kind,
                   pkg.purl, pkg.source_name, pkg.source_version, pkg.arch, link.layer_digest, link.found_by,
                   link.location, link.licenses).distinct()
            .select_from(SEARCH_KEYS)
            .join(ImagePackageRow.__table__, link.package_id == k.package_id)
            .join(PackageRow.__table__, pkg.id == k.package_id)
            .join(ImageRow.__table__, img.id == link.image_id)
            .join(SCANS, SCANS.c.image_digest == img.manifest_digest))
    rows: list[Any] = []
    for i in range(0, len(exact), IN_CHUNK // 2):
        chunk = exact[i:i + IN_CHUNK // 2]
        rows.extend(session.execute(base.where(tuple_(k.ecosystem, k.match_name).in_(chunk))))
        released = [(ecosystem_family(e), n, e) for e, n in chunk if ":" in e]
        if released:
            rows.extend(session.execute(base.where(
                tuple_(k.ecosystem, k.match_name, img.ecosystem).in_(released))))
    seen: set[tuple[str, int, str]] = set()
    out: list[ImagePackage] = []
    for r in rows:
        package = Package(ecosystem=r.ecosystem, name=r.name, version=r.version, kind=r.kind, purl=r.purl,
                          source_name=r.source_name, source_version=r.source_version, arch=r.arch,
                          layer_digest=r.layer_digest, found_by=r.found_by, location=r.location,
                          licenses=tuple(r.licenses))
        marker = (r.manifest_digest, r.id, package.id)
        if marker not in seen:
            seen.add(marker)
            out.append(ImagePackage(manifest_digest=r.manifest_digest, image_id=r.image_id, package_id=r.id,
                                    package=package))
    return out


def image_packages(session: Session, digests: Collection[str] | None = None, *,
                   scanned_only: bool = False) -> dict[str, list[ImagePackage]]:
    """Digest → its packages in cataloged order, without owned files (all images when None).

    ``scanned_only``: only images that have been scanned (a full re-match re-judges those).
    """
    link, pkg, img = ImagePackageRow.__table__.c, PackageRow.__table__.c, ImageRow.__table__.c
    base = (select(img.manifest_digest, link.image_id, pkg.id, pkg.ecosystem, pkg.name, pkg.version, pkg.kind,
                   pkg.purl, pkg.source_name, pkg.source_version, pkg.arch, link.layer_digest, link.found_by,
                   link.location, link.licenses)
            .select_from(ImagePackageRow.__table__)
            .join(PackageRow.__table__, pkg.id == link.package_id)
            .join(ImageRow.__table__, img.id == link.image_id)
            .order_by(img.manifest_digest, link.position))
    if scanned_only:
        base = base.join(SCANS, SCANS.c.image_digest == img.manifest_digest)
    queries = [base] if digests is None else [
        base.where(img.manifest_digest.in_(chunk)) for chunk in
        (sorted(digests)[i:i + IN_CHUNK] for i in range(0, len(digests), IN_CHUNK))]
    out: dict[str, list[ImagePackage]] = {}
    for query in queries:
        for r in session.execute(query):
            package = Package(ecosystem=r.ecosystem, name=r.name, version=r.version, kind=r.kind, purl=r.purl,
                              source_name=r.source_name, source_version=r.source_version, arch=r.arch,
                              layer_digest=r.layer_digest, found_by=r.found_by, location=r.location,
                              licenses=tuple(r.licenses))
            out.setdefault(r.manifest_digest, []).append(
                ImagePackage(manifest_digest=r.manifest_digest, image_id=r.image_id, package_id=r.id,
                             package=package))
    return out


def image_ecosystems(session: Session, digests: Collection[str]) -> dict[str, str | None]:
    wanted = sorted(digests)
    out: dict[str, str | None] = {}
    for i in range(0, len(wanted), IN_CHUNK):
        rows = session.execute(select(ImageRow.manifest_digest, ImageRow.ecosystem)
                               .where(ImageRow.manifest_digest.in_(wanted[i:i + IN_CHUNK])))
        out.update((digest, ecosystem) for digest, ecosystem in rows)
    return out


# --- writes ---------------------------------------------------------------------------------------------


def apply_image_write(session: Session, write: ImageWrite, *, sync: int | None, now: datetime) -> None:
    """Replace an image's findings (all, or those of some packages), its unknowns, add events, recount."""
    digest = write.image_digest
    f = FINDINGS.c
    if write.package_uids is None:
        doomed = list(session.execute(select(f.key).where(f.image_digest == digest)).scalars())
    else:
        uids = sorted(write.package_uids)
        doomed = []
        for i in range(0, len(uids), IN_CHUNK):
            doomed.extend(session.execute(select(f.key).where(f.image_digest == digest,
                                                              f.package_uid.in_(uids[i:i + IN_CHUNK]))).scalars())
        doomed.extend(write.replace_keys)
    doomed = sorted(set(doomed))
    for i in range(0, len(doomed), IN_CHUNK):
        chunk = doomed[i:i + IN_CHUNK]
        # Aliases first and explicitly: SQLite enforces no foreign keys unless asked.
        session.execute(delete(ALIASES).where(ALIASES.c.finding_key.in_(chunk)))
        session.execute(delete(FINDINGS).where(f.key.in_(chunk)))
    if write.findings:
        session.execute(insert(FINDINGS), [finding_row(s) for s in write.findings])
        session.execute(insert(ALIASES), [
            {"finding_key": s.key, "alias": alias} for s in write.findings
            for alias in sorted({*s.finding.advisory_ids, s.finding.id, *s.finding.aliases, *s.finding.upstream})])
    if write.events:
        session.execute(insert(EVENTS), write.events)
    _replace_unknowns(session, write)
    refresh_counts(session, [digest], sync=sync, now=now, no_data={digest: write.no_data})


def _replace_unknowns(session: Session, write: ImageWrite) -> None:
    digest = write.image_digest
    kept: list[dict[str, Any]] = []
    if write.package_uids is not None:
        uids = set(write.package_uids)
        for r in session.execute(select(UNKNOWNS).where(UNKNOWNS.c.image_digest == digest)
                                 .order_by(UNKNOWNS.c.position)).mappings():
            if r["package_uid"] is None or r["package_uid"] not in uids:
                kept.append(dict(r))
        new = [u for u in write.unknowns if u.kind not in _ECOSYSTEM_WIDE or u.package is not None]
    else:
        new = list(write.unknowns)
    session.execute(delete(UNKNOWNS).where(UNKNOWNS.c.image_digest == digest))
    rows = [{**r, "position": i} for i, r in enumerate(kept)]
    rows += [_unknown_row(digest, len(rows) + i, u) for i, u in enumerate(new)]
    if rows:
        session.execute(insert(UNKNOWNS), rows)


def risk_sql() -> Any:
    """``keelwatch.risk.finding_risk`` of a findings row, as SQL (summed per image in ``image_scans``)."""
    f = FINDINGS.c
    weight = case(*((f.severity == label, w) for label, w in WEIGHT.items() if label != "unknown"),
                  else_=WEIGHT["unknown"])
    return (weight * case((f.kev, 3.0), else_=1.0) * (1.0 + 4.0 * func.coalesce(f.epss, 0.0))
            * case((f.fix_available, 1.25), else_=1.0))


def refresh_counts(session: Session, digests: Collection[str], *, sync: int | None, now: datetime,
                   no_data: dict[str, Sequence[str] | None] | None = None) -> None:
    """Recount the images' findings by severity into ``image_scans`` (one grouped query)."""
    f, u = FINDINGS.c, UNKNOWNS.c
    wanted = sorted(digests)
    no_data = no_data or {}
    for i in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[i:i + IN_CHUNK]
        counts: dict[str, dict[str, Any]] = {
            d: {**{s: 0 for s in (*SEVERITIES, "total", "kev", "fixable", "epss_over")}, "risk": 0.0} for d in chunk}
        rows = session.execute(
            select(f.image_digest, f.severity, func.count(), func.sum(case((f.kev, 1), else_=0)),
                   func.sum(case((f.fix_available, 1), else_=0)),
                   func.sum(case((func.coalesce(f.epss, 0.0) >= EPSS_THRESHOLD, 1), else_=0)), func.sum(risk_sql()))
            .where(f.image_digest.in_(chunk)).group_by(f.image_digest, f.severity))
        for digest, severity, n, kev, fixable, epss_over, risk in rows:
            c = counts[digest]
            c[severity if severity in SEVERITIES else "unknown"] += n
            c["total"] += n
            c["kev"] += int(kev or 0)
            c["fixable"] += int(fixable or 0)
            c["epss_over"] += int(epss_over or 0)
            c["risk"] += float(risk or 0.0)
        unknowns = {digest: n for digest, n in session.execute(
            select(u.image_digest, func.count()).where(u.image_digest.in_(chunk)).group_by(u.image_digest))}
        stored = {r.image_digest: r for r in session.execute(select(SCANS).where(SCANS.c.image_digest.in_(chunk)))}
        rows_out = []
        for digest in chunk:
            previous = stored.get(digest)
            given = no_data.get(digest)
            rows_out.append({"image_digest": digest, "scanned_at": now,
                             "sync": sync if sync is not None else (previous.sync if previous else None),
                             **counts[digest], "unknowns": unknowns.get(digest, 0),
                             "no_data": list(given) if given is not None else
                             (list(previous.no_data) if previous else [])})
        stmt = _insert(session, SCANS)
        stmt = stmt.on_conflict_do_update(index_elements=["image_digest"],
                                          set_={c: stmt.excluded[c] for c in rows_out[0] if c != "image_digest"})
        session.execute(stmt, rows_out)


def rematch_watermark(session: Session, *, lock: bool = False) -> int | None:
    query = select(RematchStateRow.last_sync).where(RematchStateRow.name == "journal")
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.execute(query).scalar()


def set_rematch_watermark(session: Session, last_sync: int, *, now: datetime) -> None:
    stmt = _insert(session, RematchStateRow.__table__).values(name="journal", last_sync=last_sync, updated=now)
    session.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                               set_={"last_sync": last_sync, "updated": now}))


def touch_images(session: Session, digests: Collection[str], *, sync: int | None, now: datetime) -> None:
    """Note that a re-match confirmed these images at ``sync`` without changing their findings."""
    wanted = sorted(digests)
    values: dict[str, Any] = {"scanned_at": now}
    if sync is not None:
        values["sync"] = sync
    for i in range(0, len(wanted), IN_CHUNK):
        session.execute(update(SCANS).where(SCANS.c.image_digest.in_(wanted[i:i + IN_CHUNK])).values(**values))
