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

from keelwatch.match.vex import suppressions
from keelwatch.store import advisories as kb
from keelwatch.store import findings as stored_findings
from keelwatch.store import inventory as stored_inventory
from keelwatch.store.findings import StoredFinding

SEVERITIES = ("critical", "high", "medium", "low", "unknown")
WEIGHT = {"critical": 10.0, "high": 5.0, "medium": 2.0, "low": 0.5, "unknown": 3.0}
EPSS_THRESHOLD = 0.1
GROUPINGS = ("container", "workload", "namespace", "cluster", "environment", "owner", "team", "image")


def risk(findings: Iterable[StoredFinding]) -> float:
    total = 0.0
    for s in findings:
        f = s.finding
        total += (WEIGHT.get(f.severity, 3.0) * (3.0 if f.kev else 1.0) * (1.0 + 4.0 * (f.epss or 0.0))
                  * (1.25 if f.fix_available else 1.0))
    return round(total, 2)


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
    for digest in digests:
        scan = scans.get(digest)
        if scan is None:
            continue
        found = stored_findings.load_findings(session, digest)
        quiet = suppressions(session, digest, found, now)
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
