"""Fleet views shared by ``/api/v1`` and the dashboard: containers, groupings, posture history, alerts, SLA.

Like ``keelwatch.api.views`` (images, findings, vulnerabilities), each function is one read (or
one write) transaction and returns plain JSON values, so a page and an endpoint that show the same
thing cannot disagree. They wrap the posture library (``keelwatch.posture``), the inventory store
and the alerts store; what lives here that a library should own is marked ``library:`` (the fleet
trend query, the alert ack/resolve/SLA logic that ``keelwatch.cli.alerts`` has inline) and moves
there when those modules are next touched. Both this module and ``views`` are imported by the web
adapter: they should become ``keelwatch.views`` (outside either adapter) in one move.

Everything is computed from ``posture.compute.fleet`` (every live container with its image's open,
unsuppressed findings), read once per call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from keelwatch.posture import compute
from keelwatch.posture import history as posture_history
from keelwatch.reports.findings import finding_to_json, ordered
from keelwatch.store import Store
from keelwatch.store.advisories import iso_time
from keelwatch.store.findings import StoredFinding
from keelwatch.store.tables import AlertRow, PostureSnapshotRow

SEVERITIES = compute.SEVERITIES
GROUP_VALUE_KEYS = {"containers", "images", "counts", "total", "kev", "fixable", "epss_over_threshold", "risk",
                    "unknown_posture", "unknown_reasons", "oldest_scan", "scan_age_seconds"}
WORKLOAD_KEYS = ("cluster", "namespace", "workload_kind", "workload")
PRODUCTION = re.compile(r"^prod", re.IGNORECASE)


class NotFound(LookupError):
    """What a view was asked for does not exist (the adapters answer 404)."""


class Conflict(ValueError):
    """The change asked for contradicts the current state (the API answers 409)."""


def load_fleet(store: Store, *, now: datetime | None = None) -> compute.Fleet:
    with store.session(write=False) as session:
        return compute.fleet(session, now=now)


# --- containers -------------------------------------------------------------------------------------


def _counts(findings: Iterable[StoredFinding]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for s in findings:
        counts[s.finding.severity if s.finding.severity in counts else "unknown"] += 1
    return counts


def workload_key(values: Any) -> str:
    return "/".join(str(getattr(values, k) or "") for k in WORKLOAD_KEYS)


def container_item(c: compute.ContainerPosture) -> dict[str, Any]:
    """One live container and its posture: its image's open, unsuppressed findings, or why they are unknown."""
    v, s = c.values, c.container
    known = c.image is not None
    found = c.image.findings if c.image else []
    return {
        "key": v.key, "source": s.source, "cluster": v.cluster, "namespace": v.namespace,
        "workload_kind": v.workload_kind, "workload": v.workload, "workload_key": workload_key(v), "pod": v.pod,
        "container": v.container, "container_type": v.container_type, "image": v.image, "reference": v.reference,
        "digest": v.digest, "index_digest": v.index_digest, "tag_digest": v.tag_digest, "drift": s.drift,
        "platform": v.platform, "node": v.node, "state": v.state, "owner": v.owner, "team": v.team,
        "environment": v.environment, "labels": dict(v.labels), "first_seen": iso_time(s.first_seen),
        "last_seen": iso_time(s.last_seen), "resolution_error": v.resolution_error,
        "posture_known": known, "unknown_posture": c.unknown_reason,
        "counts": _counts(found) if known else None, "total": len(found) if known else None,
        "kev": sum(1 for f in found if f.finding.kev) if known else None,
        "fixable": sum(1 for f in found if f.finding.fix_available) if known else None,
        "risk": compute.risk(found) if known else None,
        "suppressed": c.image.suppressed if c.image else None,
        "scanned_at": iso_time(c.image.scanned_at) if c.image else None,
    }


def list_containers(store: Store, *, fleet: compute.Fleet | None = None) -> list[dict[str, Any]]:
    f = fleet or load_fleet(store)
    return [container_item(c) for c in f.containers]


def filter_containers(items: list[dict[str, Any]], *, cluster: str | None = None, namespace: str | None = None,
                      workload: str | None = None, image: str | None = None, digest: str | None = None,
                      unresolved: bool | None = None, owner: str | None = None,
                      environment: str | None = None, unknown_posture: bool | None = None) -> list[dict[str, Any]]:
    """The API's and the pages' container filters (in Python: the fleet is read whole anyway)."""
    out = items
    if cluster is not None:
        out = [c for c in out if c["cluster"] == cluster]
    if namespace is not None:
        out = [c for c in out if c["namespace"] == namespace]
    if workload is not None:
        out = [c for c in out if workload in (c["workload"], c["workload_key"])]
    if image is not None:
        out = [c for c in out if image in (c["image"], c["reference"], c["digest"], c["index_digest"])]
    if digest is not None:
        out = [c for c in out if digest in (c["digest"], c["index_digest"])]
    if unresolved is not None:
        out = [c for c in out if (c["digest"] is None or c["resolution_error"] is not None) == unresolved]
    if owner is not None:
        out = [c for c in out if owner in (c["owner"], c["team"])]
    if environment is not None:
        out = [c for c in out if c["environment"] == environment]
    if unknown_posture is not None:
        out = [c for c in out if (c["unknown_posture"] is not None) == unknown_posture]
    return out


def container_detail(store: Store, key: str) -> dict[str, Any]:
    """One live container with its image's open findings (suppressed ones are not listed: they do not count)."""
    f = load_fleet(store)
    c = next((c for c in f.containers if c.values.key == key), None)
    if c is None:
        raise NotFound(f"no live container has key {key}")
    doc = container_item(c)
    doc["findings"] = [finding_to_json(s) for s in ordered(c.image.findings)] if c.image else []
    return doc


# --- groupings --------------------------------------------------------------------------------------


def group_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ``posture.compute.group_by`` row with its grouping keys gathered (``keys``) and joined (``key``)."""
    keys = {k: v for k, v in row.items() if k not in GROUP_VALUE_KEYS}
    return {**row, "keys": keys, "key": "/".join("" if v is None else str(v) for v in keys.values())}


def group_rows(store: Store, by: str, *, fleet: compute.Fleet | None = None) -> list[dict[str, Any]]:
    """Posture rows by any grouping (``container``, ``workload`` … ``label:KEY``); ValueError on an unknown one."""
    f = fleet or load_fleet(store)
    return [group_row(r) for r in compute.group_by(f, by)]


def workload_detail(store: Store, cluster: str, namespace: str, kind: str, name: str) -> dict[str, Any]:
    """One workload: its posture row, its containers, the images they run and those images' open findings."""
    f = load_fleet(store)
    mine = [c for c in f.containers if (c.values.cluster, c.values.namespace, c.values.workload_kind,
                                        c.values.workload) == (cluster, namespace, kind, name)]
    if not mine:
        raise NotFound(f"no live workload {cluster}/{namespace}/{kind}/{name}")
    row = group_row(compute.group_by(compute.Fleet(mine, f.images, f.feeds, f.sources, f.now), "workload")[0])
    images: dict[str, dict[str, Any]] = {}
    for c in mine:
        if c.image is None or c.image.digest in images:
            continue
        images[c.image.digest] = {
            "digest": c.image.digest, "reference": c.values.reference or c.values.image,
            "scanned_at": iso_time(c.image.scanned_at), "counts": _counts(c.image.findings),
            "total": len(c.image.findings), "suppressed": c.image.suppressed,
            "containers": sum(1 for x in mine if x.image is not None and x.image.digest == c.image.digest),
            "findings": [finding_to_json(s) for s in ordered(c.image.findings)]}
    return {"workload": row, "owners": sorted({x for c in mine for x in (c.values.owner, c.values.team) if x}),
            "environments": sorted({c.values.environment for c in mine if c.values.environment}),
            "containers": [container_item(c) for c in mine], "images": list(images.values())}


# --- fleet posture, top, plan, freshness --------------------------------------------------------------


def fleet_posture(f: compute.Fleet) -> dict[str, Any]:
    """The overview's fleet numbers: containers, unknown posture, distinct findings, KEV in production."""
    s = compute.summary(f)
    kev_containers = [c for c in f.containers if c.image and any(x.finding.kev for x in c.image.findings)]
    reasons: dict[str, int] = {}
    for c in f.containers:
        if c.image is None:
            reasons[c.unknown_reason or "unknown"] = reasons.get(c.unknown_reason or "unknown", 0) + 1
    return {"containers": s["containers"], "images": s["images"], "unknown_posture": s["unknown_posture"],
            "unknown_reasons": reasons, "counts": s["counts"], "total": sum(s["counts"].values()), "kev": s["kev"],
            "kev_containers": len(kev_containers),
            "kev_production_containers": sum(1 for c in kev_containers if PRODUCTION.match(c.values.environment)),
            "risk": s["risk"], "clusters": s["clusters"]}


def top_exposures(f: compute.Fleet) -> list[dict[str, Any]]:
    rows = compute.top_exposures(f, limit=len(f.containers) * 1000 + 1000)
    return [{**r, "rank": n} for n, r in enumerate(rows, 1)]


def remediation_plan(f: compute.Fleet) -> list[dict[str, Any]]:
    rows = compute.remediation_plan(f, limit=len(f.images) + 1)
    return [{**r, "rank": n} for n, r in enumerate(rows, 1)]


def freshness(f: compute.Fleet) -> dict[str, Any]:
    return compute.freshness(f)


# --- history -----------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([dhm])$")


def parse_moment(value: str | None, *, default: timedelta, now: datetime | None = None) -> datetime:
    """``7d``, ``24h``, ``30m`` (ago) or an ISO time; ``default`` ago when empty. ValueError otherwise."""
    now = now or datetime.now(UTC)
    if not value:
        return now - default
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2)
        return now - timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def posture_diff(store: Store, by: str, since: datetime) -> dict[str, Any]:
    """``posture.history.diff``: posture now against the newest snapshot at or before ``since``."""
    with store.session(write=False) as session:
        return posture_history.diff(session, compute.fleet(session), by, since)


def trend(session_or_store: Store | Session, *, days: int = 90, now: datetime | None = None) -> list[dict[str, Any]]:
    """The fleet's posture snapshots of the last ``days``, the newest of each day, oldest first.

    library: a read of ``posture_snapshots`` that belongs in ``keelwatch.posture.history``.
    """
    now = now or datetime.now(UTC)
    query = (select(PostureSnapshotRow).where(PostureSnapshotRow.grouping == "fleet",
                                              PostureSnapshotRow.taken_at >= now - timedelta(days=days))
             .order_by(PostureSnapshotRow.taken_at, PostureSnapshotRow.id))
    if isinstance(session_or_store, Store):
        with session_or_store.session(write=False) as session:
            rows = list(session.execute(query).scalars())
    else:
        rows = list(session_or_store.execute(query).scalars())
    by_day: dict[str, PostureSnapshotRow] = {}
    for r in rows:
        by_day[r.taken_at.astimezone(UTC).date().isoformat()] = r  # the last of the day wins
    return [{"day": day, "taken_at": iso_time(r.taken_at), "containers": r.containers,
             "counts": {s: int(dict(r.counts).get(s, 0)) for s in SEVERITIES}, "total": sum(dict(r.counts).values()),
             "kev": r.kev, "fixable": r.fixable, "risk": r.risk, "unknown_posture": r.unknown_posture}
            for day, r in by_day.items()]


# --- alerts and SLA ------------------------------------------------------------------------------------
# library: keelwatch.cli.alerts has this logic inline (ack, resolve, sla); it belongs in keelwatch.alerts.

ALERT_STATES = ("open", "acknowledged", "resolved")


def alert_json(a: AlertRow) -> dict[str, Any]:
    """An alert as ``keelwatch alerts list --format json`` prints it."""
    return {"id": a.id, "advisory": a.advisory, "advisory_ids": list(a.advisory_ids), "aliases": list(a.aliases),
            "image_digest": a.image_digest, "severity": a.severity, "finding_severity": a.finding_severity,
            "kev": a.kev, "notify": a.notify, "state": a.state, "version": a.version,
            "due": iso_time(a.due), "first_raised": iso_time(a.first_raised), "updated": iso_time(a.updated),
            "resolved_at": iso_time(a.resolved_at), "acknowledged_at": iso_time(a.acknowledged_at),
            "acknowledged_by": a.acknowledged_by or None,
            "containers": list(a.body.get("containers", [])), "workloads": list(a.body.get("workloads", [])),
            "owners": list(a.body.get("owners", [])), "packages": list(a.body.get("packages", [])),
            "fixed_versions": list(a.body.get("fixed_versions", [])), "remediation": a.body.get("remediation", "")}


def _urgency(a: dict[str, Any]) -> tuple[Any, ...]:
    from keelwatch.alerts.policy import rank

    return (-rank(a["severity"]), a["due"] or "9999", a["id"])


def list_alerts(store: Store, *, states: Iterable[str] = ("open", "acknowledged")) -> list[dict[str, Any]]:
    """Alerts in these states, most urgent first (severity, then due date), as the CLI lists them."""
    from keelwatch.store import alerts as stored

    with store.session(write=False) as session:
        rows = [alert_json(a) for a in stored.load_alerts(session, states=set(states)).values()]
    return sorted(rows, key=_urgency)


def alert_detail(store: Store, alert_id: str) -> dict[str, Any]:
    """One alert, what its last message said, and every delivery of it (``keelwatch alerts show``)."""
    from keelwatch.store import alerts as stored

    with store.session(write=False) as session:
        alert = session.get(AlertRow, alert_id)
        if alert is None:
            raise NotFound(f"no alert has id {alert_id}")
        outbox = stored.outbox_for(session, alert.id)
        attempts = stored.attempts_for(session, [o.id for o in outbox])
        return {**alert_json(alert), "body": dict(alert.body), "deliveries": [
            {"channel": o.channel, "event": o.event, "idempotency_key": o.idempotency_key,
             "delivered_at": iso_time(o.delivered_at), "failed_at": iso_time(o.failed_at), "attempts": o.attempts,
             "last_error": o.last_error or None,
             "log": [{"time": iso_time(t.time), "ok": t.ok, "detail": t.detail, "sender": t.sender}
                     for t in attempts if t.outbox_id == o.id]} for o in outbox]}


def acknowledge(store: Store, alert_id: str, by: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Someone is on it: the alert stays open until its findings are gone. Conflict when it is resolved."""
    with store.session() as session:
        alert = session.get(AlertRow, alert_id)
        if alert is None:
            raise NotFound(f"no alert has id {alert_id}")
        if alert.state == "resolved":
            raise Conflict(f"alert {alert_id[:12]} is resolved already")
        alert.state, alert.acknowledged_by, alert.acknowledged_at = "acknowledged", by, now or datetime.now(UTC)
        session.flush()
        return alert_json(alert)


def resolve(store: Store, alert_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Mark resolved (a ticket closed). Still-present findings open it again at the next raise."""
    with store.session() as session:
        alert = session.get(AlertRow, alert_id)
        if alert is None:
            raise NotFound(f"no alert has id {alert_id}")
        if alert.state != "resolved":
            alert.state, alert.resolved_at = "resolved", now or datetime.now(UTC)
            session.flush()
        return alert_json(alert)


@dataclass(frozen=True, slots=True)
class Soon:
    text: str
    delta: timedelta


def parse_soon(value: str) -> Soon:
    """``72h`` or ``7d`` (what ``keelwatch sla --soon`` takes); ValueError otherwise."""
    from keelwatch.alerts.sla import parse_soon as parse

    return Soon(value.strip(), parse(value))


def sla(store: Store, soon: timedelta = timedelta(days=7), *, now: datetime | None = None) -> dict[str, Any]:
    """Remediation deadlines by owner (``keelwatch sla``): open alerts, due soon, breached; and the totals."""
    from keelwatch.alerts.sla import sla_by_owner
    from keelwatch.store import alerts as stored

    with store.session(write=False) as session:
        alerts = list(stored.load_alerts(session, states={"open", "acknowledged"}).values())
    return sla_by_owner(alerts, soon, now or datetime.now(UTC))


# --- validation -----------------------------------------------------------------------------------------


def validation(store: Store, settings: Any) -> dict[str, Any]:
    """``keelwatch validate``'s checklist with its evidence; ``passed`` only when every step passes."""
    from keelwatch.posture.validate import validate

    with store.session(write=False) as session:
        steps = [s.as_dict() for s in validate(session, settings)]
    return {"passed": all(s["status"] == "pass" for s in steps), "steps": steps}
