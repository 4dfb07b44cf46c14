"""The running inventory in the database: container records per source, and each source's sync state.

Functions take a ``Session`` so a whole snapshot (or a batch of watch events) is applied in one
transaction: a sync that fails half-way changes nothing. Writes are set-based: the live rows of
the scope being replaced are read once as (key, fingerprint); rows that vanished are ended (kept,
``ended_at`` set), unchanged rows only get ``last_seen``, changed rows one executemany UPDATE, new
rows one executemany INSERT.

Values come in as ``ContainerValues`` (every column but the bookkeeping), built by
keelwatch.inventory.sync after tag resolution; this module knows no source and no registry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, bindparam, func, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from keelwatch.store.tables import ContainerRow, ImageScanRow, InventorySourceRow

CONTAINERS: Table = ContainerRow.__table__  # type: ignore[assignment]
SOURCES: Table = InventorySourceRow.__table__  # type: ignore[assignment]

IN_CHUNK = 500
MAX_STORED_PROBLEMS = 200
ENDED = "ended"


@dataclass(frozen=True, slots=True)
class ContainerValues:
    """What a sync writes for one container (the row minus its key and timestamps)."""

    key: str
    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    pod: str
    instance: str
    container: str
    container_type: str
    image: str
    reference: str | None
    image_id: str
    digest: str | None
    index_digest: str | None
    tag_digest: str | None
    platform: str | None
    node: str
    state: str
    labels: dict[str, Any]
    annotations: dict[str, Any]
    owner: str
    team: str
    environment: str
    resolution_error: str | None
    problem: str | None

    def fingerprint(self) -> str:
        # The fields in order, without dataclasses.asdict: its deep copy of every label and
        # annotation dict was the sync's largest cost (bench/inventory.py: 24 s of 63 at 100k pods).
        values = [getattr(self, name) for name in _ALL_FIELDS]
        return hashlib.sha256(json.dumps(values, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


_VALUE_FIELDS = tuple(f.name for f in fields(ContainerValues) if f.name != "key")
_ALL_FIELDS = tuple(f.name for f in fields(ContainerValues))


@dataclass(frozen=True, slots=True)
class StoredContainer:
    source: str
    values: ContainerValues
    first_seen: datetime
    last_seen: datetime
    ended_at: datetime | None

    @property
    def drift(self) -> bool:
        """The tag now resolves to another digest than the one running."""
        v = self.values
        return bool(v.tag_digest and v.digest and v.tag_digest not in (v.digest, v.index_digest))


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    kind: str
    status: str
    error: str
    last_attempt: datetime | None
    last_success: datetime | None
    resource_version: str | None
    containers: int
    problems: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ApplyCounts:
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    ended: int = 0
    kept: int = 0  # live rows left alone because the source could not read their pod

    def __add__(self, other: ApplyCounts) -> ApplyCounts:
        return ApplyCounts(*(a + b for a, b in zip(_counts(self), _counts(other), strict=True)))


def _counts(c: ApplyCounts) -> tuple[int, ...]:
    return (c.added, c.changed, c.unchanged, c.ended, c.kept)


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- writing ------------------------------------------------------------------------------------------


def apply_snapshot(session: Session, source: str, values: Iterable[ContainerValues], now: datetime, *,
                   keep_pods: Collection[tuple[str, str]] = (),
                   namespaces: Collection[str] | None = None) -> ApplyCounts:
    """Make ``values`` the source's live inventory: vanished containers are ended, never deleted.

    Live rows of a pod in ``keep_pods`` ((namespace, pod) the source could not read) that are not
    in ``values`` are left exactly as they were. ``namespaces``: the snapshot covers only these,
    and the source's other namespaces are left alone.
    """
    query = (select(CONTAINERS.c.key, CONTAINERS.c.fingerprint, CONTAINERS.c.namespace, CONTAINERS.c.pod)
             .where(CONTAINERS.c.source == source, CONTAINERS.c.ended_at.is_(None)))
    if namespaces is not None:
        query = query.where(CONTAINERS.c.namespace.in_(list(namespaces)))
    live = session.execute(query).all()
    keep = set(keep_pods)
    return _apply(session, source, values, now, {r.key: r.fingerprint for r in live},
                  {r.key for r in live if (r.namespace, r.pod) in keep})


PodScope = tuple[str, str, str]  # (namespace, pod, instance)


def apply_pod_changes(session: Session, source: str, changes: Sequence[tuple[PodScope, Sequence[ContainerValues]]],
                      now: datetime) -> ApplyCounts:
    """Each (namespace, pod, instance) scope now has exactly its values (none: the pod is gone).

    Changes are applied in order; a later change of the same pod wins.
    """
    latest: dict[PodScope, Sequence[ContainerValues]] = {}
    for scope, values in changes:
        latest.pop(scope, None)
        latest[scope] = values
    scopes = list(latest)
    live: dict[str, str] = {}
    for chunk in _chunks(scopes, 300):
        rows = session.execute(
            select(CONTAINERS.c.key, CONTAINERS.c.fingerprint)
            .where(CONTAINERS.c.source == source, CONTAINERS.c.ended_at.is_(None),
                   tuple_(CONTAINERS.c.namespace, CONTAINERS.c.pod, CONTAINERS.c.instance).in_(list(chunk)))
        ).all()
        live.update((r.key, r.fingerprint) for r in rows)
    return _apply(session, source, (v for values in latest.values() for v in values), now, live, set())


def _apply(session: Session, source: str, values: Iterable[ContainerValues], now: datetime,
           live: dict[str, str], kept: set[str]) -> ApplyCounts:
    connection = session.connection()
    new: dict[str, tuple[ContainerValues, str]] = {}
    for v in values:
        new[v.key] = (v, v.fingerprint())
    gone = [key for key in live if key not in new and key not in kept]
    unchanged = [key for key, (_, fp) in new.items() if live.get(key) == fp]
    changed = [key for key, (_, fp) in new.items() if key in live and live[key] != fp]
    missing = [key for key in new if key not in live]

    for chunk in _chunks(gone):
        connection.execute(update(CONTAINERS).where(CONTAINERS.c.key.in_(chunk)).values(ended_at=now, state=ENDED))
    for chunk in _chunks(unchanged):
        connection.execute(update(CONTAINERS).where(CONTAINERS.c.key.in_(chunk)).values(last_seen=now))

    # Ended rows that come back (the same pod instance seen again, e.g. after a missed event).
    revived: set[str] = set()
    for chunk in _chunks(missing):
        revived.update(session.execute(select(CONTAINERS.c.key).where(CONTAINERS.c.key.in_(chunk))).scalars())
    rewrite = changed + [key for key in missing if key in revived]
    if rewrite:
        statement = (update(CONTAINERS).where(CONTAINERS.c.key == bindparam("b_key"))
                     .values({**{name: bindparam(f"b_{name}") for name in (*_VALUE_FIELDS, "fingerprint")},
                              "last_seen": now, "ended_at": None}))
        params = []
        for key in rewrite:
            v, fp = new[key]
            row = {f"b_{name}": getattr(v, name) for name in _VALUE_FIELDS}
            row["b_key"] = key
            row["b_fingerprint"] = fp
            params.append(row)
        for chunk in _chunks(params, 2000):
            connection.execute(statement, list(chunk))
    inserts = []
    for key in missing:
        if key in revived:
            continue
        v, fp = new[key]
        row = {name: getattr(v, name) for name in _VALUE_FIELDS}
        row.update(key=key, source=source, fingerprint=fp, first_seen=now, last_seen=now, ended_at=None)
        inserts.append(row)
    for chunk in _chunks(inserts, 2000):
        connection.execute(insert(CONTAINERS), list(chunk))
    return ApplyCounts(added=len(inserts), changed=len(rewrite), unchanged=len(unchanged), ended=len(gone),
                       kept=len(kept))


def _source_row(session: Session, name: str, kind: str) -> InventorySourceRow:
    row = session.get(InventorySourceRow, name)
    if row is None:
        row = InventorySourceRow(name=name, kind=kind, status="never", error="", last_attempt=None,
                                 last_success=None, resource_version=None, containers=0, problems=[])
        session.add(row)
    row.kind = kind
    return row


def record_success(session: Session, name: str, kind: str, now: datetime, *, problems: Sequence[dict[str, Any]] = (),
                   resource_version: str | None = None) -> None:
    row = _source_row(session, name, kind)
    row.status = "partial" if problems else "ok"
    row.error = ""
    row.last_attempt = now
    row.last_success = now
    row.resource_version = resource_version
    row.problems = list(problems[:MAX_STORED_PROBLEMS])
    session.flush()
    row.containers = _live_count(session, name)


def record_watch_progress(session: Session, name: str, kind: str, now: datetime, resource_version: str | None) -> None:
    row = _source_row(session, name, kind)
    row.resource_version = resource_version
    row.last_success = now
    row.last_attempt = now
    session.flush()
    row.containers = _live_count(session, name)


def record_failure(session: Session, name: str, kind: str, now: datetime, error: str) -> None:
    """A failed attempt: status and error only; the stored containers stay as the last good sync left them."""
    row = _source_row(session, name, kind)
    row.status = "failed"
    row.error = error
    row.last_attempt = now


def _live_count(session: Session, source: str) -> int:
    return session.execute(select(func.count()).select_from(CONTAINERS)
                           .where(CONTAINERS.c.source == source, CONTAINERS.c.ended_at.is_(None))).scalar_one()


# --- reading ------------------------------------------------------------------------------------------


def _stored(row: Any) -> StoredContainer:
    values = ContainerValues(key=row.key, **{name: getattr(row, name) for name in _VALUE_FIELDS})
    return StoredContainer(row.source, values, _utc(row.first_seen), _utc(row.last_seen),
                           _utc(row.ended_at) if row.ended_at else None)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def list_containers(session: Session, *, source: str | None = None, namespace: str | None = None,
                    image: str | None = None, image_name: str | None = None, unresolved: bool = False,
                    include_ended: bool = False, limit: int | None = None) -> list[StoredContainer]:
    """Containers, live ones only unless ``include_ended``, in a stable order.

    ``image`` matches the image as given, its normalised reference, or a digest; ``image_name`` (a
    normalised repository, ``docker.io/library/nginx``) matches every tag and digest of it.
    """
    c = CONTAINERS.c
    query = select(ContainerRow)
    conditions: list[ColumnElement[bool]] = []
    if not include_ended:
        conditions.append(c.ended_at.is_(None))
    if source is not None:
        conditions.append(c.source == source)
    if namespace is not None:
        conditions.append(c.namespace == namespace)
    if image is not None or image_name is not None:
        either = []
        if image is not None:
            either += [c.image == image, c.reference == image, c.digest == image, c.index_digest == image]
        if image_name is not None:
            either += [c.reference.startswith(f"{image_name}:", autoescape=True),
                       c.reference.startswith(f"{image_name}@", autoescape=True)]
        conditions.append(or_(*either))
    if unresolved:
        conditions.append(or_(c.digest.is_(None), c.resolution_error.is_not(None)))
    if conditions:
        query = query.where(and_(*conditions))
    query = query.order_by(c.cluster, c.namespace, c.pod, c.container_type, c.container, c.first_seen)
    if limit is not None:
        query = query.limit(limit)
    return [_stored(row) for row in session.execute(query).scalars()]


def source_status(session: Session) -> list[SourceStatus]:
    rows = session.execute(select(InventorySourceRow).order_by(InventorySourceRow.name)).scalars()
    return [SourceStatus(r.name, r.kind, r.status, r.error, r.last_attempt and _utc(r.last_attempt),
                         r.last_success and _utc(r.last_success), r.resource_version, r.containers, list(r.problems))
            for r in rows]


def resource_version(session: Session, source: str) -> str | None:
    return session.execute(select(SOURCES.c.resource_version).where(SOURCES.c.name == source)).scalar_one_or_none()


def running_digests(session: Session) -> list[str]:
    """Every manifest digest some live container runs, sorted."""
    rows = session.execute(select(CONTAINERS.c.digest).where(CONTAINERS.c.ended_at.is_(None),
                                                              CONTAINERS.c.digest.is_not(None)).distinct())
    return sorted(rows.scalars())


def unscanned_digests(session: Session) -> list[str]:
    """Digests that run but were never scanned: what the scan queue should pull by digest."""
    scans: Table = ImageScanRow.__table__  # type: ignore[assignment]
    query = (select(CONTAINERS.c.digest).where(CONTAINERS.c.ended_at.is_(None), CONTAINERS.c.digest.is_not(None),
                                               ~CONTAINERS.c.digest.in_(select(scans.c.image_digest)))
             .distinct())
    return sorted(session.execute(query).scalars())
