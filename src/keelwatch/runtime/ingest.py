"""Runtime events into the store: attribution, baselines, deviations, alerts, observations.

``ingest(store, settings, events)`` takes normalised ``RuntimeEvent``s from any source and, one
batch per transaction:

1. attributes each event to an inventory container — by container id (Docker's ids are the
   inventory's ``instance``; Falco's 12-character ids are prefixes), else by namespace + pod (+
   container name, or the container id an earlier event of the same pod tied to a name). Events
   outside containers (``host``) are not baselined; events for containers the inventory does
   not know are kept, bounded, in ``runtime_unattributed`` and attributed on a later run
   (``attribute_pending``, run first by every ingest and after an inventory sync);
2. feeds the baseline of (cluster, namespace, workload, container name, image digest) — the
   inventory's manifest digest, else the sensor's — through ``BaselineEngine``; state is loaded
   and saved per baseline, so a process holds only the baselines of its current batch;
3. checks executables and loaded code against the image (catalog + layer listing, when the image
   was listed): what is not in the image is a ``drift`` deviation, flagged even while learning;
4. stores deviations (one per baseline, kind and detail; repeats raise ``count``) and queues each
   deviation's alert once in the alert outbox: one ``runtime_deviation`` message per (workload,
   kind) and channel per batch, routed with ``channel_takes``, its idempotency key stable for the
   deviations it carries;
5. records the executables and libraries each container used, for ``inuse.verify_containers``
   (a path is rewritten at most once per ``OBSERVATION_REFRESH`` of event time per process, so an
   observation's ``count`` counts sightings written, not events).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from keelwatch.config import AlertSettings, RuntimeSettings, Settings
from keelwatch.errors import ConfigError
from keelwatch.runtime.agent import is_loadable
from keelwatch.runtime.baseline import (
    DRIFT,
    SEVERITIES,
    BaselineEngine,
    BaselineKey,
    BaselinePolicy,
    Deviation,
    PeerGrouping,
    workload_of_pod,
)
from keelwatch.runtime.events import EventKind, RuntimeEvent
from keelwatch.runtime.layerfiles import ImageFiles
from keelwatch.runtime.verify import OwnerIndex, verify_with
from keelwatch.store import Store
from keelwatch.store import runtime as stored
from keelwatch.store.inventory import StoredContainer, list_containers

BATCH = 5000  # events per transaction
MAX_UNATTRIBUTED = 100_000  # kept for later attribution; beyond, the oldest are dropped
MAX_OBSERVED_PATHS = 20_000  # per container
MAX_LEARNED_IDS = 100_000  # container ids tied to a pod's container by an earlier event
# A path a container was seen using is written again only when this much (event time) passed
# since this process last wrote it: usage is a fact to record, not a stream to count exactly.
OBSERVATION_REFRESH = timedelta(minutes=10)
MAX_OBSERVATION_MEMO = 200_000
MAX_PREFIX_CANDIDATES = 64  # containers sharing a 12-character id prefix looked at (ids are random hex)
MAX_INDEXES = 32  # images whose owner index is kept in memory
MAX_DRIFT_MEMO = 100_000  # (digest, path) → drift answers remembered
MAX_DETAILS_IN_ALERT = 50
# An event stamped later than this past the ingesting clock is taken as seen now: a node whose
# clock runs ahead must not end a baseline's learning period early.
MAX_CLOCK_SKEW = timedelta(minutes=5)
ALERT_EVENT = "runtime_deviation"
HOST_IDS = frozenset({"", "host"})


def policy_of(settings: RuntimeSettings) -> BaselinePolicy:
    try:
        peers = PeerGrouping(ipv4_prefix=settings.peer_ipv4_prefix, ipv6_prefix=settings.peer_ipv6_prefix,
                             networks=tuple(settings.peer_networks), keep_port=settings.peer_ports)
        return BaselinePolicy(learning_period=settings.learning_period, learning_events=settings.learning_events,
                              peers=peers, inherit_previous_digest=settings.inherit_baseline)
    except ValueError as exc:
        raise ConfigError(f"[runtime]: {exc}") from None


@dataclass(slots=True)
class IngestReport:
    events: int = 0
    attributed: int = 0
    host: int = 0  # outside any container: not baselined
    unattributed: int = 0  # kept for later attribution in this run
    unattributed_dropped: int = 0  # the oldest kept events dropped to stay within the bound
    attributed_later: int = 0  # kept events of earlier runs attributed now
    still_unattributed: int = 0  # kept events left after this run
    deviations_opened: int = 0
    deviations_repeated: int = 0
    alerts_queued: int = 0
    observations_dropped: int = 0
    clock_skewed: int = 0  # events stamped in the future, taken as seen at ingest time
    baselines: set[BaselineKey] = field(default_factory=set)

    def as_dict(self) -> dict[str, int]:
        return {"events": self.events, "attributed": self.attributed, "host": self.host,
                "unattributed": self.unattributed, "unattributed_dropped": self.unattributed_dropped,
                "attributed_later": self.attributed_later, "still_unattributed": self.still_unattributed,
                "baselines": len(self.baselines), "deviations_opened": self.deviations_opened,
                "deviations_repeated": self.deviations_repeated, "alerts_queued": self.alerts_queued,
                "observations_dropped": self.observations_dropped, "clock_skewed": self.clock_skewed}


# --- attribution ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """The inventory container an event belongs to."""

    key: str
    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    pod: str
    container: str
    instance: str
    digest: str
    image: str
    owner: str
    team: str
    environment: str
    state: str
    live: bool

    @classmethod
    def of(cls, c: StoredContainer) -> Target:
        v = c.values
        return cls(v.key, v.cluster, v.namespace, v.workload_kind, v.workload, v.pod, v.container, v.instance,
                   v.digest or "", v.image, v.owner, v.team, v.environment, v.state, c.ended_at is None)

    @property
    def workload_name(self) -> str:
        return self.workload or (workload_of_pod(self.pod) if self.pod else f"container:{self.instance or self.key}")

    def as_dict(self) -> dict[str, str]:
        return {"cluster": self.cluster, "namespace": self.namespace, "workload_kind": self.workload_kind,
                "workload": self.workload, "pod": self.pod, "container": self.container, "image": self.image,
                "owner": self.owner, "team": self.team, "environment": self.environment, "state": self.state}


def is_host(event: RuntimeEvent) -> bool:
    return event.container_id in HOST_IDS and not event.pod


class Attributor:
    """Inventory containers indexed the ways sensors name them."""

    def __init__(self, containers: Iterable[StoredContainer]):
        self.by_id: dict[str, list[Target]] = {}  # the instance as the inventory has it
        self.by_id_prefix: dict[str, list[Target]] = {}  # its first 12 characters (Falco's short ids)
        self.by_pod: dict[tuple[str, str], list[Target]] = {}
        self.by_workload: dict[tuple[str, str, str], list[Target]] = {}
        self.learned: OrderedDict[str, Target] = OrderedDict()  # 12-char container id → target
        for c in containers:
            t = Target.of(c)
            if len(t.instance) >= 12:
                self.by_id.setdefault(t.instance, []).append(t)
                self.by_id_prefix.setdefault(t.instance[:12], []).append(t)
            if t.pod:
                self.by_pod.setdefault((t.namespace, t.pod), []).append(t)
            if t.live:
                self.by_workload.setdefault((t.cluster, t.namespace, t.workload_name), []).append(t)
        for index in (self.by_id, self.by_id_prefix, self.by_pod):
            for targets in index.values():
                targets.sort(key=lambda t: not t.live)  # live containers first

    @classmethod
    def load(cls, session: Session) -> Attributor:
        return cls(list_containers(session, include_ended=True))

    def attribute(self, event: RuntimeEvent) -> Target | None:
        cid = event.container_id
        if cid and cid not in HOST_IDS:
            exact = self.by_id.get(cid)
            if exact:
                return exact[0]
            for t in self.by_id_prefix.get(cid[:12], ())[:MAX_PREFIX_CANDIDATES]:
                if t.instance.startswith(cid) or cid.startswith(t.instance):
                    return t
            learned = self.learned.get(cid[:12])
            if learned is not None:
                return learned
        if not event.pod:
            return None
        candidates = self.by_pod.get((event.namespace, event.pod), [])
        if event.container_name:
            candidates = [t for t in candidates if t.container == event.container_name]
        else:
            candidates = [t for t in candidates if t.container] or candidates
        names = {t.container for t in candidates}
        if len(names) != 1:
            return None  # unknown, or several containers of the pod and nothing says which
        target = candidates[0]
        if cid and cid not in HOST_IDS:
            self.learned[cid[:12]] = target
            self.learned.move_to_end(cid[:12])
            while len(self.learned) > MAX_LEARNED_IDS:
                self.learned.popitem(last=False)
        return target

    def containers_of(self, cluster: str, namespace: str, workload: str) -> list[Target]:
        return self.by_workload.get((cluster, namespace, workload), [])


def key_for(event: RuntimeEvent, target: Target) -> BaselineKey:
    return BaselineKey(target.cluster, target.namespace, target.workload_name, target.container or
                       event.container_name, target.digest or event.image_digest)


# --- the image: what is in it ---------------------------------------------------------------------------


class ImageIndex:
    """Per image digest: its owner index (catalog + layer listing), or None when it cannot be told."""

    def __init__(self) -> None:
        self._indexes: OrderedDict[str, OwnerIndex | None] = OrderedDict()
        self._drift: dict[tuple[str, str], bool] = {}

    def index(self, session: Session, digest: str) -> OwnerIndex | None:
        if digest in self._indexes:
            self._indexes.move_to_end(digest)
            return self._indexes[digest]
        found = owner_index(session, digest, require_files=True) if digest else None
        self._indexes[digest] = found
        while len(self._indexes) > MAX_INDEXES:
            gone, _ = self._indexes.popitem(last=False)
            self._drift = {k: v for k, v in self._drift.items() if k[0] != gone}
        return found

    def is_drift(self, session: Session, digest: str, path: str) -> bool:
        memo = self._drift.get((digest, path))
        if memo is not None:
            return memo
        index = self.index(session, digest)
        drift = bool(index is not None and verify_with([path], index).drift)
        if len(self._drift) < MAX_DRIFT_MEMO:
            self._drift[(digest, path)] = drift
        return drift


def owner_index(session: Session, digest: str, *, require_files: bool = False) -> OwnerIndex | None:
    """The image's file → package index from its stored catalog and layer listing.

    Without a layer listing, only package-owned files are known (``require_files``: then None).
    """
    from keelwatch.store.catalog import load_catalog

    catalog = load_catalog(session, digest)
    if catalog is None:
        return None
    listed = stored.load_image_files(session, digest)
    if listed is None and require_files:
        return None
    files, links = listed if listed is not None else (set(), {})
    return OwnerIndex(catalog.packages, ImageFiles(files=files, links=links))


def code_paths(event: RuntimeEvent) -> list[tuple[str, str]]:
    """(path, how) of the code an event shows in use: the process's executable, a library it loaded."""
    out = []
    if event.executable.startswith("/"):
        out.append((event.executable, "exec"))
    if event.kind == EventKind.OPEN and event.path and is_loadable(event.path):
        out.append((event.path, "open"))
    return out


# --- the pipeline -----------------------------------------------------------------------------------------


class Ingestor:
    def __init__(self, store: Store, settings: Settings, *, clock: Callable[[], datetime] | None = None):
        self.store = store
        self.settings = settings
        self.policy = policy_of(settings.runtime)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.images = ImageIndex()
        self._attributor: Attributor | None = None
        self._written: OrderedDict[tuple[str, str], datetime] = OrderedDict()  # (container, path) → last_seen

    def attributor(self, session: Session, *, refresh: bool = False) -> Attributor:
        if self._attributor is None or refresh:
            learned = self._attributor.learned if self._attributor else None
            self._attributor = Attributor.load(session)
            if learned:
                self._attributor.learned = learned
        return self._attributor

    def ingest(self, events: Iterable[RuntimeEvent], report: IngestReport | None = None) -> IngestReport:
        report = report or IngestReport()
        self.attribute_pending(report)
        for batch in _batches(events, BATCH):
            with self.store.session() as session:
                attributor = self.attributor(session)
                attributed: list[tuple[RuntimeEvent, Target]] = []
                unknown: list[dict[str, Any]] = []
                for event in batch:
                    report.events += 1
                    if is_host(event):
                        report.host += 1
                        continue
                    target = attributor.attribute(event)
                    if target is None:
                        unknown.append(event.to_json())
                    else:
                        attributed.append((event, target))
                report.attributed += len(attributed)
                report.unattributed += len(unknown)
                if unknown:
                    report.unattributed_dropped += stored.add_unattributed(session, unknown, self.clock(),
                                                                           limit=MAX_UNATTRIBUTED)
                self._process(session, attributed, report)
        with self.store.session(write=False) as session:
            report.still_unattributed = stored.count_unattributed(session)
        return report

    def attribute_pending(self, report: IngestReport | None = None) -> IngestReport:
        """Attribute kept events to containers the inventory now knows (after a sync); the rest stay."""
        report = report or IngestReport()
        with self.store.session(write=False) as session:
            if stored.count_unattributed(session) == 0:
                return report
        after = 0
        refreshed = False
        while True:
            with self.store.session() as session:
                attributor = self.attributor(session, refresh=not refreshed)
                refreshed = True
                pending = stored.pending_unattributed(session, after=after, limit=BATCH)
                if not pending:
                    break
                after = pending[-1][0]
                done: list[int] = []
                attributed: list[tuple[RuntimeEvent, Target]] = []
                for row_id, data in pending:
                    try:
                        event = RuntimeEvent.from_json(data)
                    except ValueError:
                        done.append(row_id)  # unreadable after an upgrade: nothing to attribute
                        continue
                    target = attributor.attribute(event)
                    if target is not None:
                        attributed.append((event, target))
                        done.append(row_id)
                attributed.sort(key=lambda pair: pair[0].time)
                stored.delete_unattributed(session, done)
                report.attributed_later += len(attributed)
                self._process(session, attributed, report)
        return report

    def _process(self, session: Session, attributed: list[tuple[RuntimeEvent, Target]], report: IngestReport) -> None:
        if not attributed:
            return
        now = self.clock()
        latest = now + MAX_CLOCK_SKEW
        keyed = []
        for event, target in attributed:
            if event.time > latest:
                event = replace(event, time=now)
                report.clock_skewed += 1
            keyed.append((event, target, key_for(event, target)))
        keys = {key for _, _, key in keyed}
        lineages = {key.lineage for key in keys}
        engine = BaselineEngine.from_json({
            "baselines": stored.load_baselines(session, lineages, for_update=True),
            "deviations": stored.load_open_deviations(session, [_tuple(k) for k in keys]),
        }, self.policy)
        counts_before = {d.id: d.count for d in engine.open.values()}
        opened: list[Deviation] = []
        observations: list[stored.Observation] = []
        for event, target, key in keyed:
            opened += engine.observe(event, key)
            for path, how in code_paths(event):
                observations.append(stored.Observation(
                    target.key, target.cluster, target.namespace, key.workload, target.pod, key.container,
                    key.image_digest, path, how, event.time, event.time))
                if key.image_digest and self.images.is_drift(session, key.image_digest, path):
                    severity, verb = ("critical", "ran") if how == "exec" else ("high", "loaded")
                    flagged = engine.flag(event, key, DRIFT, severity, f"{verb} {path}, which is not in the image",
                                          ("path", path))
                    if flagged is not None:
                        opened.append(flagged)
        touched = keys | {d.key for d in opened}
        report.baselines |= touched
        report.deviations_opened += len(opened)
        report.deviations_repeated += sum(d.count - counts_before[d.id] for d in engine.open.values()
                                          if d.id in counts_before)
        stored.save_baselines(session, (b.to_json() for k, b in engine.baselines.items() if k in touched), now)
        stored.save_deviations(session, (d.to_json() for d in engine.open.values() if d.key in touched))
        report.alerts_queued += queue_alerts(session, self.settings.alerts, self.attributor(session),
                                             [_tuple(k) for k in touched], now)
        report.observations_dropped += stored.record_observations(session, self._fresh(observations),
                                                                  max_per_container=MAX_OBSERVED_PATHS)

    def _fresh(self, observations: list[stored.Observation]) -> list[stored.Observation]:
        """The observations worth writing: not written by this process within OBSERVATION_REFRESH."""
        out: list[stored.Observation] = []
        written = self._written
        for o in observations:
            pair = (o.container_key, o.path)
            last = written.get(pair)
            if last is not None and last - OBSERVATION_REFRESH <= o.last_seen <= last + OBSERVATION_REFRESH:
                continue
            written[pair] = o.last_seen
            written.move_to_end(pair)
            out.append(o)
        while len(written) > MAX_OBSERVATION_MEMO:
            written.popitem(last=False)
        return out


def _tuple(key: BaselineKey) -> stored.Key:
    return (key.cluster, key.namespace, key.workload, key.container, key.image_digest)


def _batches(events: Iterable[RuntimeEvent], size: int) -> Iterator[list[RuntimeEvent]]:
    batch: list[RuntimeEvent] = []
    for event in events:
        batch.append(event)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- alerts --------------------------------------------------------------------------------------------


def _severity_max(severities: Iterable[str]) -> str:
    return max(severities, key=lambda s: SEVERITIES.index(s) if s in SEVERITIES else -1)


def queue_alerts(session: Session, settings: AlertSettings, attributor: Attributor,
                 keys: Iterable[stored.Key], now: datetime) -> int:
    """Queue the not yet alerted deviations of these baselines: one message per (workload, kind) and channel."""
    from keelwatch.alerts.engine import channel_takes
    from keelwatch.alerts.policy import decide
    from keelwatch.store.alerts import RunningContainer, add_outbox

    pending = stored.unalerted(session, list(keys))
    if not pending:
        return 0
    groups: dict[tuple[str, str, str, str], list[Any]] = {}
    for row in pending:
        groups.setdefault((row.cluster, row.namespace, row.workload, row.kind), []).append(row)
    messages: list[dict[str, Any]] = []
    for (cluster, namespace, workload, kind), rows in sorted(groups.items()):
        containers = attributor.containers_of(cluster, namespace, workload)
        body = alert_body(cluster, namespace, workload, kind, rows, containers, now)
        # The alert policy's overrides apply (``notify = "none"`` silences, e.g., dev); a deviation is
        # an incident, so "digest" is sent now like "immediate".
        running = [RunningContainer(**c.as_dict()) for c in containers]
        if decide(settings, body["severity"], False, running).notify == "none":
            continue
        for channel in settings.channels:
            if not channel_takes(channel, body):
                continue
            key = f"{body['id']}:{channel.name}"
            messages.append({"idempotency_key": key, "alert_id": None, "channel": channel.name, "event": ALERT_EVENT,
                             "body": {**body, "idempotency_key": key}, "created": now, "next_attempt": now,
                             "attempts": 0, "last_error": ""})
    stored.mark_alerted(session, [r.id for r in pending], now)
    return add_outbox(session, messages)


def alert_body(cluster: str, namespace: str, workload: str, kind: str, rows: list[Any], containers: list[Target],
               now: datetime) -> dict[str, Any]:
    """The message for a group of new deviations; ``id`` is stable for the set of deviations it carries."""
    ids = sorted(r.id for r in rows)
    group_id = "rt-" + hashlib.sha256("\x00".join(ids).encode()).hexdigest()[:24]
    severity = _severity_max(r.severity for r in rows)
    listed = [c.as_dict() for c in containers]
    where = f"{namespace}/{workload}" if namespace else workload
    return {
        "id": group_id, "event": ALERT_EVENT, "kind": kind, "severity": severity,
        "cluster": cluster, "namespace": namespace, "workload": workload,
        "summary": f"{len(rows)} {kind} deviation(s) in {where}",
        "count": len(rows), "deviation_ids": ids,
        "deviations": [{"id": r.id, "kind": r.kind, "severity": r.severity, "container": r.container,
                        "image_digest": r.image_digest, "detail": r.detail, "first_seen": _iso(r.first_seen),
                        "count": r.count} for r in rows[:MAX_DETAILS_IN_ALERT]],
        "images": sorted({r.image_digest for r in rows if r.image_digest}),
        "containers": listed,
        "owners": sorted({x for c in containers for x in (c.owner, c.team) if x}),
        "namespaces": [namespace] if namespace else [], "clusters": [cluster] if cluster else [],
        "created": _iso(now),
    }


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


# --- users ------------------------------------------------------------------------------------------------


def accept(store: Store, settings: Settings, deviation_prefix: str, *, by: str = "",
           now: datetime | None = None) -> dict[str, Any]:
    """Accept a deviation into its baseline: what it showed is normal from now on. Returns the deviation."""
    from keelwatch.errors import KeelwatchError

    now = now or datetime.now(UTC)
    with store.session() as session:
        found = stored.find_deviations(session, deviation_prefix)
        if not found:
            raise KeelwatchError(f"no deviation id starts with {deviation_prefix!r}",
                                 hint="keelwatch runtime deviations")
        if len(found) > 1:
            raise KeelwatchError(f"deviation id {deviation_prefix!r} is ambiguous", hint="give more of the id")
        row = found[0]
        key = (row.cluster, row.namespace, row.workload, row.container, row.image_digest)
        engine = BaselineEngine.from_json({"baselines": stored.load_baselines(session, [key[:4]], for_update=True),
                                           "deviations": [stored.deviation_json(row)]}, policy_of(settings.runtime))
        if not row.accepted:
            baseline_key = BaselineKey(*key)
            if baseline_key in engine.baselines:
                engine.accept(row.id)
                stored.save_baselines(session, [engine.baselines[baseline_key].to_json()], now)
            stored.mark_accepted(session, row.id, by=by, now=now)
        session.expire_all()
        return stored.deviation_json(stored.find_deviations(session, row.id)[0])


def ingest(store: Store, settings: Settings, events: Iterable[RuntimeEvent]) -> IngestReport:
    return Ingestor(store, settings).ingest(events)
