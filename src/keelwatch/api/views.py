"""What the API and the dashboard show, as plain JSON values: one function per view, shared by both.

An endpoint and a page that show the same thing call the same function here (the architecture's
rule), so the dashboard can never disagree with ``/api/v1``. Each function is one read
transaction. The fleet views (containers, groupings, alerts, SLA) are in ``posture_views``; both
modules are imported by the web adapter too, and should move out of ``keelwatch.api`` together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select

from keelwatch.match.vex import suppressions
from keelwatch.reports.findings import SEVERITY_ORDER, finding_to_json, ordered, scan_to_json, severity_rank
from keelwatch.store import Store
from keelwatch.store import advisories as kb
from keelwatch.store import catalog as stored_catalog
from keelwatch.store import findings as stored_findings
from keelwatch.store import inventory as stored_inventory
from keelwatch.store.advisories import iso_time
from keelwatch.store.catalog import ImageSummary
from keelwatch.store.findings import ImageScan
from keelwatch.store.inventory import StoredContainer
from keelwatch.store.tables import FindingRow, ImageScanRow


def _iso(value: datetime | None) -> str | None:
    return iso_time(value)


def image_ref_json(s: ImageSummary) -> dict[str, Any]:
    """The ``image`` object of ``keelwatch scan --format json``, from a stored summary."""
    return {"digest": s.manifest_digest, "reference": s.reference, "name": s.name, "index_digest": s.index_digest,
            "platform": s.platform, "ecosystem": s.ecosystem}


def image_item(s: ImageSummary, scan: ImageScan | None) -> dict[str, Any]:
    counts = scan.counts if scan else {label: 0 for label in SEVERITY_ORDER}
    return {
        "digest": s.manifest_digest, "name": s.name, "reference": s.reference, "index_digest": s.index_digest,
        "platform": s.platform, "ecosystem": s.ecosystem, "os": s.os_pretty_name, "package_count": s.package_count,
        "cataloged_at": _iso(s.cataloged_at), "scanned": scan is not None,
        "scanned_at": _iso(scan.scanned_at) if scan else None, "sync": scan.sync if scan else None,
        "counts": {label: counts.get(label, 0) for label in SEVERITY_ORDER},
        "total": scan.total if scan else 0, "kev": scan.kev if scan else 0, "fixable": scan.fixable if scan else 0,
        "unknowns": scan.unknowns if scan else 0, "no_data": list(scan.no_data) if scan else [],
    }


def list_images(store: Store) -> list[dict[str, Any]]:
    """Every stored image with its severity counts (``image_scans``; suppressed findings included)."""
    with store.session(write=False) as session:
        summaries = stored_catalog.list_images(session)
        scans = stored_findings.image_scans(session)
    return [image_item(s, scans.get(s.manifest_digest)) for s in summaries]


def _summary(session: Any, digest: str) -> ImageSummary | None:
    # list_images is the one query that builds summaries; an image page needs only one of them.
    return next((s for s in stored_catalog.list_images(session) if s.manifest_digest == digest), None)


def image_detail(store: Store, digest: str, *, now: datetime | None = None) -> dict[str, Any] | None:
    """One image as ``keelwatch scan --format json`` shows it (suppressed findings listed), plus its
    list item; None when no image has this digest."""
    with store.session(write=False) as session:
        summary = _summary(session, digest)
        if summary is None:
            return None
        scan = stored_findings.image_scan(session, digest)
        found = stored_findings.load_findings(session, digest) if scan else []
        unknowns = stored_findings.load_unknowns(session, digest) if scan else []
        suppressed = suppressions(session, digest, found, now)
    doc = scan_to_json(image_ref_json(summary), found, unknowns, scan, suppressed)
    doc["item"] = image_item(summary, scan)
    return doc


def vulnerability(store: Store, vuln_id: str, *, now: datetime | None = None) -> dict[str, Any] | None:
    """Where does ``vuln_id`` (a CVE, GHSA, PYSEC … id or alias) occur: the images whose findings name it.

    None when neither a stored advisory nor any finding names it.
    """
    vuln_id = vuln_id.strip()
    with store.session(write=False) as session:
        by_image = stored_findings.findings_with_alias(session, [vuln_id])
        advisory = kb.get_advisory(session, vuln_id)
        summaries = {s.manifest_digest: s for s in stored_catalog.list_images(session)} if by_image else {}
        live = [c for c in stored_inventory.list_containers(session) if c.values.digest in by_image] if by_image else []
        images: list[dict[str, Any]] = []
        for digest in sorted(by_image):
            found = stored_findings.load_findings(session, digest, (), keys=by_image[digest])
            suppressed = suppressions(session, digest, found, now)
            summary = summaries.get(digest)
            images.append({
                "digest": digest, "name": summary.name if summary else "",
                "reference": summary.reference if summary else "",
                "suppressed": bool(found) and all(s.key in suppressed for s in found),
                "findings": [finding_to_json(s, suppressed.get(s.key)) for s in ordered(found)],
            })
    if advisory is None and not images:
        return None
    suppressed_on = {i["digest"] for i in images if i["suppressed"]}
    findings = [f for image in images for f in image["findings"]]
    aliases = sorted({a for f in findings for a in (f["id"], *f["aliases"], *f["advisory_ids"])} - {vuln_id})
    if advisory is not None:
        aliases = sorted(set(aliases) | set(advisory.aliases) | ({advisory.id} - {vuln_id}))
    severity = min((f["severity"] for f in findings), key=severity_rank, default="unknown")
    epss = [f["epss"] for f in findings if f["epss"] is not None]
    return {
        "id": vuln_id, "aliases": aliases,
        "summary": (advisory.summary if advisory else "") or next((f["summary"] for f in findings if f["summary"]), ""),
        "severity": severity, "kev": any(f["kev"] for f in findings), "epss": max(epss) if epss else None,
        "fixed_versions": sorted({v for f in findings for v in f["fixed_versions"]}),
        "advisory": kb.advisory_to_json(advisory) if advisory else None,
        "image_count": len(images), "affected_images": sum(1 for i in images if not i["suppressed"]),
        "images": sorted(images, key=lambda i: (i["suppressed"], i["name"], i["digest"])),
        "running": running(live, suppressed_on),
    }


def running(live: Sequence[StoredContainer], suppressed_on: set[str]) -> dict[str, Any]:
    """Where an advisory runs right now: the live containers on its images, their workloads and owners.

    Containers on an image where every finding of it is suppressed are listed with ``suppressed``
    and count in neither ``affected_containers`` nor ``owners``.
    """
    containers: list[dict[str, Any]] = []
    workloads: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for c in live:
        v = c.values
        quiet = v.digest in suppressed_on
        containers.append({"key": v.key, "cluster": v.cluster, "namespace": v.namespace,
                           "workload_kind": v.workload_kind, "workload": v.workload, "pod": v.pod,
                           "container": v.container, "image": v.reference or v.image, "digest": v.digest,
                           "owner": v.owner, "team": v.team, "environment": v.environment, "suppressed": quiet})
        w = workloads.setdefault((v.cluster, v.namespace, v.workload_kind, v.workload), {
            "cluster": v.cluster, "namespace": v.namespace, "workload_kind": v.workload_kind, "workload": v.workload,
            "containers": 0, "owners": set(), "environments": set(), "suppressed": True})
        w["containers"] += 1
        w["owners"].update(x for x in (v.owner, v.team) if x)
        if v.environment:
            w["environments"].add(v.environment)
        w["suppressed"] = w["suppressed"] and quiet
    return {"containers": containers, "affected_containers": sum(1 for c in containers if not c["suppressed"]),
            "workloads": [{**w, "owners": sorted(w["owners"]), "environments": sorted(w["environments"])}
                          for _, w in sorted(workloads.items())],
            "owners": sorted({x for c in containers if not c["suppressed"] for x in (c["owner"], c["team"]) if x})}


def list_vulnerabilities(store: Store) -> list[dict[str, Any]]:
    """Every advisory some stored finding names, with how many images carry it (one grouped query)."""
    f = FindingRow.__table__.c
    rank = case(*((f.severity == label, i) for i, label in enumerate(SEVERITY_ORDER)), else_=len(SEVERITY_ORDER) - 1)
    query = (select(f.advisory_id, func.min(rank), func.max(case((f.kev, 1), else_=0)), func.max(f.epss),
                    func.max(f.cvss_score), func.count(func.distinct(f.image_digest)), func.count(),
                    func.min(f.summary))
             .group_by(f.advisory_id))
    with store.session(write=False) as session:
        rows = session.execute(query).all()
        aliases: dict[str, list[str]] = {}
        for advisory_id, names in session.execute(select(f.advisory_id, f.aliases).distinct()):
            known = aliases.setdefault(advisory_id, [])
            known.extend(a for a in names if a not in known)
    return [{"id": r[0], "aliases": aliases.get(r[0], []), "severity": SEVERITY_ORDER[int(r[1])], "kev": bool(r[2]),
             "epss": r[3], "cvss_score": r[4], "images": int(r[5]), "findings": int(r[6]), "summary": r[7] or ""}
            for r in rows]


def feed_items(store: Store, *, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or datetime.now(UTC)
    out = []
    for s in store.feed_status():
        age = s.age(now)
        out.append({"name": s.name, "kind": s.kind, "url": s.url, "status": s.status,
                    "last_attempt": _iso(s.last_attempt), "last_success": _iso(s.last_success),
                    "age_seconds": round(age.total_seconds(), 3) if age is not None else None, "error": s.error,
                    "last_sync": s.last_sync, "advisories": s.advisories, "withdrawn": s.withdrawn,
                    "exploitability": s.exploitability, "problems": s.problems})
    return out


def event_items(store: Store, since: int | datetime | None, *, image: str | None = None) -> list[dict[str, Any]]:
    """Finding events as ``keelwatch findings events --format json`` prints them."""
    with store.session(write=False) as session:
        found = stored_findings.finding_events(session, since, image_digest=image)
    return [{"event_id": e.id, "event": e.event, "id": e.advisory_id, "aliases": list(e.aliases),
             "image_digest": e.image_digest, "finding_key": e.finding_key,
             "package": {"ecosystem": e.package_ecosystem, "name": e.package_name, "version": e.package_version},
             "severity": e.severity, "sync": e.sync, "time": _iso(e.time), "changes": e.changes} for e in found]


def fleet_overview(store: Store, *, now: datetime | None = None) -> dict[str, Any]:
    """The dashboard's first screen: fleet severity counts, KEV, images scanned, feed freshness."""
    s = ImageScanRow.__table__.c
    sums = [func.coalesce(func.sum(getattr(s, label)), 0) for label in (*SEVERITY_ORDER, "total", "kev", "fixable")]
    with store.session(write=False) as session:
        row = session.execute(select(func.count(), *sums)).one()
        images = len(stored_catalog.list_images(session))
        kev_images = session.execute(select(func.count()).where(s.kev > 0)).scalar_one()
        latest_sync = kb.latest_sync_id(session)
    labels = (*SEVERITY_ORDER, "total", "kev", "fixable")
    totals = dict(zip(labels, (int(v) for v in row[1:]), strict=True))
    return {"images": images, "scanned": int(row[0]), "kev_images": int(kev_images),
            "counts": {label: totals[label] for label in SEVERITY_ORDER}, "total": totals["total"],
            "kev": totals["kev"], "fixable": totals["fixable"], "latest_sync": latest_sync,
            "feeds": feed_items(store, now=now)}


def severity_totals(items: Sequence[dict[str, Any]]) -> dict[str, int]:
    return {label: sum(i["counts"][label] for i in items) for label in SEVERITY_ORDER}
