"""Alerts, their outbox and delivery attempts: the store side of ``keelwatch.alerts``.

The outbox is the delivery guarantee: a message is a row written in the transaction that decided
it, and it is only marked delivered after a channel accepted it. Senders claim rows with a lease
(``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single writer on SQLite), so two senders
never hold the same row, and a sender that dies loses its lease after ``lease`` and another one
finishes the job. Receivers dedupe on the idempotency key for the one case left: a sender killed
after the channel accepted but before the row was marked.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from keelwatch.store.findings import IN_CHUNK, StoredFinding, load_findings
from keelwatch.store.tables import AlertAttemptRow, AlertOutboxRow, AlertRow, ContainerRow, FindingRow


@dataclass(frozen=True, slots=True)
class RunningContainer:
    """What an alert lists about a container that runs an image."""

    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    pod: str
    container: str
    image: str
    owner: str
    team: str
    environment: str
    state: str

    def as_dict(self) -> dict[str, str]:
        return {"cluster": self.cluster, "namespace": self.namespace, "workload_kind": self.workload_kind,
                "workload": self.workload, "pod": self.pod, "container": self.container, "image": self.image,
                "owner": self.owner, "team": self.team, "environment": self.environment, "state": self.state}


def running_containers(session: Session) -> dict[str, list[RunningContainer]]:
    """Image digest → the live containers running it (as every inventory source last reported)."""
    c = ContainerRow.__table__.c
    rows = session.execute(select(c.digest, c.cluster, c.namespace, c.workload_kind, c.workload, c.pod, c.container,
                                  c.image, c.owner, c.team, c.environment, c.state)
                           .where(c.ended_at.is_(None), c.digest.is_not(None))
                           .order_by(c.digest, c.cluster, c.namespace, c.workload, c.pod, c.container))
    out: dict[str, list[RunningContainer]] = {}
    for r in rows:
        out.setdefault(r.digest, []).append(RunningContainer(
            r.cluster or "", r.namespace or "", r.workload_kind or "", r.workload or "", r.pod or "",
            r.container or "", r.image or "", r.owner or "", r.team or "", r.environment or "", r.state or ""))
    return out


def scanned_digests(session: Session) -> list[str]:
    return sorted(session.execute(select(FindingRow.image_digest).distinct()).scalars())


def findings_of(session: Session, digests: Iterable[str]) -> dict[str, list[StoredFinding]]:
    return {d: found for d in sorted(set(digests)) if (found := load_findings(session, d))}


# --- alerts ---------------------------------------------------------------------------------------------


def load_alerts(session: Session, *, states: Collection[str] | None = None, ids: Collection[str] | None = None,
                for_update: bool = False) -> dict[str, AlertRow]:
    query = select(AlertRow)
    if states is not None:
        query = query.where(AlertRow.state.in_(sorted(states)))
    if ids is not None:
        wanted = sorted(ids)
        found: dict[str, AlertRow] = {}
        for i in range(0, len(wanted), IN_CHUNK):
            q = query.where(AlertRow.id.in_(wanted[i:i + IN_CHUNK]))
            if for_update and session.get_bind().dialect.name == "postgresql":
                q = q.with_for_update()
            found.update((a.id, a) for a in session.execute(q).scalars())
        return found
    if for_update and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return {a.id: a for a in session.execute(query).scalars()}


def add_outbox(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Queue messages; one whose idempotency key is already queued is left alone (said once)."""
    if not rows:
        return 0
    keys = [r["idempotency_key"] for r in rows]
    existing: set[str] = set()
    for i in range(0, len(keys), IN_CHUNK):
        existing.update(session.execute(select(AlertOutboxRow.idempotency_key)
                                        .where(AlertOutboxRow.idempotency_key.in_(keys[i:i + IN_CHUNK]))).scalars())
    fresh = [r for r in rows if r["idempotency_key"] not in existing]
    if fresh:
        session.execute(insert(AlertOutboxRow), fresh)
    return len(fresh)


# --- the sender's side ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    idempotency_key: str
    alert_id: str | None
    channel: str
    event: str
    body: dict[str, Any]
    attempts: int


def claim(session: Session, *, owner: str, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
    """Lease up to ``limit`` due messages to ``owner`` (oldest first); nobody else holds them meanwhile."""
    o = AlertOutboxRow.__table__.c
    query = (select(AlertOutboxRow).where(o.delivered_at.is_(None), o.failed_at.is_(None), o.next_attempt <= now,
                                          or_(o.lease_until.is_(None), o.lease_until < now))
             .order_by(o.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.execute(query).scalars())
    if not rows:
        return []
    session.execute(update(AlertOutboxRow).where(o.id.in_([r.id for r in rows]))
                    .values(lease_owner=owner, lease_until=now + lease))
    return [Claimed(r.id, r.idempotency_key, r.alert_id, r.channel, r.event, dict(r.body), r.attempts) for r in rows]


def record_attempt(session: Session, message: Claimed, *, owner: str, ok: bool, detail: str, seconds: float,
                   now: datetime, next_attempt: datetime | None, give_up: bool) -> None:
    """The outcome of one send: delivered, or failed with when to try again (or parked)."""
    session.execute(insert(AlertAttemptRow).values(outbox_id=message.id, time=now, ok=ok, detail=detail[:2000],
                                                   seconds=seconds, sender=owner))
    o = AlertOutboxRow.__table__.c
    mine = and_(o.id == message.id, o.lease_owner == owner)
    if ok:
        session.execute(update(AlertOutboxRow).where(mine).values(
            delivered_at=now, attempts=o.attempts + 1, last_error="", lease_owner=None, lease_until=None))
    else:
        values: dict[str, Any] = {"attempts": o.attempts + 1, "last_error": detail[:2000], "lease_owner": None,
                                  "lease_until": None}
        if give_up:
            values["failed_at"] = now
        elif next_attempt is not None:
            values["next_attempt"] = next_attempt
        session.execute(update(AlertOutboxRow).where(mine).values(**values))


def outbox_counts(session: Session) -> dict[str, int]:
    o = AlertOutboxRow.__table__.c
    rows = session.execute(select(o.delivered_at.is_not(None), o.failed_at.is_not(None)))
    out = {"pending": 0, "delivered": 0, "failed": 0}
    for delivered, failed in rows:
        out["delivered" if delivered else "failed" if failed else "pending"] += 1
    return out


def outbox_for(session: Session, alert_id: str) -> list[AlertOutboxRow]:
    return list(session.execute(select(AlertOutboxRow).where(AlertOutboxRow.alert_id == alert_id)
                                .order_by(AlertOutboxRow.id)).scalars())


def attempts_for(session: Session, outbox_ids: Collection[int]) -> list[AlertAttemptRow]:
    if not outbox_ids:
        return []
    return list(session.execute(select(AlertAttemptRow).where(AlertAttemptRow.outbox_id.in_(sorted(outbox_ids)))
                                .order_by(AlertAttemptRow.id)).scalars())


def retry_failed(session: Session, *, now: datetime) -> int:
    """Give parked messages another round (after a channel was fixed)."""
    o = AlertOutboxRow.__table__.c
    return session.execute(update(AlertOutboxRow).where(o.failed_at.is_not(None), o.delivered_at.is_(None))
                           .values(failed_at=None, next_attempt=now, attempts=0)).rowcount or 0


def forget_delivered(session: Session, *, before: datetime) -> int:
    """Drop delivered messages (and their attempts) older than ``before``: the outbox is not an archive."""
    o = AlertOutboxRow.__table__.c
    ids = list(session.execute(select(o.id).where(o.delivered_at.is_not(None), o.delivered_at < before)).scalars())
    for i in range(0, len(ids), IN_CHUNK):
        chunk = ids[i:i + IN_CHUNK]
        session.execute(delete(AlertAttemptRow).where(AlertAttemptRow.outbox_id.in_(chunk)))
        session.execute(delete(AlertOutboxRow).where(o.id.in_(chunk)))
    return len(ids)
