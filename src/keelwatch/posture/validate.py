"""``keelwatch validate``: the seeds' validation checklist, run against the store, with evidence.

1. a known image with a known CVE is scanned (named);
2. a workload running that image is in the inventory, with tag or digest;
3. every running container's severity counts equal its image's (mismatches listed);
4. after a rebuild with the patched dependency and a rescan, the CVE is gone from the new image;
5. after the redeploy, that workload's posture improved;
6. operations: feeds, inventory and scans configured, owned and fresh within thresholds.

Steps 4 and 5 read the inventory's history: a workload whose ended containers ran digest A and
whose live ones run digest B was redeployed from A to B. Each step is ``pass``, ``fail`` or
``skipped`` (nothing to judge yet), with its evidence; the whole passes only when every step does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from keelwatch.config import Settings
from keelwatch.posture import compute
from keelwatch.store import findings as stored_findings
from keelwatch.store import inventory as stored_inventory
from keelwatch.store.findings import StoredFinding


@dataclass(slots=True)
class Step:
    step: int
    name: str
    status: str = "skipped"
    evidence: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "name": self.name, "status": self.status, "evidence": self.evidence}


def _cve(f: StoredFinding) -> str:
    return next((a for a in f.finding.aliases if a.startswith("CVE-")), f.finding.id)


def validate(session: Session, settings: Settings, *, now: datetime | None = None,
             stale_feed: timedelta = timedelta(days=2), stale_inventory: timedelta = timedelta(hours=1),
             stale_scan: timedelta = timedelta(days=7)) -> list[Step]:
    now = now or datetime.now(UTC)
    fleet = compute.fleet(session, now=now)
    steps = [Step(1, "a known image with a known CVE is scanned"),
             Step(2, "a workload running that image is in the inventory"),
             Step(3, "container posture equals the image's findings"),
             Step(4, "a rebuild removed the CVE from the new image"),
             Step(5, "the redeploy improved the workload's posture"),
             Step(6, "feeds, inventory and scans are configured, owned and fresh")]

    # 1 and 2: scanned images with CVEs, and the workloads running them.
    scans = stored_findings.image_scans(session)
    vulnerable = {d: s for d, s in scans.items() if s.total}
    running = {c.image.digest for c in fleet.containers if c.image is not None}
    if vulnerable:
        digest = next((d for d in sorted(vulnerable) if d in running), sorted(vulnerable)[0])
        found = stored_findings.load_findings(session, digest)
        cves = sorted({_cve(s) for s in found if _cve(s).startswith("CVE-")}) or sorted({s.finding.id for s in found})
        steps[0].status = "pass"
        steps[0].evidence.append(f"{digest}: {vulnerable[digest].total} findings, e.g. {', '.join(cves[:3])}")
        runners = [c.container for c in fleet.containers if c.image is not None and c.image.digest in vulnerable]
        # A workload that ran it and was redeployed since (steps 4-5) counts too: history is kept.
        runners += [c for c in stored_inventory.list_containers(session, include_ended=True)
                    if c.ended_at is not None and c.values.digest in vulnerable]
        if runners:
            steps[1].status = "pass"
            for c in runners[:5]:
                v = c.values
                until = f" (until {c.ended_at:%Y-%m-%d %H:%M}, redeployed)" if c.ended_at else ""
                steps[1].evidence.append(f"{v.cluster}/{v.namespace}/{v.workload_kind}/{v.workload} pod {v.pod} runs "
                                         f"{v.reference or v.image} @ {v.digest}{until}")
        else:
            steps[1].status = "fail"
            steps[1].evidence.append("no container runs (or ran) an image with findings (inventory sync?)")
    else:
        steps[0].status = "fail"
        steps[0].evidence.append("no scanned image has a finding: keelwatch db update, then keelwatch scan IMAGE")
        steps[1].evidence.append("skipped: step 1 found no image")

    # 3: each container's counts against its image's stored counts (minus what is suppressed).
    mismatches = []
    checked = 0
    for row in compute.group_by(fleet, "container"):
        digest = next((c.image.digest for c in fleet.containers if c.image is not None
                       and (c.values.cluster, c.values.namespace, c.values.pod, c.values.container)
                       == (row["cluster"], row["namespace"], row["pod"], row["container"])), None)
        if digest is None or digest not in scans:
            continue
        checked += 1
        image = fleet.images[digest]
        expected = dict(scans[digest].counts)
        stored_all = stored_findings.load_findings(session, digest)
        open_keys = {s.key for s in image.findings}
        for s in stored_all:
            if s.key not in open_keys:  # suppressed: the image's stored counts include it
                label = s.finding.severity if s.finding.severity in expected else "unknown"
                expected[label] -= 1
        if row["counts"] != expected:
            mismatches.append(f"{row['namespace']}/{row['pod']}/{row['container']}: {row['counts']} != {expected}")
    if checked:
        steps[2].status = "fail" if mismatches else "pass"
        steps[2].evidence = mismatches[:20] or [f"{checked} containers checked, every count equal to its image's"]
    else:
        steps[2].evidence.append("no running container has a scanned image")

    # 4 and 5: workloads redeployed from one digest to another.
    history = stored_inventory.list_containers(session, include_ended=True)
    by_workload: dict[tuple[str, str, str, str], dict[str, set[str]]] = {}
    for c in history:
        v = c.values
        if not v.digest:
            continue
        slot = by_workload.setdefault((v.cluster, v.namespace, v.workload_kind, v.workload), {"ended": set(),
                                                                                           "live": set()})
        slot["live" if c.ended_at is None else "ended"].add(v.digest)
    redeploys = [(w, old, new) for w, d in by_workload.items() for old in d["ended"] - d["live"] for new in d["live"]
                 if old in scans and new in scans]
    if redeploys:
        gone_any, improved_any = False, False
        for (_cluster, namespace, _kind, workload), old, new in redeploys[:5]:
            old_f = {_cve(s) for s in stored_findings.load_findings(session, old)}
            new_f = {_cve(s) for s in stored_findings.load_findings(session, new)}
            gone = sorted(old_f - new_f)
            if gone:
                gone_any = True
                more = f" and {len(gone) - 5} more" if len(gone) > 5 else ""
                steps[3].evidence.append(f"{namespace}/{workload}: {old[:19]} → {new[:19]} removed "
                                         f"{', '.join(gone[:5])}{more}")
            else:
                steps[3].evidence.append(f"{namespace}/{workload}: {old[:19]} → {new[:19]} removed no CVE")
            before, after = scans[old].total, scans[new].total
            if after < before:
                improved_any = True
            steps[4].evidence.append(f"{namespace}/{workload}: {before} findings before the redeploy, {after} after")
        steps[3].status = "pass" if gone_any else "fail"
        steps[4].status = "pass" if improved_any else "fail"
    else:
        for step in (steps[3], steps[4]):
            step.evidence.append("no workload was redeployed from one scanned digest to another yet")

    # 6: operations.
    fresh = compute.freshness(fleet, stale_scan=stale_scan, stale_inventory=stale_inventory, stale_feed=stale_feed)
    problems = []
    if not settings.feeds:
        problems.append("no [[feeds]] configured")
    if not settings.inventory.sources:
        problems.append("no [[inventory.sources]] configured")
    problems += [f"feed {x['name']} is stale (last success {x['last_success'] or 'never'})"
                 for x in fresh["feeds"] if x["stale"]]
    problems += [f"inventory source {x['name']} is stale (last success {x['last_success'] or 'never'})"
                 for x in fresh["inventory"] if x["stale"]]
    problems += [f"image {x['digest'][:19]} was scanned {x['scanned_at']} (stale)" for x in fresh["images"]
                 if x["stale"]]
    unowned = [c for c in fleet.containers if not (c.values.owner or c.values.team)]
    if unowned:
        problems.append(f"{len(unowned)} of {len(fleet.containers)} containers have no owner or team")
    steps[5].status = "fail" if problems else "pass"
    steps[5].evidence = problems[:20] or [
        f"{len(settings.feeds)} feeds, {len(settings.inventory.sources)} inventory sources, all fresh; "
        f"every container has an owner"]
    return steps
