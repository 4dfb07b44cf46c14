"""Posture history: snapshots of every grouping, and the difference between then and now.

``snapshot`` stores the rows of each grouping (fleet, cluster, namespace, workload, owner) as they
are; the service takes one a day and after every fleet change, ``keelwatch posture snapshot`` on
demand. ``diff`` compares the newest snapshot at or before a moment with the posture now, row by
row, so a redeploy shows as a workload whose counts went down.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from keelwatch.posture import compute
from keelwatch.store.tables import PostureSnapshotRow

SNAPSHOT_GROUPINGS = ("fleet", "cluster", "namespace", "workload", "owner")
_VALUE_KEYS = {"containers", "images", "counts", "total", "kev", "fixable", "epss_over_threshold", "risk",
               "unknown_posture", "unknown_reasons", "oldest_scan", "scan_age_seconds"}


def _rows(fleet: compute.Fleet, grouping: str) -> list[dict[str, Any]]:
    if grouping == "fleet":
        s = compute.summary(fleet)
        distinct = {(c.image.digest, f.key): f for c in fleet.containers if c.image for f in c.image.findings}
        return [{"containers": s["containers"], "counts": s["counts"], "kev": s["kev"],
                 "fixable": sum(1 for f in distinct.values() if f.finding.fix_available), "risk": s["risk"],
                 "unknown_posture": s["unknown_posture"]}]
    return compute.group_by(fleet, grouping)


def snapshot(session: Session, fleet: compute.Fleet, *, now: datetime) -> int:
    """Store the posture of every snapshot grouping now; the number of rows written."""
    rows = []
    for grouping in SNAPSHOT_GROUPINGS:
        for r in _rows(fleet, grouping):
            rows.append({"taken_at": now, "grouping": grouping,
                         "keys": {k: v for k, v in r.items() if k not in _VALUE_KEYS},
                         "containers": r["containers"], "counts": r["counts"], "kev": r["kev"],
                         "fixable": r["fixable"], "risk": float(r["risk"]), "unknown_posture": r["unknown_posture"]})
    if rows:
        session.execute(insert(PostureSnapshotRow), rows)
    return len(rows)


def _key(keys: dict[str, Any]) -> str:
    return "/".join(str(keys[k]) for k in sorted(keys))


def diff(session: Session, fleet: compute.Fleet, grouping: str, since: datetime) -> dict[str, Any]:
    """Posture now against the newest snapshot taken at or before ``since``, row by row."""
    if grouping not in SNAPSHOT_GROUPINGS:
        raise ValueError(f"snapshots keep {', '.join(SNAPSHOT_GROUPINGS)}, not {grouping!r}")
    taken = session.execute(select(func.max(PostureSnapshotRow.taken_at))
                            .where(PostureSnapshotRow.grouping == grouping, PostureSnapshotRow.taken_at <= since)
                            ).scalar()
    then: dict[str, PostureSnapshotRow] = {}
    if taken is not None:
        for r in session.execute(select(PostureSnapshotRow).where(PostureSnapshotRow.grouping == grouping,
                                                                  PostureSnapshotRow.taken_at == taken)).scalars():
            then[_key(r.keys)] = r
    now_rows = {(_key({k: v for k, v in r.items() if k not in _VALUE_KEYS})): r for r in _rows(fleet, grouping)}
    out = []
    for key in sorted(set(then) | set(now_rows)):
        before, after = then.get(key), now_rows.get(key)
        b_counts = dict(before.counts) if before else dict.fromkeys(compute.SEVERITIES, 0)
        a_counts = after["counts"] if after else dict.fromkeys(compute.SEVERITIES, 0)
        delta = {s: a_counts.get(s, 0) - b_counts.get(s, 0) for s in compute.SEVERITIES}
        b_risk, a_risk = (before.risk if before else 0.0), (float(after["risk"]) if after else 0.0)
        out.append({"key": key, "keys": (dict(before.keys) if before else
                                         {k: v for k, v in after.items() if k not in _VALUE_KEYS} if after else {}),
                    "before": b_counts, "after": a_counts, "delta": delta, "risk_before": b_risk, "risk_after": a_risk,
                    "change": "new" if before is None else "gone" if after is None else
                    "improved" if a_risk < b_risk else "worse" if a_risk > b_risk else "same"})
    out.sort(key=lambda r: (r["risk_after"] - r["risk_before"], r["key"]))
    return {"grouping": grouping, "since": since.isoformat(), "snapshot": taken.isoformat() if taken else None,
            "rows": out}


def trend(session: Session, *, days: int = 90, now: datetime | None = None) -> list[dict[str, Any]]:
    """The fleet's snapshots of the last ``days``, oldest first: what trend charts plot."""
    from datetime import UTC, timedelta

    since = (now or datetime.now(UTC)) - timedelta(days=days)
    rows = session.execute(select(PostureSnapshotRow).where(PostureSnapshotRow.grouping == "fleet",
                                                            PostureSnapshotRow.taken_at >= since)
                           .order_by(PostureSnapshotRow.taken_at)).scalars()
    return [{"taken_at": r.taken_at.isoformat(), "containers": r.containers, "counts": dict(r.counts),
             "kev": r.kev, "risk": r.risk} for r in rows]
