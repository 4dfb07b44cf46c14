"""Container posture and its groupings, top exposures and the remediation plan.

Propagation: each live container inherits the open, unsuppressed findings of exactly the image
digest it runs (the inventory's digest is the platform manifest). A container whose digest is
unknown, or whose image was never scanned, has **unknown posture** with the reason.

Group counts are *distinct findings* over the group's containers — (image digest, finding) pairs —
so three replicas of one image count its findings once, and a workload's counts equal its image's.

Risk score (documented in docs/posture.md), per distinct finding, summed:

    weight(severity) × (3 if KEV) × (1 + 4 × EPSS) × (1.25 if a fix is available)

with weight critical 10, high 5, medium 2, low 0.5, unknown 3 (unrated is not harmless). KEV and
EPSS rank what attackers use first; an available fix ranks what can be done now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from keelwatch.match.vex import suppressions_many
from keelwatch.risk import EPSS_THRESHOLD, WEIGHT, finding_risk
from keelwatch.store import advisories as kb
from keelwatch.store import findings as stored_findings
from keelwatch.store import inventory as stored_inventory
from keelwatch.store.findings import StoredFinding

SEVERITIES = ("critical", "high", "medium", "low", "unknown")
GROUPINGS = ("container", "workload", "namespace", "cluster", "environment", "owner", "team", "image")


def risk(findings: Iterable[StoredFinding]) -> float:
    return round(sum(finding_risk(s.finding.severity, s.finding.kev, s.finding.epss, s.finding.fix_available)
                     for s in findings), 2)


@dataclass(slots=True)
class ImagePosture:
    digest: str
    scanned_at: datetime | None
    findings: list[StoredFinding]  # open, unsuppressed
    suppressed: int
    no_data: tuple[str, ...]


@dataclass(slots=True)
class ContainerPosture:
    container: stored_inventory.StoredContainer
    image: ImagePosture | None
    unknown_reason: str | None  # why posture is unknown; None when known

    @property
    def values(self) -> stored_inventory.ContainerValues:
        return self.container.values


@dataclass(slots=True)
class Fleet:
    containers: list[ContainerPosture]
    images: dict[str, ImagePosture]
    feeds: list[kb.FeedStatus]
    sources: list[stored_inventory.SourceStatus]
    now: datetime


def fleet(session: Session, *, now: datetime | None = None) -> Fleet:
    now = now or datetime.now(UTC)
    live = stored_inventory.list_containers(session)
    digests = sorted({c.values.digest for c in live if c.values.digest})
    scans = stored_findings.image_scans(session, digests)
    images: dict[str, ImagePosture] = {}
    scanned = [d for d in digests if d in scans]
    found_by_digest = stored_findings.load_findings_many(session, scanned)
    quiet_by_digest = suppressions_many(session, found_by_digest, now)
    for digest in scanned:
        scan, found = scans[digest], found_by_digest.get(digest, [])
        quiet = quiet_by_digest.get(digest, {})
        images[digest] = ImagePosture(digest, scan.scanned_at, [s for s in found if s.key not in quiet],
                                      len(quiet), scan.no_data)
    out: list[ContainerPosture] = []
    for c in live:
        v = c.values
        if not v.digest:
            out.append(ContainerPosture(c, None, v.resolution_error or "digest unknown"))
        elif v.digest not in images:
            out.append(ContainerPosture(c, None, "image not scanned yet"))
        else:
            out.append(ContainerPosture(c, images[v.digest], None))
    return Fleet(out, images, kb.feed_status(session), stored_inventory.source_status(session), now)


def _counts(findings: Iterable[StoredFinding]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for s in findings:
        counts[s.finding.severity if s.finding.severity in counts else "unknown"] += 1
    return counts


def _key_fn(by: str) -> Callable[[ContainerPosture], dict[str, Any]]:
    def key(c: ContainerPosture) -> dict[str, Any]:
        v = c.values
        if by == "container":
            return {"cluster": v.cluster, "namespace": v.namespace, "workload_kind": v.workload_kind,
                    "workload": v.workload, "pod": v.pod, "container": v.container}
        if by == "workload":
            return {"cluster": v.cluster, "namespace": v.namespace, "workload_kind": v.workload_kind,
                    "workload": v.workload}
        if by == "namespace":
            return {"cluster": v.cluster, "namespace": v.namespace}
        if by in ("cluster", "environment", "owner", "team"):
            return {by: getattr(v, by)}
        if by == "image":
            return {"image": v.reference or v.image, "digest": v.digest}
        if by.startswith("label:"):
            name = by.split(":", 1)[1]
            return {"label": name, "value": str(v.labels.get(name, ""))}
        raise ValueError(f"unknown grouping {by!r} (one of: {', '.join(GROUPINGS)}, label:KEY)")

    return key


@dataclass(slots=True)
class _Group:
    keys: dict[str, Any]
    containers: int = 0
    unknown: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    findings: dict[tuple[str, str], StoredFinding] = field(default_factory=dict)
    digests: set[str] = field(default_factory=set)
    oldest_scan: datetime | None = None


def group_by(f: Fleet, by: str, *, epss_threshold: float = EPSS_THRESHOLD) -> list[dict[str, Any]]:
    """Rows for ``keelwatch posture --by``: keys, containers, counts, KEV, fixable, EPSS, risk, freshness."""
    key = _key_fn(by)
    groups: dict[tuple[Any, ...], _Group] = {}
    for c in f.containers:
        keys = key(c)
        g = groups.setdefault(tuple(keys.values()), _Group(keys))
        g.containers += 1
        if c.image is None:
            g.unknown += 1
            reason = c.unknown_reason or "unknown"
            g.reasons[reason] = g.reasons.get(reason, 0) + 1
            continue
        g.digests.add(c.image.digest)
        for s in c.image.findings:
            g.findings[(c.image.digest, s.key)] = s
        if c.image.scanned_at and (g.oldest_scan is None or c.image.scanned_at < g.oldest_scan):
            g.oldest_scan = c.image.scanned_at
    rows = []
    for g in groups.values():
        found = list(g.findings.values())
        rows.append({
            **g.keys, "containers": g.containers, "images": len(g.digests),
            "counts": _counts(found), "total": len(found),
            "kev": sum(1 for s in found if s.finding.kev),
            "fixable": sum(1 for s in found if s.finding.fix_available),
            "epss_over_threshold": sum(1 for s in found if (s.finding.epss or 0) >= epss_threshold),
            "risk": risk(found), "unknown_posture": g.unknown, "unknown_reasons": g.reasons,
            "oldest_scan": g.oldest_scan.isoformat() if g.oldest_scan else None,
            "scan_age_seconds": int((f.now - g.oldest_scan).total_seconds()) if g.oldest_scan else None,
        })
    order = list(next(iter(groups.values())).keys) if groups else []
    rows.sort(key=lambda r: (-r["risk"], -r["counts"]["critical"], [str(r[k]) for k in order]))
    return rows


def _advisory(s: StoredFinding) -> str:
    return next((a for a in s.finding.aliases if a.startswith("CVE-")), s.finding.id)


def top_exposures(f: Fleet, limit: int = 10) -> list[dict[str, Any]]:
    """The advisories that reach the most running containers."""
    reach: dict[str, dict[str, Any]] = {}
    for c in f.containers:
        if c.image is None:
            continue
        v = c.values
        for s in c.image.findings:
            row = reach.setdefault(_advisory(s), {"advisory": _advisory(s), "severity": s.finding.severity,
                                                  "kev": s.finding.kev, "containers": 0, "images": set(),
                                                  "workloads": set(), "packages": set()})
            row["containers"] += 1
            row["images"].add(c.image.digest)
            row["workloads"].add(f"{v.cluster}/{v.namespace}/{v.workload}")
            row["packages"].add(f"{s.finding.package.name} {s.finding.installed_version}")
    rows = sorted(reach.values(), key=lambda r: (-r["containers"], -WEIGHT.get(r["severity"], 3), r["advisory"]))
    return [{**r, "images": sorted(r["images"]), "workloads": sorted(r["workloads"]),
             "packages": sorted(r["packages"])} for r in rows[:limit]]


def remediation_plan(f: Fleet, limit: int = 10) -> list[dict[str, Any]]:
    """Which image rebuild removes the most critical findings from production, and how."""
    running: dict[str, list[ContainerPosture]] = {}
    for c in f.containers:
        if c.image is not None:
            running.setdefault(c.image.digest, []).append(c)
    plan = []
    for digest, containers in running.items():
        image = f.images[digest]
        fixable = [s for s in image.findings if s.finding.fix_available]
        critical = [s for s in fixable if s.finding.severity == "critical" or s.finding.kev]
        if not fixable:
            continue
        bumps: dict[tuple[str, str], set[str]] = {}
        for s in fixable:
            target = _next_fix(s)
            bumps.setdefault((s.finding.package.name, s.finding.installed_version), set()).update(
                [target] if target else [])
        # One version per package: the highest of the findings' nearest fixes clears them all.
        bumps = {k: {_highest(fleet_ecosystem(image, k[0]), v)} if v else set() for k, v in bumps.items()}
        plan.append({
            "digest": digest, "image": containers[0].values.reference or containers[0].values.image,
            "containers": len(containers), "critical_fixable": len(critical), "fixable": len(fixable),
            "removes_from_production": len(critical) * len(containers),
            "packages": [{"name": n, "installed": v, "fixed": sorted(fx)} for (n, v), fx in sorted(bumps.items())],
            "workloads": sorted({f"{c.values.cluster}/{c.values.namespace}/{c.values.workload}" for c in containers}),
            "owners": sorted({x for c in containers for x in (c.values.owner, c.values.team) if x}),
            "risk_removed": risk(fixable) * len(containers),
        })
    plan.sort(key=lambda p: (-p["removes_from_production"], -p["risk_removed"], p["digest"]))
    return plan[:limit]


def _next_fix(s: StoredFinding) -> str | None:
    """The nearest fixed version above the installed one (the fix on the package's own line)."""
    from keelwatch.errors import VersionError
    from keelwatch.versions import compare

    f = s.finding
    ecosystem = f.package.ecosystem.split(":")[0] if f.package.kind != "os" else f.package.ecosystem
    try:
        above = [v for v in f.fixed_versions if compare(ecosystem, v, f.installed_version) > 0]
        return min(above, key=lambda v: sort_key_for(ecosystem, v)) if above else None
    except VersionError:
        return f.fixed_versions[0] if f.fixed_versions else None


def sort_key_for(ecosystem: str, version: str) -> Any:
    from keelwatch.versions import sort_key

    return sort_key(ecosystem, version)


def fleet_ecosystem(image: ImagePosture, package: str) -> str:
    found = next((s.finding.package for s in image.findings if s.finding.package.name == package), None)
    if found is None:
        return ""
    return found.ecosystem.split(":")[0] if found.kind != "os" else found.ecosystem


def _highest(ecosystem: str, versions: set[str]) -> str:
    from keelwatch.errors import VersionError

    try:
        return max(versions, key=lambda v: sort_key_for(ecosystem, v))
    except VersionError:
        return sorted(versions)[-1]


def freshness(f: Fleet, *, stale_scan: timedelta = timedelta(days=7), stale_inventory: timedelta = timedelta(hours=1),
              stale_feed: timedelta = timedelta(days=2)) -> dict[str, Any]:
    def age(t: datetime | None) -> int | None:
        return None if t is None else int((f.now - t).total_seconds())

    feeds = [{"name": s.name, "last_success": s.last_success.isoformat() if s.last_success else None,
              "age_seconds": age(s.last_success),
              "stale": s.last_success is None or f.now - s.last_success > stale_feed} for s in f.feeds]
    sources = [{"name": s.name, "last_success": s.last_success.isoformat() if s.last_success else None,
                "age_seconds": age(s.last_success),
                "stale": s.last_success is None or f.now - s.last_success > stale_inventory} for s in f.sources]
    images = [{"digest": d, "scanned_at": i.scanned_at.isoformat() if i.scanned_at else None,
               "age_seconds": age(i.scanned_at),
               "stale": i.scanned_at is None or f.now - i.scanned_at > stale_scan} for d, i in sorted(f.images.items())]
    return {"feeds": feeds, "inventory": sources, "images": images,
            "stale": any(x["stale"] for x in (*feeds, *sources, *images))}


def summary(f: Fleet) -> dict[str, Any]:
    rows = group_by(f, "cluster")
    distinct = {(c.image.digest, s.key): s for c in f.containers if c.image for s in c.image.findings}
    return {"containers": len(f.containers), "images": len(f.images),
            "unknown_posture": sum(1 for c in f.containers if c.image is None),
            "counts": _counts(distinct.values()), "kev": sum(1 for s in distinct.values() if s.finding.kev),
            "risk": risk(distinct.values()), "clusters": [r["cluster"] for r in rows]}


# --- the fast path: posture rows from SQL aggregates, without loading findings ------------------------


@dataclass(slots=True)
class ImageAggregate:
    counts: dict[str, int]
    total: int
    kev: int
    fixable: int
    epss_over: int
    risk: float
    scanned_at: datetime | None


def image_aggregates(session: Session, *, epss_threshold: float = EPSS_THRESHOLD,
                     now: datetime | None = None) -> dict[str, ImageAggregate]:
    """Each scanned image's open, unsuppressed findings summed up: counts, KEV, fixable, EPSS, risk.

    One grouped query over the findings (the risk score computed in SQL); images that hold a
    finding some VEX statement or acceptance names are then recounted exactly in Python.
    """
    from sqlalchemy import case, func, select

    from keelwatch.store.findings import FINDINGS, SCANS, risk_sql

    out: dict[str, ImageAggregate] = {}
    if epss_threshold == EPSS_THRESHOLD:
        # The sums kept current in image_scans by every write of an image's findings.
        sc = SCANS.c
        for r in session.execute(select(sc.image_digest, sc.scanned_at, sc.critical, sc.high, sc.medium, sc.low,
                                        sc.unknown, sc.total, sc.kev, sc.fixable, sc.epss_over, sc.risk)):
            out[r.image_digest] = ImageAggregate(
                {label: getattr(r, label) for label in SEVERITIES}, r.total, r.kev, r.fixable, r.epss_over,
                float(r.risk), r.scanned_at)
    else:
        f = FINDINGS.c
        rows = session.execute(
            select(f.image_digest, f.severity, func.count(), func.sum(case((f.kev, 1), else_=0)),
                   func.sum(case((f.fix_available, 1), else_=0)),
                   func.sum(case((func.coalesce(f.epss, 0.0) >= epss_threshold, 1), else_=0)),
                   func.sum(risk_sql())).group_by(f.image_digest, f.severity))
        for digest, scanned_at in session.execute(select(SCANS.c.image_digest, SCANS.c.scanned_at)):
            out[digest] = ImageAggregate(dict.fromkeys(SEVERITIES, 0), 0, 0, 0, 0, 0.0, scanned_at)
        for digest, severity, n, kev, fixable, epss_over, risk_sum in rows:
            agg = out.get(digest)
            if agg is None:
                continue
            agg.counts[severity if severity in agg.counts else "unknown"] += n
            agg.total += n
            agg.kev += int(kev or 0)
            agg.fixable += int(fixable or 0)
            agg.epss_over += int(epss_over or 0)
            agg.risk += float(risk_sum or 0.0)
    _apply_suppressions(session, out, epss_threshold, now or datetime.now(UTC))
    for agg in out.values():
        agg.risk = round(agg.risk, 2)
    return out


def _suppression_deltas(session: Session, epss_threshold: float, now: datetime,
                        among: Iterable[str] | None = None) -> dict[str, ImageAggregate]:
    """Per image, what its suppressed findings contribute (to subtract): only images that hold a
    finding some VEX statement or acceptance in force names are read."""
    from sqlalchemy import select

    from keelwatch.match.vex import suppressions
    from keelwatch.store.tables import RiskAcceptanceRow, VexStatementRow

    named = set(session.execute(select(VexStatementRow.vulnerability).distinct()).scalars())
    named |= set(session.execute(select(RiskAcceptanceRow.vulnerability).distinct().where(
        RiskAcceptanceRow.revoked_at.is_(None), RiskAcceptanceRow.until > now)).scalars())
    if not named:
        return {}
    touched = set(stored_findings.findings_with_alias(session, named))
    if among is not None:
        touched &= set(among)
    out: dict[str, ImageAggregate] = {}
    for digest, found in stored_findings.load_findings_many(session, touched).items():
        quiet = suppressions(session, digest, found, now)
        d = ImageAggregate(dict.fromkeys(SEVERITIES, 0), 0, 0, 0, 0, 0.0, None)
        for s in found:
            if s.key in quiet:
                f = s.finding
                d.counts[f.severity if f.severity in d.counts else "unknown"] += 1
                d.total += 1
                d.kev += int(f.kev)
                d.fixable += int(f.fix_available)
                d.epss_over += int((f.epss or 0.0) >= epss_threshold)
                d.risk += finding_risk(f.severity, f.kev, f.epss, f.fix_available)
        if d.total:
            out[digest] = d
    return out


def _subtract(agg: ImageAggregate, d: ImageAggregate) -> None:
    for label, n in d.counts.items():
        agg.counts[label] -= n
    agg.total -= d.total
    agg.kev -= d.kev
    agg.fixable -= d.fixable
    agg.epss_over -= d.epss_over
    agg.risk -= d.risk


def _apply_suppressions(session: Session, aggregates: dict[str, ImageAggregate], epss_threshold: float,
                        now: datetime) -> None:
    for digest, d in _suppression_deltas(session, epss_threshold, now, aggregates).items():
        _subtract(aggregates[digest], d)


_COLUMNS = {
    "container": ("cluster", "namespace", "workload_kind", "workload", "pod", "container"),
    "workload": ("cluster", "namespace", "workload_kind", "workload"),
    "namespace": ("cluster", "namespace"),
    "cluster": ("cluster",), "environment": ("environment",), "owner": ("owner",), "team": ("team",),
}


def posture_rows(session: Session, by: str, *, epss_threshold: float = EPSS_THRESHOLD,
                 now: datetime | None = None) -> list[dict[str, Any]]:
    """``group_by(fleet(session), by)`` computed from aggregates: the same rows, for 100,000 containers.

    The live containers are grouped in SQL by the grouping's columns and the digest they run, and
    each group adds up the aggregates of its distinct digests (findings are per digest, so the
    distinct findings of a group are the union of its images').
    """
    from sqlalchemy import func

    from keelwatch.store.inventory import CONTAINERS

    now = now or datetime.now(UTC)
    c = CONTAINERS.c
    if by == "image":
        keys: tuple[str, ...] = ("image", "digest")
        key_columns = [func.coalesce(c.reference, c.image), c.digest]
    elif by.startswith("label:"):
        return group_by(fleet(session, now=now), by, epss_threshold=epss_threshold)
    elif by in _COLUMNS:
        keys = _COLUMNS[by]
        key_columns = [c[k] for k in keys]
    else:
        raise ValueError(f"unknown grouping {by!r} (one of: {', '.join(GROUPINGS)}, label:KEY)")
    if by != "container" and epss_threshold == EPSS_THRESHOLD:
        rows = _rows_in_sql(session, keys, key_columns, epss_threshold, now)
    else:
        rows = _rows_in_python(session, keys, key_columns, epss_threshold, now)
    rows.sort(key=lambda r: (-r["risk"], -r["counts"]["critical"], [str(r[k]) for k in keys]))
    return rows


def _rows_in_python(session: Session, keys: tuple[str, ...], key_columns: list[Any], epss_threshold: float,
                    now: datetime) -> list[dict[str, Any]]:
    """Container groups × digests from SQL, summed here over ``image_aggregates``."""
    from sqlalchemy import func, select

    from keelwatch.store.inventory import CONTAINERS

    c = CONTAINERS.c
    aggregates = image_aggregates(session, epss_threshold=epss_threshold, now=now)
    query = (select(*key_columns, c.digest, c.resolution_error, func.count())
             .where(c.ended_at.is_(None)).group_by(*key_columns, c.digest, c.resolution_error))
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in session.execute(query):
        key, digest, error, n = tuple(row[:len(keys)]), row[len(keys)], row[len(keys) + 1], row[-1]
        g = groups.setdefault(key, {"containers": 0, "unknown": 0, "reasons": {}, "digests": set()})
        g["containers"] += n
        if digest is None or digest not in aggregates:
            reason = (error or "digest unknown") if digest is None else "image not scanned yet"
            g["unknown"] += n
            g["reasons"][reason] = g["reasons"].get(reason, 0) + n
        else:
            g["digests"].add(digest)
    rows = []
    for key, g in groups.items():
        images = [aggregates[d] for d in g["digests"]]
        counts = dict.fromkeys(SEVERITIES, 0)
        for a in images:
            for label, n in a.counts.items():
                counts[label] += n
        oldest = min((a.scanned_at for a in images if a.scanned_at), default=None)
        rows.append({
            **dict(zip(keys, key, strict=True)), "containers": g["containers"], "images": len(images),
            "counts": counts, "total": sum(a.total for a in images), "kev": sum(a.kev for a in images),
            "fixable": sum(a.fixable for a in images), "epss_over_threshold": sum(a.epss_over for a in images),
            "risk": round(sum(a.risk for a in images), 2), "unknown_posture": g["unknown"],
            "unknown_reasons": g["reasons"], "oldest_scan": oldest.isoformat() if oldest else None,
            "scan_age_seconds": int((now - oldest).total_seconds()) if oldest else None,
        })
    return rows


def _rows_in_sql(session: Session, keys: tuple[str, ...], key_columns: list[Any], epss_threshold: float,
                 now: datetime) -> list[dict[str, Any]]:
    """The whole roll-up in three grouped queries: containers and unknown posture per group, the
    distinct images' stored sums per group (image_scans), and the few suppressed findings subtracted."""
    from sqlalchemy import and_, case, distinct, func, select

    from keelwatch.store.findings import SCANS
    from keelwatch.store.inventory import CONTAINERS

    c, sc = CONTAINERS.c, SCANS.c
    live = c.ended_at.is_(None)
    scanned = select(sc.image_digest).where(sc.image_digest == c.digest).exists()
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in session.execute(select(*key_columns, func.count()).where(live).group_by(*key_columns)):
        groups[tuple(row[:-1])] = {"containers": row[-1], "unknown": 0, "reasons": {}, "images": 0,
                                   "sums": ImageAggregate(dict.fromkeys(SEVERITIES, 0), 0, 0, 0, 0, 0.0, None)}
    reason = case((c.digest.is_(None), func.coalesce(c.resolution_error, "digest unknown")),
                  else_="image not scanned yet")
    for row in session.execute(select(*key_columns, reason, func.count())
                               .where(live, (c.digest.is_(None)) | ~scanned).group_by(*key_columns, reason)):
        g = groups[tuple(row[:-2])]
        g["unknown"] += row[-1]
        g["reasons"][row[-2]] = g["reasons"].get(row[-2], 0) + row[-1]
    pairs = select(*(col.label(f"k{i}") for i, col in enumerate(key_columns)), c.digest.label("digest")) \
        .where(live, c.digest.is_not(None)).distinct().subquery()
    pk = [pairs.c[f"k{i}"] for i in range(len(key_columns))]
    sums = select(*pk, func.count(distinct(pairs.c.digest)), *(func.sum(sc[label]) for label in SEVERITIES),
                  func.sum(sc.total), func.sum(sc.kev), func.sum(sc.fixable), func.sum(sc.epss_over),
                  func.sum(sc.risk), func.min(sc.scanned_at)) \
        .select_from(pairs.join(SCANS, and_(sc.image_digest == pairs.c.digest))).group_by(*pk)
    n = len(key_columns)
    for row in session.execute(sums):
        g = groups[tuple(row[:n])]
        values = row[n:]
        g["images"] = values[0]
        agg = g["sums"]
        for i, label in enumerate(SEVERITIES):
            agg.counts[label] = int(values[1 + i] or 0)
        agg.total, agg.kev, agg.fixable, agg.epss_over = (int(v or 0) for v in values[6:10])
        agg.risk, agg.scanned_at = float(values[10] or 0.0), values[11]
    deltas = _suppression_deltas(session, epss_threshold, now)
    if deltas:
        for row in session.execute(select(*key_columns, c.digest).distinct()
                                   .where(live, c.digest.in_(sorted(deltas)))):
            _subtract(groups[tuple(row[:-1])]["sums"], deltas[row[-1]])
    rows = []
    for key, g in groups.items():
        agg, oldest = g["sums"], g["sums"].scanned_at
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        rows.append({
            **dict(zip(keys, key, strict=True)), "containers": g["containers"], "images": g["images"],
            "counts": agg.counts, "total": agg.total, "kev": agg.kev, "fixable": agg.fixable,
            "epss_over_threshold": agg.epss_over, "risk": round(agg.risk, 2), "unknown_posture": g["unknown"],
            "unknown_reasons": g["reasons"], "oldest_scan": oldest.isoformat() if oldest else None,
            "scan_age_seconds": int((now - oldest).total_seconds()) if oldest else None,
        })
    return rows
