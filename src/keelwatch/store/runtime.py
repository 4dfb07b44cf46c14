"""Runtime verification in the database: baselines, deviations, unattributed events, observations.

Functions take a ``Session`` so one batch of events (baselines, deviations, the alert outbox,
observations) is written in one transaction. Baselines and deviations travel as the JSON forms of
``keelwatch.runtime.baseline`` (``Baseline.to_json`` / ``Deviation.to_json``); this module knows
no sensor and no policy.

Bounds: unattributed events are capped (the oldest go first, counted as dropped); each container
keeps at most ``max_per_container`` observed paths; a path is cut to ``MAX_PATH`` characters (an
index entry must stay under PostgreSQL's btree limit).
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from keelwatch.store.tables import (
    RuntimeBaselineRow,
    RuntimeDeviationRow,
    RuntimeImageFilesRow,
    RuntimeObservationRow,
    RuntimeUnattributedRow,
)

BASELINES: Table = RuntimeBaselineRow.__table__  # type: ignore[assignment]
DEVIATIONS: Table = RuntimeDeviationRow.__table__  # type: ignore[assignment]
UNATTRIBUTED: Table = RuntimeUnattributedRow.__table__  # type: ignore[assignment]
OBSERVATIONS: Table = RuntimeObservationRow.__table__  # type: ignore[assignment]
IMAGE_FILES: Table = RuntimeImageFilesRow.__table__  # type: ignore[assignment]

IN_CHUNK = 300  # tuples of up to five columns: well under SQLite's parameter limit
MAX_PATH = 1000

Lineage = tuple[str, str, str, str]  # (cluster, namespace, workload, container)
Key = tuple[str, str, str, str, str]  # the lineage and the image digest


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _insert(session: Session, table: Table) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _greatest(session: Session, a: Any, b: Any) -> Any:
    return func.greatest(a, b) if session.get_bind().dialect.name == "postgresql" else func.max(a, b)


def _least(session: Session, a: Any, b: Any) -> Any:
    return func.least(a, b) if session.get_bind().dialect.name == "postgresql" else func.min(a, b)


def parse_time(value: str) -> datetime:
    """The ISO 8601 times of the runtime JSON forms (``…Z``) → aware UTC."""
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _time(value: str | None) -> datetime | None:
    return parse_time(value) if value else None


# --- baselines ------------------------------------------------------------------------------------------


def load_baselines(session: Session, lineages: Collection[Lineage], *,
                   for_update: bool = False) -> list[dict[str, Any]]:
    """The stored state of every baseline (any digest) of these (cluster, namespace, workload, container)."""
    c = BASELINES.c
    out: list[dict[str, Any]] = []
    wanted = sorted(set(lineages))
    for chunk in _chunks(wanted):
        query = select(c.state).where(tuple_(c.cluster, c.namespace, c.workload, c.container).in_(list(chunk)))
        if for_update and session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        out.extend(dict(state) for state in session.execute(query).scalars())
    return out


def save_baselines(session: Session, states: Iterable[dict[str, Any]], now: datetime) -> int:
    """Insert or replace baselines given as ``Baseline.to_json()``; how many were written."""
    rows = [{
        "cluster": s["cluster"], "namespace": s["namespace"], "workload": s["workload"], "container": s["container"],
        "image_digest": s["image_digest"], "phase": s["state"], "started": parse_time(s["started"]),
        "frozen_at": _time(s.get("frozen_at")), "events_seen": s["events_seen"],
        "inherited_from": s.get("inherited_from", ""), "state": s, "updated": now,
    } for s in states]
    if not rows:
        return 0
    stmt = _insert(session, BASELINES)
    stmt = stmt.on_conflict_do_update(
        index_elements=["cluster", "namespace", "workload", "container", "image_digest"],
        set_={name: stmt.excluded[name] for name in ("phase", "started", "frozen_at", "events_seen",
                                                      "inherited_from", "state", "updated")})
    for chunk in _chunks(rows, 500):
        session.execute(stmt, list(chunk))
    return len(rows)


def list_baselines(session: Session, *, workload: str | None = None,
                   namespace: str | None = None) -> list[RuntimeBaselineRow]:
    query = select(RuntimeBaselineRow)
    if workload is not None:
        query = query.where(RuntimeBaselineRow.workload == workload)
    if namespace is not None:
        query = query.where(RuntimeBaselineRow.namespace == namespace)
    c = BASELINES.c
    return list(session.execute(query.order_by(c.cluster, c.namespace, c.workload, c.container, c.started)).scalars())


# --- deviations -----------------------------------------------------------------------------------------


def load_open_deviations(session: Session, keys: Collection[Key]) -> list[dict[str, Any]]:
    """The not-accepted deviations of these baselines, as ``Deviation.to_json()``."""
    c = DEVIATIONS.c
    out: list[dict[str, Any]] = []
    for chunk in _chunks(sorted(set(keys))):
        rows = session.execute(
            select(RuntimeDeviationRow).where(
                tuple_(c.cluster, c.namespace, c.workload, c.container, c.image_digest).in_(list(chunk)),
                c.accepted.is_(False))).scalars()
        out.extend(deviation_json(r) for r in rows)
    return out


def deviation_json(row: RuntimeDeviationRow) -> dict[str, Any]:
    return {
        "id": row.id, "kind": row.kind, "severity": row.severity, "cluster": row.cluster,
        "namespace": row.namespace, "workload": row.workload, "container": row.container,
        "image_digest": row.image_digest, "detail": row.detail, "item": list(row.item),
        "first_seen": _iso(row.first_seen), "last_seen": _iso(row.last_seen), "count": row.count,
        "evidence": dict(row.evidence), "accepted": row.accepted, "accepted_at": _iso(row.accepted_at),
        "accepted_by": row.accepted_by or None, "alerted_at": _iso(row.alerted_at),
    }


def save_deviations(session: Session, deviations: Iterable[dict[str, Any]]) -> int:
    """Insert new deviations, and bring the counts and times of stored ones to what is given."""
    rows = [{
        "id": d["id"], "kind": d["kind"], "severity": d["severity"], "cluster": d["cluster"],
        "namespace": d["namespace"], "workload": d["workload"], "container": d["container"],
        "image_digest": d["image_digest"], "detail": d["detail"], "item": list(d["item"]),
        "evidence": d.get("evidence", {}), "first_seen": parse_time(d["first_seen"]),
        "last_seen": parse_time(d["last_seen"]), "count": d["count"], "accepted": False, "accepted_at": None,
        "accepted_by": "", "alerted_at": None,
    } for d in deviations]
    if not rows:
        return 0
    stmt = _insert(session, DEVIATIONS)
    c = DEVIATIONS.c
    stmt = stmt.on_conflict_do_update(index_elements=["id"], set_={
        "count": _greatest(session, c.count, stmt.excluded.count),
        "first_seen": _least(session, c.first_seen, stmt.excluded.first_seen),
        "last_seen": _greatest(session, c.last_seen, stmt.excluded.last_seen),
    })
    for chunk in _chunks(rows, 500):
        session.execute(stmt, list(chunk))
    return len(rows)


def list_deviations(session: Session, *, since: datetime | None = None, include_accepted: bool = False,
                    workload: str | None = None, ids: Collection[str] | None = None) -> list[RuntimeDeviationRow]:
    """Deviations seen since ``since`` (by ``last_seen``), most recent first."""
    c = DEVIATIONS.c
    query = select(RuntimeDeviationRow)
    if since is not None:
        query = query.where(c.last_seen >= since)
    if not include_accepted:
        query = query.where(c.accepted.is_(False))
    if workload is not None:
        query = query.where(c.workload == workload)
    if ids is not None:
        wanted = sorted(set(ids))
        found: list[RuntimeDeviationRow] = []
        for chunk in _chunks(wanted, 500):
            found.extend(session.execute(query.where(c.id.in_(list(chunk)))).scalars())
        return sorted(found, key=lambda r: (r.first_seen, r.id))
    return list(session.execute(query.order_by(c.last_seen.desc(), c.id)).scalars())


def find_deviations(session: Session, prefix: str) -> list[RuntimeDeviationRow]:
    """Deviations whose id starts with ``prefix`` (at most two: enough to tell it is ambiguous)."""
    query = select(RuntimeDeviationRow).where(DEVIATIONS.c.id.startswith(prefix, autoescape=True)).limit(2)
    return list(session.execute(query).scalars())


def mark_accepted(session: Session, deviation_id: str, *, by: str, now: datetime) -> None:
    session.execute(update(DEVIATIONS).where(DEVIATIONS.c.id == deviation_id)
                    .values(accepted=True, accepted_at=now, accepted_by=by))


def unalerted(session: Session, keys: Collection[Key]) -> list[RuntimeDeviationRow]:
    """Deviations of these baselines whose alert has not been queued yet (and that nobody accepted)."""
    c = DEVIATIONS.c
    out: list[RuntimeDeviationRow] = []
    for chunk in _chunks(sorted(set(keys))):
        out.extend(session.execute(
            select(RuntimeDeviationRow).where(
                tuple_(c.cluster, c.namespace, c.workload, c.container, c.image_digest).in_(list(chunk)),
                c.alerted_at.is_(None), c.accepted.is_(False))).scalars())
    return sorted(out, key=lambda r: (r.first_seen, r.id))


def mark_alerted(session: Session, ids: Collection[str], now: datetime) -> None:
    for chunk in _chunks(sorted(set(ids)), 500):
        session.execute(update(DEVIATIONS).where(DEVIATIONS.c.id.in_(list(chunk))).values(alerted_at=now))


# --- unattributed events --------------------------------------------------------------------------------


def add_unattributed(session: Session, events: Sequence[dict[str, Any]], now: datetime, *, limit: int) -> int:
    """Keep events (``RuntimeEvent.to_json()``) for later attribution; how many of the oldest were dropped."""
    if events:
        session.execute(_insert(session, UNATTRIBUTED), [
            {"received": now, "time": parse_time(e["time"]), "container_id": e.get("container_id", ""),
             "namespace": e.get("namespace", ""), "pod": e.get("pod", ""), "event": e} for e in events])
    total = session.execute(select(func.count()).select_from(UNATTRIBUTED)).scalar_one()
    excess = total - limit
    if excess <= 0:
        return 0
    cutoff = session.execute(select(UNATTRIBUTED.c.id).order_by(UNATTRIBUTED.c.id)
                             .offset(excess - 1).limit(1)).scalar_one()
    session.execute(delete(UNATTRIBUTED).where(UNATTRIBUTED.c.id <= cutoff))
    return excess


def pending_unattributed(session: Session, *, after: int = 0, limit: int = 5000) -> list[tuple[int, dict[str, Any]]]:
    """(id, event) of kept events, oldest first, from after id ``after``."""
    rows = session.execute(select(UNATTRIBUTED.c.id, UNATTRIBUTED.c.event).where(UNATTRIBUTED.c.id > after)
                           .order_by(UNATTRIBUTED.c.id).limit(limit)).all()
    return [(r.id, dict(r.event)) for r in rows]


def delete_unattributed(session: Session, ids: Collection[int]) -> None:
    for chunk in _chunks(sorted(ids), 500):
        session.execute(delete(UNATTRIBUTED).where(UNATTRIBUTED.c.id.in_(list(chunk))))


def count_unattributed(session: Session) -> int:
    return session.execute(select(func.count()).select_from(UNATTRIBUTED)).scalar_one()


# --- observations: paths each container ran or loaded ---------------------------------------------------


@dataclass(slots=True)
class Observation:
    container_key: str
    cluster: str
    namespace: str
    workload: str
    pod: str
    container: str
    image_digest: str
    path: str
    kind: str
    first_seen: datetime
    last_seen: datetime
    count: int = 1


def record_observations(session: Session, observations: Iterable[Observation], *, max_per_container: int) -> int:
    """Add paths seen (a repeat raises its count and times); paths past a container's cap are dropped.

    Returns how many were dropped.
    """
    merged: dict[tuple[str, str], Observation] = {}
    for o in observations:
        o.path = o.path[:MAX_PATH]
        seen = merged.get((o.container_key, o.path))
        if seen is None:
            merged[(o.container_key, o.path)] = o
        else:
            seen.count += o.count
            seen.first_seen = min(seen.first_seen, o.first_seen)
            seen.last_seen = max(seen.last_seen, o.last_seen)
    if not merged:
        return 0
    c = OBSERVATIONS.c
    pairs = list(merged)
    known: set[tuple[str, str]] = set()
    for chunk in _chunks(pairs):
        known.update((r.container_key, r.path) for r in session.execute(
            select(c.container_key, c.path).where(tuple_(c.container_key, c.path).in_(list(chunk)))))
    containers = sorted({k for k, _ in pairs})
    counts: dict[str, int] = {}
    for chunk in _chunks(containers, 500):
        counted = session.execute(select(c.container_key, func.count()).where(c.container_key.in_(list(chunk)))
                                  .group_by(c.container_key))
        counts.update((key, number) for key, number in counted)
    rows: list[dict[str, Any]] = []
    dropped = 0
    for pair, o in merged.items():
        if pair not in known:
            if counts.get(o.container_key, 0) >= max_per_container:
                dropped += 1
                continue
            counts[o.container_key] = counts.get(o.container_key, 0) + 1
        rows.append({"container_key": o.container_key, "cluster": o.cluster, "namespace": o.namespace,
                     "workload": o.workload, "pod": o.pod, "container": o.container, "image_digest": o.image_digest,
                     "path": o.path, "kind": o.kind, "first_seen": o.first_seen, "last_seen": o.last_seen,
                     "count": o.count})
    if rows:
        stmt = _insert(session, OBSERVATIONS)
        stmt = stmt.on_conflict_do_update(index_elements=["container_key", "path"], set_={
            "count": c.count + stmt.excluded.count,
            "first_seen": _least(session, c.first_seen, stmt.excluded.first_seen),
            "last_seen": _greatest(session, c.last_seen, stmt.excluded.last_seen),
            "image_digest": stmt.excluded.image_digest,
        })
        for chunk in _chunks(rows, 500):
            session.execute(stmt, list(chunk))
    return dropped


def list_observations(session: Session, *, digest: str | None = None,
                      workload: str | None = None) -> list[RuntimeObservationRow]:
    c = OBSERVATIONS.c
    query = select(RuntimeObservationRow)
    if digest is not None:
        query = query.where(c.image_digest == digest)
    if workload is not None:
        query = query.where(c.workload == workload)
    return list(session.execute(query.order_by(c.cluster, c.namespace, c.workload, c.pod, c.container,
                                               c.container_key, c.path)).scalars())


# --- every file of an image -----------------------------------------------------------------------------


def save_image_files(session: Session, digest: str, files: Collection[str], links: dict[str, str],
                     now: datetime | None = None) -> None:
    blob = zlib.compress("\x00".join(sorted(files)).encode("utf-8", "surrogateescape"), 1)
    stmt = _insert(session, IMAGE_FILES).values(digest=digest, files=blob, links=dict(links),
                                                listed_at=now or datetime.now(UTC))
    session.execute(stmt.on_conflict_do_update(index_elements=["digest"], set_={
        "files": stmt.excluded.files, "links": stmt.excluded.links, "listed_at": stmt.excluded.listed_at}))


def load_image_files(session: Session, digest: str) -> tuple[set[str], dict[str, str]] | None:
    row = session.execute(select(IMAGE_FILES.c.files, IMAGE_FILES.c.links)
                          .where(IMAGE_FILES.c.digest == digest)).one_or_none()
    if row is None:
        return None
    text = zlib.decompress(row.files).decode("utf-8", "surrogateescape")
    return (set(text.split("\x00")) if text else set()), dict(row.links)


def has_image_files(session: Session, digests: Collection[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(sorted(set(digests)), 500):
        found.update(session.execute(select(IMAGE_FILES.c.digest).where(IMAGE_FILES.c.digest.in_(list(chunk))))
                     .scalars())
    return found


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None
