"""Decide the alerts: one per (advisory, image) for open findings on running images, and queue what to say.

``raise_alerts`` reconciles the alerts with the current truth — stored findings (after re-match),
suppressions, the running inventory — instead of replaying events: it is idempotent (run it twice,
the second run queues nothing), and nothing can be lost between a re-match and the alerts it
causes: if a process dies after the re-match committed, the next run raises what it left.

Per (advisory, image) it finds the open, unsuppressed findings (several packages may carry the
same CVE), the containers running the image, and the policy's decision (``policy.decide``):

* new, with notify immediate → an ``opened`` message to every channel that takes it;
  notify digest → the alert waits for ``make_digests``; none → no alert;
* severity raised, newly KEV-listed, or EPSS past ``epss_threshold`` → ``updated`` (its due date
  moves earlier, never later);
  containers, packages or fixed versions changing only update the alert's record;
* findings gone (fixed by a rebuild, withdrawn, suppressed) or the image no longer runs →
  ``resolved`` (sent to channels with ``send_resolved``);
* an open alert past ``due - due_soon`` → ``due_soon`` once; past ``due`` → ``breached`` once.

Alerts and their messages are written in one transaction, so an alert never exists without its
message, nor a message without its alert. After a feed update the re-match calls
``raise_alerts_in`` inside its own transaction (``rematch(then=…)``), so the finding events and the
alerts they cause commit together; inventory changes raise them in a transaction of their own.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from keelwatch.alerts.policy import Decision, at_least, decide, due_date, rank
from keelwatch.config import AlertSettings, ChannelSettings
from keelwatch.match.vex import suppressions
from keelwatch.store import Store
from keelwatch.store import alerts as stored
from keelwatch.store.alerts import RunningContainer
from keelwatch.store.findings import StoredFinding
from keelwatch.store.tables import AlertRow, ImageRow

log = logging.getLogger(__name__)


@dataclass(slots=True)
class AlertReport:
    opened: int = 0
    updated: int = 0
    resolved: int = 0
    reopened: int = 0
    due_soon: int = 0
    breached: int = 0
    queued: int = 0  # outbox messages written

    def as_dict(self) -> dict[str, int]:
        return {"opened": self.opened, "updated": self.updated, "resolved": self.resolved,
                "reopened": self.reopened, "due_soon": self.due_soon, "breached": self.breached,
                "queued": self.queued}


def alert_id(advisory: str, image_digest: str) -> str:
    return hashlib.sha256(f"{advisory}\x00{image_digest}".encode()).hexdigest()[:32]


def advisory_key(finding_aliases: Sequence[str], finding_id: str) -> str:
    """What an alert is about: the CVE when the finding has one (stable across GHSA/PYSEC renames)."""
    return next((a for a in finding_aliases if a.startswith("CVE-")), finding_id)


@dataclass(slots=True)
class _Wanted:
    """One alert as the current truth says it should be."""

    id: str
    advisory: str
    image_digest: str
    findings: list[StoredFinding]
    containers: list[RunningContainer]
    decision: Decision

    @property
    def finding_severity(self) -> str:
        return max((s.finding.severity for s in self.findings), key=rank)

    @property
    def kev(self) -> bool:
        return any(s.finding.kev for s in self.findings)

    @property
    def epss(self) -> float | None:
        return max((s.finding.epss for s in self.findings if s.finding.epss is not None), default=None)


def _body(w: _Wanted, *, image_reference: str, due: datetime | None, first_raised: datetime) -> dict[str, Any]:
    findings = sorted(w.findings, key=lambda s: (s.finding.package.name, s.finding.package.version))
    lead = max(findings, key=lambda s: (rank(s.finding.severity), s.finding.cvss_score or 0))
    f = lead.finding
    ids = sorted({i for s in findings for i in s.finding.advisory_ids})
    aliases = sorted({a for s in findings for a in s.finding.aliases} - set(ids))
    fixed = sorted({v for s in findings for v in s.finding.fixed_versions})
    packages = [{"name": s.finding.package.name, "ecosystem": s.finding.package.ecosystem,
                 "version": s.finding.installed_version, "purl": s.finding.package.purl,
                 "fixed_versions": list(s.finding.fixed_versions)} for s in findings]
    workloads = sorted({(c.cluster, c.namespace, c.workload_kind, c.workload) for c in w.containers})
    owners = sorted({x for c in w.containers for x in (c.owner, c.team) if x})
    remediation = "; ".join(
        f"rebuild with {p['name']} {' or '.join(p['fixed_versions'])}" if p["fixed_versions"]
        else f"{p['name']} {p['version']}: no fixed version yet" for p in packages)
    return {
        "id": w.id, "advisory": w.advisory, "advisory_ids": ids, "aliases": aliases, "summary": f.summary,
        "severity": w.decision.severity, "finding_severity": w.finding_severity,
        "cvss": {"score": f.cvss_score, "vector": f.cvss_vector, "source": f.cvss_source}
        if f.cvss_score is not None else None,
        "kev": w.kev, "kev_date_added": min((s.finding.kev_date_added for s in findings if s.finding.kev_date_added),
                                            default=None),
        "epss": max((s.finding.epss for s in findings if s.finding.epss is not None), default=None),
        "notify": w.decision.notify, "due": due.isoformat() if due else None, "first_raised": first_raised.isoformat(),
        "images": [{"digest": w.image_digest, "reference": image_reference}],
        "packages": packages, "fixed_versions": fixed,
        "containers": [c.as_dict() for c in w.containers],
        "workloads": [{"cluster": a, "namespace": b, "kind": c, "name": d} for a, b, c, d in workloads],
        "namespaces": sorted({c.namespace for c in w.containers}),
        "clusters": sorted({c.cluster for c in w.containers}),
        "owners": owners, "remediation": remediation,
        "links": [f"https://osv.dev/vulnerability/{i}" for i in [w.advisory, *ids] if i][:5],
    }


def channel_takes(channel: ChannelSettings, body: dict[str, Any]) -> bool:
    if not at_least(body["severity"], channel.min_severity):
        return False
    if channel.owners and not set(channel.owners) & set(body.get("owners", ())):
        return False
    environments = {c["environment"] for c in body.get("containers", ())}
    return not channel.environments or bool(environments & set(channel.environments))


def _messages(settings: AlertSettings, event: str, body: dict[str, Any], key: str, now: datetime,
              *, resolved: bool = False) -> list[dict[str, Any]]:
    out = []
    for channel in settings.channels:
        if resolved and not channel.send_resolved:
            continue
        if not channel_takes(channel, body):
            continue
        message = {**body, "event": event, "idempotency_key": f"{key}:{channel.name}"}
        out.append({"idempotency_key": f"{key}:{channel.name}", "alert_id": body["id"], "channel": channel.name,
                    "event": event, "body": message, "created": now, "next_attempt": now, "attempts": 0,
                    "last_error": ""})
    return out


def _wanted(session: Any, settings: AlertSettings, now: datetime) -> dict[str, _Wanted]:
    running = stored.running_containers(session)
    digests = set(running) | (set(stored.scanned_digests(session)) if settings.alert_not_running else set())
    wanted: dict[str, _Wanted] = {}
    for digest, findings in stored.findings_of(session, digests).items():
        quiet = suppressions(session, digest, findings, now)
        groups: dict[str, list[StoredFinding]] = {}
        for s in findings:
            if s.key not in quiet:
                groups.setdefault(advisory_key(s.finding.aliases, s.finding.id), []).append(s)
        containers = running.get(digest, [])
        for advisory, group in groups.items():
            severity = max((s.finding.severity for s in group), key=rank)
            decision = decide(settings, severity, any(s.finding.kev for s in group), containers)
            if decision.notify == "none":
                continue
            key = alert_id(advisory, digest)
            wanted[key] = _Wanted(key, advisory, digest, group, containers, decision)
    return wanted


def raise_alerts(store: Store, settings: AlertSettings, *, now: datetime | None = None) -> AlertReport:
    """Bring alerts in line with findings, suppressions and the inventory; queue what must be said."""
    with store.session() as session:
        report = raise_alerts_in(session, settings, now=now)
    if report.queued or report.opened or report.resolved:
        log.info("alerts: %s", report.as_dict())
    return report


def raise_alerts_in(session: Session, settings: AlertSettings, *, now: datetime | None = None) -> AlertReport:
    """``raise_alerts`` inside the caller's transaction: a re-match passes its own, so the finding
    events it writes and the alerts and outbox messages they cause commit together, or not at all."""
    now = now or datetime.now(UTC)
    report = AlertReport()
    wanted = _wanted(session, settings, now)
    existing = stored.load_alerts(session, for_update=True)
    references = _references(session, {w.image_digest for w in wanted.values()})
    messages: list[dict[str, Any]] = []
    for key, w in sorted(wanted.items()):
        alert = existing.get(key)
        reference = references.get(w.image_digest, "")
        if alert is None or alert.state == "resolved":
            first = now if alert is None else alert.first_raised
            due = due_date(now, w.decision.due_days)
            body = _body(w, image_reference=reference, due=due, first_raised=first)
            version = 1 if alert is None else alert.version + 1
            values = _row(w, body, due=due, version=version, now=now)
            if alert is None:
                session.add(AlertRow(id=key, first_raised=now, acknowledged_by="", acknowledged_at=None,
                                     **values))
                report.opened += 1
            else:
                for name, value in values.items():
                    setattr(alert, name, value)
                alert.resolved_at = None
                report.reopened += 1
            if w.decision.notify == "immediate":
                messages += _messages(settings, "opened", body, f"{key}:opened:{version}", now)
            continue
        # An open (or acknowledged) alert: what changed?
        epss_before, epss_now = alert.body.get("epss") or 0.0, w.epss or 0.0
        raised = (rank(w.decision.severity) > rank(alert.severity) or (w.kev and not alert.kev)
                  or epss_before < settings.epss_threshold <= epss_now)
        due = alert.due
        new_due = due_date(now, w.decision.due_days)
        if raised and new_due is not None and (due is None or new_due < due):
            due = new_due
        body = _body(w, image_reference=reference, due=due, first_raised=alert.first_raised)
        if raised:
            alert.version += 1
            if w.decision.notify == "immediate" or alert.notify == "immediate":
                messages += _messages(settings, "updated", body, f"{key}:updated:{alert.version}", now)
            report.updated += 1
        if raised or body != alert.body:
            for name, value in _row(w, body, due=due, version=alert.version, now=now, fresh=False).items():
                setattr(alert, name, value)
    for key, alert in sorted(existing.items()):
        if alert.state != "resolved" and key not in wanted:
            alert.state, alert.resolved_at, alert.updated = "resolved", now, now
            alert.version += 1
            body = {**alert.body, "resolved_at": now.isoformat()}
            messages += _messages(settings, "resolved", body, f"{key}:resolved:{alert.version}", now,
                                  resolved=True)
            report.resolved += 1
    # Deadlines, once each.
    for key, alert in sorted(existing.items()):
        if alert.state == "resolved" or alert.due is None or key not in wanted:
            continue
        if now >= alert.due and not alert.breach_sent:
            alert.breach_sent = True
            messages += _messages(settings, "breached", dict(alert.body), f"{key}:breached:{alert.due.isoformat()}",
                                  now)
            report.breached += 1
        elif now >= alert.due - settings.due_soon and not alert.due_soon_sent and not alert.breach_sent:
            alert.due_soon_sent = True
            messages += _messages(settings, "due_soon", dict(alert.body),
                                  f"{key}:due_soon:{alert.due.isoformat()}", now)
            report.due_soon += 1
    session.flush()
    report.queued = stored.add_outbox(session, messages)
    return report


def _row(w: _Wanted, body: dict[str, Any], *, due: datetime | None, version: int, now: datetime,
         fresh: bool = True) -> dict[str, Any]:
    """The alert's columns; ``fresh`` (a new or reopened alert) also resets its state and reminders."""
    values: dict[str, Any] = {
        "advisory": w.advisory, "advisory_ids": body["advisory_ids"], "aliases": body["aliases"],
        "image_digest": w.image_digest, "severity": w.decision.severity, "finding_severity": w.finding_severity,
        "kev": w.kev, "notify": w.decision.notify, "version": version, "due": due, "body": body, "updated": now}
    if fresh:
        values.update(state="open", resolved_at=None, digested_at=None, due_soon_sent=False, breach_sent=False)
    return values


def _references(session: Any, digests: Iterable[str]) -> dict[str, str]:
    from sqlalchemy import select

    wanted = sorted(set(digests))
    out: dict[str, str] = {}
    for i in range(0, len(wanted), 500):
        for digest, reference in session.execute(select(ImageRow.manifest_digest, ImageRow.reference)
                                                 .where(ImageRow.manifest_digest.in_(wanted[i:i + 500]))):
            out.setdefault(digest, reference)
    return out
