"""The service's loops: a tiny protocol, an explicit registry, and a runner.

A loop is a name, a cadence and a function of a ``LoopContext``. The runner calls it, waits its
interval, and calls it again, in a thread of its own, until told to stop. A loop that fails is
logged and counted and tried again at its next turn: one broken feed never stops the service.
A loop that can take long checks ``ctx.stopping`` between units of work and returns early, so a
SIGTERM abandons it safely (its work is transactional: what it did not commit is redone after a
restart).

Adding a loop (feed sync, scan queue, inventory, alerts) is one function, one ``Loop(...)`` line
in ``LOOPS`` and its tests.

Several processes on one database (``keelwatch serve`` and ``keelwatch worker``, docs/scale-out.md)
behave as one keelwatch: a *singleton* loop runs under a lease (``keelwatch.store.leases``) taken
before each run and renewed while it runs, so one process at a time runs it, once per interval
across all of them, and another takes over within the lease TTL when its holder dies. The scan
queue and the alert delivery are partitioned instead: every process runs them, and each job
(a digest, an outbox message) is claimed by one process under a lease of its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from keelwatch.config import Settings
from keelwatch.store import Store

log = logging.getLogger(__name__)

#: How long a lease (a singleton loop's, a scan job's) outlives its holder's last renewal, unless
#: ``[service] lease_ttl`` says otherwise. Holders renew at a third of it.
DEFAULT_LEASE_TTL = timedelta(seconds=30)
#: The roles of ``keelwatch worker --role``: which loops a process runs ("all": every one).
ROLES = ("sync", "inventory", "scan", "deliver", "snapshot")
#: Claims of one digest whose worker never finished before the scan queue gives it up as failed.
SCAN_MAX_ATTEMPTS = 5


def lease_ttl(settings: Settings) -> timedelta:
    return getattr(settings.service, "lease_ttl", None) or DEFAULT_LEASE_TTL


@dataclass(frozen=True, slots=True)
class LoopContext:
    store: Store
    settings: Settings
    stop: threading.Event
    #: Who this process is in ``leases`` and ``scan_jobs`` (host:pid:random).
    holder: str = ""
    #: How many jobs of a partitioned loop (scans) this process runs at once.
    concurrency: int = 1
    lease_ttl: timedelta = DEFAULT_LEASE_TTL

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()


@dataclass(frozen=True, slots=True)
class Loop:
    name: str
    interval: timedelta
    run: Callable[[LoopContext], Any]
    #: Whether the settings ask for this loop at all (no feeds configured: no feed sync).
    enabled: Callable[[Settings], bool] = lambda settings: True
    #: Wait before the first run (0: at once when the service starts).
    initial_delay: timedelta = timedelta(0)
    #: Which ``keelwatch worker --role`` runs it ("" : only ``--role all`` and ``serve``).
    role: str = ""
    #: One process at a time, once per interval across processes (a lease); False: every process
    #: runs it and its jobs are claimed one by one (scan queue, delivery).
    singleton: bool = True


# --- the jobs (heavy imports inside: `keelwatch --help` must stay fast) -------------------------------


def sync_feeds(ctx: LoopContext) -> dict[str, Any]:
    """Every feed's sync, then the re-match of what changed and the alerts it raises."""
    from keelwatch.alerts.engine import raise_alerts_in
    from keelwatch.match.rematch import rematch
    from keelwatch.sync import sync_all

    reports = sync_all(ctx.store, ctx.settings)
    raised: list[Any] = []
    done = rematch(ctx.store, then=lambda session, _: raised.append(raise_alerts_in(session, ctx.settings.alerts)))
    return {"feeds": {r.feed: r.status for r in reports}, "rematch": done.as_dict(), "alerts": raised[0].as_dict()}


def sync_inventory(ctx: LoopContext) -> dict[str, Any]:
    """One pass over every inventory source, then alerts for what started or stopped running."""
    from keelwatch.alerts.engine import raise_alerts
    from keelwatch.inventory.sync import InventorySync

    engine = InventorySync(ctx.store, ctx.settings)
    statuses = {}
    try:
        for source in engine.sources():
            if ctx.stopping:
                break
            statuses[source.name] = engine.sync_source(source).status
    finally:
        engine.close()
    return {"sources": statuses, "alerts": raise_alerts(ctx.store, ctx.settings.alerts).as_dict()}


def scan_new_digests(ctx: LoopContext) -> dict[str, Any]:
    """Pull and scan, by digest, the images that run but were never scanned (so posture covers all).

    Every process queues what it sees (a digest is one job however many queue it), then claims up
    to ``ctx.concurrency`` jobs at a time under a lease it renews while they run; a worker that
    dies leaves its jobs to whoever claims them after the lease ran out.
    """
    from keelwatch.alerts.engine import raise_alerts
    from keelwatch.store import leases

    now = datetime.now(UTC)
    with ctx.store.session() as session:
        found = leases.unqueued_digests(session)
        queued = leases.enqueue_scans(session, [(d, _by_digest(r, d)) for d, r in found], now=now)
    scanned: list[str] = []
    failed: dict[str, str] = {}
    budget = max(ctx.settings.service.scans_per_turn, ctx.concurrency)
    with _Heartbeat(ctx) as heartbeat, ThreadPoolExecutor(max(ctx.concurrency, 1),
                                                          thread_name_prefix="keelwatch-scan") as pool:
        while budget > 0 and not ctx.stopping:
            with ctx.store.session() as session:
                jobs = leases.claim_scans(session, ctx.holder, now=datetime.now(UTC), lease=ctx.lease_ttl,
                                          limit=min(ctx.concurrency, budget), max_attempts=SCAN_MAX_ATTEMPTS)
            if not jobs:
                break
            budget -= len(jobs)
            heartbeat.scans.update(j.digest for j in jobs)
            for job, error in zip(jobs, pool.map(lambda job: _scan_one(ctx, job), jobs), strict=True):
                heartbeat.scans.discard(job.digest)
                (failed.__setitem__(job.digest, error) if error else scanned.append(job.digest))
    if scanned:
        raise_alerts(ctx.store, ctx.settings.alerts)
    return {"queued": queued, "scanned": scanned, "failed": failed}


def _by_digest(reference: str, digest: str) -> str:
    """``registry:NAME@DIGEST`` for a container's reference: pulled by the digest that runs, not the tag."""
    from keelwatch.images.reference import parse_reference

    try:
        name = parse_reference(reference).name
    except Exception:  # kept as given; the scan then fails with the reason and is retried
        name = reference.split("@", 1)[0]
    return f"registry:{name}@{digest}"


def _scan_one(ctx: LoopContext, job: Any) -> str | None:
    """Catalog and match one job's image; record the outcome; the error, or None when scanned."""
    from keelwatch.alerts.outbox import backoff
    from keelwatch.match.scan import scan_image
    from keelwatch.pipeline import catalog_reference
    from keelwatch.store import leases

    error = None
    try:
        done = catalog_reference(job.reference, options=_open_options(ctx.settings, job.reference), store=ctx.store)
        scan_image(ctx.store, done.result.image.manifest_digest)
    except Exception as exc:  # one unreachable registry must not stop the queue
        error = f"{type(exc).__name__}: {exc}"
        log.warning("scan of %s failed: %s", job.reference, exc)
    now = datetime.now(UTC)
    with ctx.store.session() as session:
        mine = leases.finish_scan(session, job, now=now, error=error,
                                  retry_at=now + backoff(job.attempts, timedelta(minutes=30)),
                                  give_up=job.attempts >= SCAN_MAX_ATTEMPTS)
    if not mine:
        log.warning("the scan of %s finished after its lease was taken over; its successor records it", job.digest)
    return error


def _open_options(settings: Settings, reference: str) -> Any:
    from keelwatch.images.layers import Limits
    from keelwatch.images.source import OpenOptions
    from keelwatch.model import Platform
    from keelwatch.pipeline import registry_is_insecure

    scan = settings.scan
    return OpenOptions(platform=Platform.parse(scan.platform) if scan.platform else None,
                       insecure=registry_is_insecure(reference, scan.insecure_registries),
                       limits=Limits(max_layer_bytes=scan.max_layer_bytes, max_file_bytes=scan.max_file_bytes))


class _Heartbeat:
    """Renews, every third of the TTL, the leases a run holds: its loop's and its scan jobs'."""

    def __init__(self, ctx: LoopContext, lease: str | None = None) -> None:
        self.ctx, self.lease = ctx, lease
        self.scans: set[str] = set()
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="keelwatch-lease", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        from keelwatch.store import leases

        ctx = self.ctx
        while not self._done.wait(ctx.lease_ttl.total_seconds() / 3):
            now = datetime.now(UTC)
            try:
                with ctx.store.session() as session:
                    if self.lease and not leases.renew(session, self.lease, ctx.holder, ttl=ctx.lease_ttl, now=now):
                        if not self.lost.is_set():
                            log.warning("lease %s was taken over while this process held it", self.lease)
                        self.lost.set()
                    if self.scans:
                        leases.renew_scans(session, list(self.scans), ctx.holder, now=now, lease=ctx.lease_ttl)
            except Exception as exc:  # the database is away: try again at the next beat
                log.warning("could not renew leases: %s", exc)


def deliver_alerts(ctx: LoopContext) -> dict[str, Any]:
    from keelwatch.alerts.outbox import deliver

    # The process's own holder id: every attempt records which process sent it (a fresh id per
    # turn made one process look like many in the attempt log).
    return deliver(ctx.store, ctx.settings.alerts, owner=ctx.holder or None, max_batches=10).as_dict()


def snapshot_posture(ctx: LoopContext) -> dict[str, Any]:
    from keelwatch.posture import compute, history

    with ctx.store.session() as session:
        return {"rows": history.snapshot(session, compute.fleet(session), now=datetime.now(UTC))}


def queue_digests(ctx: LoopContext) -> dict[str, Any]:
    from keelwatch.alerts.outbox import make_digests

    return {"queued": make_digests(ctx.store, ctx.settings.alerts)}


#: The registry: one line per loop, in start order. Names are unique (checked at import). The
#: cadences are read from ``[service]`` when the runner starts (``interval_for``).
LOOPS: tuple[Loop, ...] = (
    Loop("feeds", timedelta(hours=1), sync_feeds, enabled=lambda s: bool(s.feeds), role="sync"),
    Loop("inventory", timedelta(minutes=2), sync_inventory, enabled=lambda s: bool(s.inventory.sources),
         role="inventory"),
    Loop("scan-queue", timedelta(minutes=1), scan_new_digests, initial_delay=timedelta(seconds=5), role="scan",
         singleton=False),
    Loop("deliver", timedelta(seconds=5), deliver_alerts, enabled=lambda s: bool(s.alerts.channels),
         role="deliver", singleton=False),
    Loop("posture-snapshot", timedelta(hours=24), snapshot_posture, initial_delay=timedelta(seconds=30),
         role="snapshot"),
    Loop("digest", timedelta(hours=24), queue_digests, enabled=lambda s: bool(s.alerts.channels),
         initial_delay=timedelta(hours=1), role="deliver"),
)
INTERVALS = {"feeds": "feed_interval", "inventory": "inventory_interval", "scan-queue": "scan_interval",
             "deliver": "deliver_interval", "posture-snapshot": "snapshot_interval", "digest": "digest_interval"}


def interval_for(loop: Loop, settings: Settings) -> timedelta:
    """The loop's cadence: ``[service]`` for the registered loops, the loop's own otherwise."""
    key = INTERVALS.get(loop.name)
    return getattr(settings.service, key) if key else loop.interval


def loops_for_roles(roles: Collection[str], loops: Sequence[Loop] = LOOPS) -> tuple[Loop, ...]:
    """The loops a process with ``roles`` runs: ``all`` (or none named) is every loop."""
    unknown = sorted(set(roles) - {*ROLES, "all"})
    if unknown:
        raise ValueError(f"unknown roles: {', '.join(unknown)} (known: {', '.join(ROLES)}, all)")
    if not roles or "all" in roles:
        return tuple(loops)
    return tuple(loop for loop in loops if loop.role in roles)


def _lease_name(loop: Loop) -> str:
    return f"loop:{loop.name}"


def _check_unique(loops: Sequence[Loop]) -> None:
    names = [loop.name for loop in loops]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"loops registered twice: {', '.join(duplicates)}")


_check_unique(LOOPS)


@dataclass(slots=True)
class LoopState:
    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    running: bool = False
    last_started: datetime | None = None
    last_finished: datetime | None = None
    last_success: datetime | None = None
    last_error: str = ""
    last_seconds: float = 0.0
    skipped: int = 0  # turns a singleton loop left to the process holding its lease (or not yet due)
    takeovers: int = 0  # leases taken from a holder that had stopped renewing them

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"runs": self.runs, "failures": self.failures, "consecutive_failures": self.consecutive_failures,
                "running": self.running, "last_started": iso(self.last_started),
                "last_finished": iso(self.last_finished), "last_success": iso(self.last_success),
                "last_error": self.last_error, "last_seconds": round(self.last_seconds, 3),
                "skipped": self.skipped, "takeovers": self.takeovers}


@dataclass
class LoopRunner:
    """Runs ``loops`` each in a daemon thread until ``stop()``; state and metrics per loop.

    A singleton loop runs only while this process holds its lease (``loop:NAME``); see the module.
    """

    store: Store
    settings: Settings
    loops: Sequence[Loop] = LOOPS
    #: Consecutive failures after which ``/readyz`` reports the loop (and the service) not ready.
    unready_after: int = 3
    #: Scan jobs this process runs at once (``keelwatch worker --concurrency``).
    concurrency: int = 1
    #: None: ``[service] lease_ttl`` (30 s by default).
    lease_ttl: timedelta | None = None
    #: This process's name in the leases; a fresh one per runner.
    holder: str = ""
    states: dict[str, LoopState] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        _check_unique(self.loops)
        self.active = [loop for loop in self.loops if loop.enabled(self.settings)]
        self.states = {loop.name: LoopState() for loop in self.active}
        if not self.holder:
            from keelwatch.store.leases import holder_id

            self.holder = holder_id()
        self.lease_ttl = self.lease_ttl or lease_ttl(self.settings)

    def start(self) -> None:
        assert self.lease_ttl is not None
        context = LoopContext(self.store, self.settings, self._stop, holder=self.holder,
                              concurrency=max(self.concurrency, 1), lease_ttl=self.lease_ttl)
        for loop in self.active:
            thread = threading.Thread(target=self._run, args=(loop, context), name=f"keelwatch-{loop.name}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()
        if self.active:
            log.info("started loops: %s", ", ".join(loop.name for loop in self.active))

    def _run(self, loop: Loop, context: LoopContext) -> None:
        state = self.states[loop.name]
        if self._stop.wait(loop.initial_delay.total_seconds()):
            return
        while True:
            interval = interval_for(loop, context.settings)
            if loop.singleton:
                wait = self._take_lease(loop, context, interval, state)
                if wait is not None:
                    if self._stop.wait(wait):
                        return
                    continue
            started = time.perf_counter()
            with self._lock:
                state.running, state.last_started = True, datetime.now(UTC)
            try:
                if loop.singleton:
                    with _Heartbeat(context, _lease_name(loop)):
                        try:
                            loop.run(context)
                        finally:
                            self._release(loop, context)
                else:
                    loop.run(context)
            except Exception as exc:
                log.exception("loop %s failed", loop.name)
                with self._lock:
                    state.failures += 1
                    state.consecutive_failures += 1
                    state.last_error = f"{type(exc).__name__}: {exc}"
            else:
                with self._lock:
                    state.consecutive_failures = 0
                    state.last_error = ""
                    state.last_success = datetime.now(UTC)
            finally:
                with self._lock:
                    state.runs += 1
                    state.running = False
                    state.last_finished = datetime.now(UTC)
                    state.last_seconds = time.perf_counter() - started
            if self._stop.wait(interval.total_seconds()):
                return

    def _take_lease(self, loop: Loop, context: LoopContext, interval: timedelta, state: LoopState) -> float | None:
        """None when this process holds the loop's lease (run now), else the seconds to wait."""
        from keelwatch.store import leases

        now = datetime.now(UTC)
        try:
            with self.store.session() as session:
                got = leases.acquire(session, _lease_name(loop), context.holder, ttl=context.lease_ttl, now=now,
                                     interval=interval)
        except Exception as exc:  # the database is away: a failed turn, retried with backoff
            log.warning("loop %s: cannot take its lease: %s", loop.name, exc)
            with self._lock:
                state.failures += 1
                state.consecutive_failures += 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                retry = min(2.0 ** min(state.consecutive_failures - 1, 6), interval.total_seconds())
            return max(retry, 0.05)
        if got.held:
            if got.takeover:
                log.warning("loop %s: took over the lease of %s, which stopped renewing it", loop.name,
                            got.previous_holder)
                with self._lock:
                    state.takeovers += 1
            return None
        with self._lock:
            state.skipped += 1
            # The database answers and another process has the loop: nothing failing here.
            state.consecutive_failures = 0
        # Held elsewhere or not due: look again when it may be ours, a little later than the others.
        until = (got.retry_at - now).total_seconds() if got.retry_at else interval.total_seconds()
        return min(max(until, 0.0), max(interval.total_seconds(), 0.05)) + 0.05

    def _release(self, loop: Loop, context: LoopContext) -> None:
        from keelwatch.store import leases

        try:
            with self.store.session() as session:
                leases.release(session, _lease_name(loop), context.holder, now=datetime.now(UTC))
        except Exception as exc:  # it then expires after its TTL
            log.warning("loop %s: cannot release its lease: %s", loop.name, exc)

    def stop(self, timeout: float = 30.0) -> bool:
        """Tell every loop to stop and wait up to ``timeout`` seconds in all; True when all ended."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            log.warning("loops still running at shutdown, abandoned: %s", ", ".join(stuck))
        return not stuck

    def status(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: state.as_dict() for name, state in self.states.items()}

    def readiness(self) -> str | None:
        """None when no loop has failed ``unready_after`` times in a row, else which did."""
        with self._lock:
            failing = [f"{name}: {s.last_error}" for name, s in self.states.items()
                       if s.consecutive_failures >= self.unready_after]
        return "; ".join(failing) or None

    def collector(self) -> Any:
        """A Prometheus collector of the loops' runs, failures and last success."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        runner = self

        class LoopCollector:
            def collect(self) -> Any:
                status = runner.status()
                runs = CounterMetricFamily("keelwatch_loop_runs", "Runs of each service loop", labels=["loop"])
                failures = CounterMetricFamily("keelwatch_loop_failures", "Failed runs of each service loop",
                                               labels=["loop"])
                success = GaugeMetricFamily("keelwatch_loop_last_success_timestamp_seconds",
                                            "Unix time of each loop's last successful run", labels=["loop"])
                takeovers = CounterMetricFamily("keelwatch_loop_lease_takeovers",
                                                "Leases this process took from a holder that stopped renewing",
                                                labels=["loop"])
                skipped = CounterMetricFamily("keelwatch_loop_skipped", "Turns left to the process holding the "
                                              "loop's lease, or taken before the loop was due", labels=["loop"])
                for name, s in status.items():
                    takeovers.add_metric([name], s["takeovers"])
                    skipped.add_metric([name], s["skipped"])
                    runs.add_metric([name], s["runs"])
                    failures.add_metric([name], s["failures"])
                    if s["last_success"]:
                        success.add_metric([name], datetime.fromisoformat(s["last_success"]).timestamp())
                yield from (runs, failures, success, takeovers, skipped)

        return LoopCollector()
