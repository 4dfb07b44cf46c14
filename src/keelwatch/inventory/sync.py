"""The inventory sync engine: sources in, resolved container records out, applied atomically.

The one module of ``keelwatch.inventory`` that writes the store (as ``keelwatch.sync`` is for
feeds): sources stay free of the database, the store free of sources and registries.

- ``sync``: one snapshot per source, resolved, applied in one transaction. A source that fails
  (unreachable, 401/403, garbage) records its error and leaves its last good inventory alone.
- ``watch``: sources that can watch (Kubernetes) stream pod changes, written in small batches;
  the others are snapshotted every ``poll_interval``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keelwatch.config import InventorySourceSettings, Settings
from keelwatch.errors import ConfigError, KeelwatchError
from keelwatch.images.reference import parse_reference
from keelwatch.inventory.base import (
    Bookmark,
    ContainerRecord,
    InventorySource,
    PodChange,
    Problem,
    Relisted,
    Snapshot,
    WatchingSource,
    WatchProblem,
)
from keelwatch.inventory.resolve import Resolution, Resolver
from keelwatch.store import inventory as store_inventory
from keelwatch.store.inventory import ApplyCounts, ContainerValues, StoredContainer

if TYPE_CHECKING:
    from keelwatch.store import Store

log = logging.getLogger(__name__)

WATCH_BATCH = 2000  # changes written in one transaction at most


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class SyncReport:
    source: str
    kind: str
    status: str  # ok, partial, failed
    error: str = ""
    counts: ApplyCounts = field(default_factory=ApplyCounts)
    containers: int = 0  # records in the snapshot
    unresolved: int = 0
    problems: list[Problem] = field(default_factory=list)
    duration: float = 0.0


class InventorySync:
    def __init__(self, store: Store, settings: Settings, *, resolver: Resolver | None = None,
                 clock: Callable[[], datetime] = _now,
                 opener: Callable[[InventorySourceSettings], InventorySource] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._own_resolver = resolver is None
        self.resolver = resolver or Resolver(ttl=settings.inventory.resolve_ttl.total_seconds(),
                                             insecure_registries=settings.scan.insecure_registries)
        if opener is None:
            from keelwatch.inventory import open_source

            opener = open_source
        self._open = opener

    def close(self) -> None:
        if self._own_resolver:
            self.resolver.close()

    def sources(self, names: Sequence[str] | None = None) -> list[InventorySourceSettings]:
        configured = self.settings.inventory.sources
        if not names:
            return list(configured)
        by_name = {s.name: s for s in configured}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            known = ", ".join(by_name) or "none configured"
            raise ConfigError(f"no inventory source named {', '.join(map(repr, unknown))} (configured: {known})")
        return [by_name[n] for n in names]

    # --- one pass -----------------------------------------------------------------------------------

    def sync(self, names: Sequence[str] | None = None) -> list[SyncReport]:
        return [self.sync_source(s) for s in self.sources(names)]

    def sync_source(self, settings: InventorySourceSettings) -> SyncReport:
        started = time.monotonic()
        try:
            source = self._open(settings)
            try:
                snapshot = source.snapshot()
            finally:
                source.close()
        except KeelwatchError as exc:
            return self._failed(settings, str(exc), started)
        report = self.apply_snapshot(settings, snapshot)
        report.duration = time.monotonic() - started
        return report

    def _failed(self, settings: InventorySourceSettings, error: str, started: float) -> SyncReport:
        log.warning("inventory %s: %s", settings.name, error)
        with self.store.session() as session:
            store_inventory.record_failure(session, settings.name, settings.kind, self.clock(), error)
        return SyncReport(settings.name, settings.kind, "failed", error, duration=time.monotonic() - started)

    def apply_snapshot(self, settings: InventorySourceSettings, snapshot: Snapshot, *,
                       resource_version: str | None = None) -> SyncReport:
        values = self.resolve_all(settings, snapshot.records)
        keep = {p.pod for p in snapshot.problems if p.pod is not None}
        now = self.clock()
        with self.store.session() as session:
            counts = store_inventory.apply_snapshot(session, settings.name, values, now, keep_pods=keep,
                                                    namespaces=snapshot.namespaces)
            store_inventory.record_success(session, settings.name, settings.kind, now,
                                           problems=[_problem_json(p) for p in snapshot.problems],
                                           resource_version=resource_version or snapshot.resource_version)
        return SyncReport(settings.name, settings.kind, "partial" if snapshot.problems else "ok", counts=counts,
                          containers=len(values), unresolved=sum(1 for v in values if v.digest is None),
                          problems=list(snapshot.problems))

    def resolve_all(self, settings: InventorySourceSettings,
                    records: Iterable[ContainerRecord]) -> list[ContainerValues]:
        out = []
        for record in records:
            resolution = self.resolver.resolve(record.image, stated_digest=record.digest, platform=record.platform,
                                               enabled=settings.resolve)
            out.append(to_values(settings.name, record, resolution))
        return out

    # --- continuous ------------------------------------------------------------------------------------

    def watch(self, names: Sequence[str] | None = None, *, stop: Callable[[], bool] = lambda: False,
              on_report: Callable[[SyncReport], None] | None = None) -> None:
        """Follow every source until ``stop()`` is true: watchable ones by their watch, others by polling."""
        threads = []
        errors: list[BaseException] = []
        for settings in self.sources(names):
            thread = threading.Thread(target=self._guard, args=(settings, stop, on_report, errors),
                                      name=f"inventory-{settings.name}", daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _guard(self, settings: InventorySourceSettings, stop: Callable[[], bool],
               on_report: Callable[[SyncReport], None] | None, errors: list[BaseException]) -> None:
        try:
            self._follow(settings, stop, on_report or (lambda report: None))
        except BaseException as exc:  # reported by watch() in the calling thread
            errors.append(exc)

    def _follow(self, settings: InventorySourceSettings, stop: Callable[[], bool],
                on_report: Callable[[SyncReport], None]) -> None:
        poll = self.settings.inventory.poll_interval.total_seconds()
        while not stop():
            started = time.monotonic()
            try:
                source = self._open(settings)
            except KeelwatchError as exc:
                on_report(self._failed(settings, str(exc), started))
                _sleep_until(stop, started + poll)
                continue
            try:
                if isinstance(source, WatchingSource):
                    self._follow_watch(settings, source, stop, on_report)
                    return
                on_report(self.sync_source(settings))
            finally:
                source.close()
            _sleep_until(stop, started + poll)

    def _follow_watch(self, settings: InventorySourceSettings, source: WatchingSource,
                      stop: Callable[[], bool], on_report: Callable[[SyncReport], None]) -> None:
        with self.store.session(write=False) as session:
            resource_version = store_inventory.resource_version(session, settings.name)
        flush_every = self.settings.inventory.watch_flush.total_seconds()
        pending: list[PodChange] = []
        last_flush = time.monotonic()
        version = resource_version

        def flush() -> None:
            nonlocal pending, last_flush
            if pending:
                report = self.apply_changes(settings, pending, resource_version=version)
                on_report(report)
            pending = []
            last_flush = time.monotonic()

        for event in source.watch(resource_version, stop):
            if isinstance(event, Relisted):
                pending = []  # the snapshot supersedes them
                version = event.snapshot.resource_version
                started = time.monotonic()
                report = self.apply_snapshot(settings, event.snapshot)
                report.duration = time.monotonic() - started
                on_report(report)
                last_flush = time.monotonic()
            elif isinstance(event, PodChange):
                pending.append(event)
                if event.resource_version:
                    version = event.resource_version
            elif isinstance(event, Bookmark):
                version = event.resource_version
                if not pending:
                    with self.store.session() as session:
                        store_inventory.record_watch_progress(session, settings.name, settings.kind, self.clock(),
                                                              version)
            elif isinstance(event, WatchProblem):
                flush()
                on_report(SyncReport(settings.name, settings.kind, "partial", event.problem.message,
                                     problems=[event.problem]))
            if len(pending) >= WATCH_BATCH or (pending and time.monotonic() - last_flush >= flush_every):
                flush()
            if stop():
                break
        flush()

    def apply_changes(self, settings: InventorySourceSettings, changes: Sequence[PodChange], *,
                      resource_version: str | None) -> SyncReport:
        started = time.monotonic()
        resolved = [(c.scope, self.resolve_all(settings, c.records)) for c in changes]
        now = self.clock()
        with self.store.session() as session:
            counts = store_inventory.apply_pod_changes(session, settings.name, resolved, now)
            store_inventory.record_watch_progress(session, settings.name, settings.kind, now, resource_version)
        return SyncReport(settings.name, settings.kind, "ok", counts=counts,
                          containers=sum(len(v) for _, v in resolved),
                          unresolved=sum(1 for _, vs in resolved for v in vs if v.digest is None),
                          duration=time.monotonic() - started)


def _sleep_until(stop: Callable[[], bool], deadline: float) -> None:
    while not stop() and time.monotonic() < deadline:
        time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))


def _problem_json(problem: Problem) -> dict[str, Any]:
    out: dict[str, Any] = {"where": problem.where, "message": problem.message}
    if problem.pod is not None:
        out["pod"] = list(problem.pod)
    return out


def to_values(source: str, record: ContainerRecord, resolution: Resolution) -> ContainerValues:
    return ContainerValues(
        key=record.key(source), cluster=record.cluster, namespace=record.namespace,
        workload_kind=record.workload_kind, workload=record.workload, pod=record.pod, instance=record.instance,
        container=record.container, container_type=record.container_type, image=record.image,
        reference=resolution.reference, image_id=record.image_id, digest=resolution.digest,
        index_digest=resolution.index_digest, tag_digest=resolution.tag_digest, platform=record.platform,
        node=record.node, state=record.state, labels=dict(record.labels), annotations=dict(record.annotations),
        owner=record.owner, team=record.team, environment=record.environment,
        resolution_error=resolution.error, problem=record.problem,
    )


# --- reading, shared by the CLI, the API and the dashboard ------------------------------------------


def list_inventory(store: Store, *, namespace: str | None = None, image: str | None = None,
                   unresolved: bool = False, source: str | None = None,
                   include_ended: bool = False) -> list[StoredContainer]:
    """Containers matching the filters; ``image`` may be any spelling (``nginx`` means every nginx tag)."""
    image_name = None
    if image is not None and not image.startswith(("sha256:", "sha512:")):
        try:
            ref = parse_reference(image)
        except KeelwatchError:
            ref = None
        if ref is not None:
            bare = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
            image_name = ref.name if bare else None
            image = image if bare else str(ref)
    with store.session(write=False) as session:
        found = store_inventory.list_containers(session, namespace=namespace, image=image, image_name=image_name,
                                                unresolved=unresolved, source=source, include_ended=include_ended)
    return found


def container_json(row: StoredContainer) -> dict[str, Any]:
    """The stable JSON form of a container record (``inventory list --format json``)."""
    v = row.values
    return {
        "source": row.source, "cluster": v.cluster, "namespace": v.namespace, "workload_kind": v.workload_kind,
        "workload": v.workload, "pod": v.pod, "container": v.container, "container_type": v.container_type,
        "image": v.image, "reference": v.reference, "digest": v.digest, "index_digest": v.index_digest,
        "tag_digest": v.tag_digest, "drift": row.drift, "image_id": v.image_id, "platform": v.platform,
        "node": v.node, "state": v.state, "first_seen": _iso(row.first_seen), "last_seen": _iso(row.last_seen),
        "ended_at": _iso(row.ended_at), "resolution_error": v.resolution_error, "problem": v.problem,
        "owner": v.owner, "team": v.team, "environment": v.environment, "labels": v.labels,
        "annotations": v.annotations,
    }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def dumps(rows: Iterable[StoredContainer]) -> str:
    return json.dumps([container_json(r) for r in rows], indent=2, ensure_ascii=False)
