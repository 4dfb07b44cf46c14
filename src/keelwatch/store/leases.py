"""Work shared by several keelwatch processes on one database: singleton leases and the scan queue.

The database is the coordination engine (no broker): every claim is one short transaction.

- **Singleton work** (a loop such as ``feeds``: exactly one process at a time) holds a row of
  ``leases``. ``acquire`` takes it when it is free, expired (its holder died: a *takeover*) or
  already ours, and only when the work is due (``last_finished`` + interval has passed, so a
  cadence holds across all processes). The holder renews it while it works and ``release``\\ s it
  with the time it finished.
- **Partitioned work** (scan one digest) is a row of ``scan_jobs`` keyed by the digest: enqueued
  with "insert unless present", so three workers queuing one digest make one job; ``claim_scans``
  leases due rows with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (concurrent claimers
  skip each other's rows instead of waiting), a job whose holder stopped renewing is claimable
  again after its ``lease_until``.

Every write checks the holder, so a process that lost its lease (it stalled past the TTL and
another took over) cannot overwrite its successor's state. On SQLite the same code runs: its
write transactions are ``BEGIN IMMEDIATE``, one at a time, which is all the locking it needs.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from keelwatch.store.tables import ContainerRow, ImageScanRow, LeaseRow, ScanJobRow

LEASES = LeaseRow.__table__
JOBS = ScanJobRow.__table__
# Rows per INSERT: 10 bound parameters each, well under SQLite's limit of 32,766.
ENQUEUE_CHUNK = 500


def holder_id() -> str:
    """Who holds a lease: readable (host and pid) and unique (a process may run several holders)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _insert(session: Session, table: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING-capable insert for the session's dialect."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table))


# --- singleton leases ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Acquired:
    """The outcome of ``acquire``: held (run now), or not and when to look again."""

    held: bool
    #: Not held: when the work is due again (the last run + interval) or the holder's lease ends.
    retry_at: datetime | None = None
    #: Held, taken from a holder whose lease had run out.
    takeover: bool = False
    previous_holder: str | None = None


def acquire(session: Session, name: str, holder: str, *, ttl: timedelta, now: datetime,
            interval: timedelta = timedelta(0)) -> Acquired:
    """Take the lease ``name`` for ``ttl`` if it is free, expired or ours and the work is due."""
    session.execute(_insert(session, LEASES).values(name=name, holder=None, expires_at=now, last_finished=None,
                                                    takeovers=0, runs=0).on_conflict_do_nothing())
    c = LEASES.c
    # Locked for the rest of this transaction: a concurrent acquire waits here, then reads our result.
    row = session.execute(select(c.holder, c.expires_at, c.last_finished).where(c.name == name)
                          .with_for_update()).one()
    free = row.holder is None or row.holder == holder or row.expires_at <= now
    due_at = row.last_finished + interval if row.last_finished is not None else None
    if not free:
        return Acquired(False, retry_at=row.expires_at)
    if due_at is not None and due_at > now:
        return Acquired(False, retry_at=due_at)
    takeover = row.holder is not None and row.holder != holder
    session.execute(update(LeaseRow).where(c.name == name).values(
        holder=holder, expires_at=now + ttl, runs=c.runs + 1, takeovers=c.takeovers + (1 if takeover else 0)))
    return Acquired(True, takeover=takeover, previous_holder=row.holder if takeover else None)


def renew(session: Session, name: str, holder: str, *, ttl: timedelta, now: datetime) -> bool:
    """Extend our lease; False when it is no longer ours (it expired and another took it)."""
    c = LEASES.c
    result = session.execute(update(LeaseRow).where(c.name == name, c.holder == holder)
                             .values(expires_at=now + ttl))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(session: Session, name: str, holder: str, *, now: datetime, finished: bool = True) -> bool:
    """Free our lease; ``finished`` records ``now`` as the last run (the next is due an interval later)."""
    c = LEASES.c
    values: dict[str, Any] = {"holder": None, "expires_at": now}
    if finished:
        values["last_finished"] = now
    result = session.execute(update(LeaseRow).where(c.name == name, c.holder == holder).values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    name: str
    holder: str | None
    expires_at: datetime
    last_finished: datetime | None
    runs: int
    takeovers: int


def list_leases(session: Session) -> list[LeaseInfo]:
    rows = session.execute(select(LeaseRow).order_by(LeaseRow.name)).scalars()
    return [LeaseInfo(r.name, r.holder, r.expires_at, r.last_finished, r.runs, r.takeovers) for r in rows]


# --- the scan queue ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanJob:
    digest: str
    reference: str
    attempts: int  # including this claim
    holder: str


def enqueue_scans(session: Session, jobs: Iterable[tuple[str, str]], *, now: datetime) -> int:
    """Queue ``(digest, reference)`` pairs not queued before; how many were new.

    A digest already queued, running, done or failed is left alone: queuing is idempotent, and a
    digest seen by several workers at once is one job.
    """
    rows = [{"digest": d, "reference": r, "state": "queued", "holder": None, "lease_until": None, "attempts": 0,
             "error": "", "queued_at": now, "not_before": now, "finished_at": None} for d, r in dict(jobs).items()]
    added = 0
    for start in range(0, len(rows), ENQUEUE_CHUNK):
        statement = (_insert(session, JOBS).values(rows[start:start + ENQUEUE_CHUNK])
                     .on_conflict_do_nothing(index_elements=["digest"]).returning(JOBS.c.digest))
        added += len(session.execute(statement).all())
    return added


def unqueued_digests(session: Session, *, limit: int | None = None) -> list[tuple[str, str]]:
    """``(digest, reference)`` of what runs but was never scanned nor queued: what to enqueue.

    The reference is one of the containers' (the smallest, so every worker picks the same one).
    """
    containers = ContainerRow.__table__.c
    scanned = select(ImageScanRow.__table__.c.image_digest)
    queued = select(JOBS.c.digest)
    query = (select(containers.digest, func.min(containers.reference))
             .where(containers.ended_at.is_(None), containers.digest.is_not(None),
                    containers.reference.is_not(None), containers.digest.not_in(scanned),
                    containers.digest.not_in(queued))
             .group_by(containers.digest).order_by(containers.digest))
    if limit is not None:
        query = query.limit(limit)
    return [(digest, reference) for digest, reference in session.execute(query)]


def claim_scans(session: Session, holder: str, *, now: datetime, lease: timedelta, limit: int,
                max_attempts: int = 5) -> list[ScanJob]:
    """Lease up to ``limit`` due jobs to ``holder``: queued ones, and running ones whose holder died.

    A job claimed ``max_attempts`` times without finishing (its worker died each time: a poison
    image) is marked failed instead of claimed again.
    """
    c = JOBS.c
    due = or_(and_(c.state == "queued", c.not_before <= now), and_(c.state == "running", c.lease_until < now))
    query = select(c.digest, c.reference, c.attempts).where(due).order_by(c.not_before, c.digest).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    found = list(session.execute(query))
    poisoned = [r.digest for r in found if r.attempts >= max_attempts]
    if poisoned:
        session.execute(update(ScanJobRow).where(c.digest.in_(poisoned)).values(
            state="failed", holder=None, lease_until=None, finished_at=now,
            error=f"gave up after {max_attempts} attempts whose workers never finished"))
    claimed = [r for r in found if r.attempts < max_attempts]
    if claimed:
        session.execute(update(ScanJobRow).where(c.digest.in_([r.digest for r in claimed])).values(
            state="running", holder=holder, lease_until=now + lease, attempts=c.attempts + 1))
    return [ScanJob(r.digest, r.reference, r.attempts + 1, holder) for r in claimed]


def renew_scans(session: Session, digests: Iterable[str], holder: str, *, now: datetime, lease: timedelta) -> int:
    """Extend our leases on ``digests``; how many are still ours."""
    c = JOBS.c
    digests = list(digests)
    if not digests:
        return 0
    result = session.execute(update(ScanJobRow).where(c.digest.in_(digests), c.holder == holder,
                                                      c.state == "running").values(lease_until=now + lease))
    return int(result.rowcount)  # type: ignore[attr-defined]


def finish_scan(session: Session, job: ScanJob, *, now: datetime, error: str | None = None,
                retry_at: datetime | None = None, give_up: bool = False) -> bool:
    """Record a job's outcome: done, or failed (queued again at ``retry_at``, or for good with
    ``give_up``). False when the job is no longer ours: a successor holds it and decides."""
    c = JOBS.c
    values: dict[str, Any] = {"holder": None, "lease_until": None}
    if error is None:
        values.update(state="done", error="", finished_at=now)
    elif give_up or retry_at is None:
        values.update(state="failed", error=error[:2000], finished_at=now)
    else:
        values.update(state="queued", error=error[:2000], not_before=retry_at)
    result = session.execute(update(ScanJobRow).where(c.digest == job.digest, c.holder == job.holder,
                                                      c.state == "running").values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def requeue_failed(session: Session, *, now: datetime) -> int:
    """Give failed jobs another round (after a registry was fixed)."""
    c = JOBS.c
    result = session.execute(update(ScanJobRow).where(c.state == "failed").values(
        state="queued", attempts=0, not_before=now, finished_at=None))
    return int(result.rowcount)  # type: ignore[attr-defined]


def scan_counts(session: Session) -> dict[str, int]:
    """Jobs per state (queued, running, done, failed): the queue depth for /metrics."""
    counts = {"queued": 0, "running": 0, "done": 0, "failed": 0}
    for state, n in session.execute(select(JOBS.c.state, func.count()).group_by(JOBS.c.state)):
        counts[state] = int(n)
    return counts


def scan_jobs(session: Session) -> list[ScanJobRow]:
    return list(session.execute(select(ScanJobRow).order_by(ScanJobRow.digest)).scalars())
