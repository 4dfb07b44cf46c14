"""The service's loops: a tiny protocol, an explicit registry, and a runner.

A loop is a name, a cadence and a function of a ``LoopContext``. The runner calls it, waits its
interval, and calls it again, in a thread of its own, until told to stop. A loop that fails is
logged and counted and tried again at its next turn: one broken feed never stops the service.
A loop that can take long checks ``ctx.stopping`` between units of work and returns early, so a
SIGTERM abandons it safely (its work is transactional: what it did not commit is redone after a
restart).

Adding a loop (feed sync, scan queue, inventory, alerts) is one function, one ``Loop(...)`` line
in ``LOOPS`` and its tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from keelwatch.config import Settings
from keelwatch.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoopContext:
    store: Store
    settings: Settings
    stop: threading.Event

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


# --- the jobs (heavy imports inside: `keelwatch --help` must stay fast) -------------------------------


def sync_feeds(ctx: LoopContext) -> dict[str, Any]:
    """Every feed's sync, then the re-match of what changed and the alerts it raises."""
    from keelwatch.alerts.engine import raise_alerts
    from keelwatch.match.rematch import rematch
    from keelwatch.sync import sync_all

    reports = sync_all(ctx.store, ctx.settings)
    done = rematch(ctx.store)
    raised = raise_alerts(ctx.store, ctx.settings.alerts)
    return {"feeds": {r.feed: r.status for r in reports}, "rematch": done.as_dict(), "alerts": raised.as_dict()}


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
    """Pull and scan, by digest, the images that run but were never scanned (so posture covers all)."""
    from keelwatch.alerts.engine import raise_alerts
    from keelwatch.match.scan import scan_image
    from keelwatch.pipeline import catalog_reference
    from keelwatch.store import inventory as stored_inventory

    with ctx.store.session(write=False) as session:
        digests = stored_inventory.unscanned_digests(session)[:ctx.settings.service.scans_per_turn]
        references = {}
        for digest in digests:
            for c in stored_inventory.list_containers(session, image=digest, limit=5):
                if c.values.reference:
                    references[digest] = c.values.reference.split("@", 1)[0].rsplit(":", 1)[0] + "@" + digest
                    break
    scanned, failed = [], {}
    for digest, reference in references.items():
        if ctx.stopping:
            break
        try:
            done = catalog_reference(f"registry:{reference}", store=ctx.store)
            scan_image(ctx.store, done.result.image.manifest_digest)
            scanned.append(digest)
        except Exception as exc:  # one unreachable registry must not stop the queue
            failed[digest] = f"{type(exc).__name__}: {exc}"
            log.warning("scan of %s failed: %s", reference, exc)
    if scanned:
        raise_alerts(ctx.store, ctx.settings.alerts)
    return {"scanned": scanned, "failed": failed, "waiting": len(digests) - len(references)}


def deliver_alerts(ctx: LoopContext) -> dict[str, Any]:
    from keelwatch.alerts.outbox import deliver

    return deliver(ctx.store, ctx.settings.alerts, max_batches=10).as_dict()


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
    Loop("feeds", timedelta(hours=1), sync_feeds, enabled=lambda s: bool(s.feeds)),
    Loop("inventory", timedelta(minutes=2), sync_inventory, enabled=lambda s: bool(s.inventory.sources)),
    Loop("scan-queue", timedelta(minutes=1), scan_new_digests, initial_delay=timedelta(seconds=5)),
    Loop("deliver", timedelta(seconds=5), deliver_alerts, enabled=lambda s: bool(s.alerts.channels)),
    Loop("posture-snapshot", timedelta(hours=24), snapshot_posture, initial_delay=timedelta(seconds=30)),
    Loop("digest", timedelta(hours=24), queue_digests, enabled=lambda s: bool(s.alerts.channels),
         initial_delay=timedelta(hours=1)),
)
INTERVALS = {"feeds": "feed_interval", "inventory": "inventory_interval", "scan-queue": "scan_interval",
             "deliver": "deliver_interval", "posture-snapshot": "snapshot_interval", "digest": "digest_interval"}


def interval_for(loop: Loop, settings: Settings) -> timedelta:
    """The loop's cadence: ``[service]`` for the registered loops, the loop's own otherwise."""
    key = INTERVALS.get(loop.name)
    return getattr(settings.service, key) if key else loop.interval


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

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"runs": self.runs, "failures": self.failures, "consecutive_failures": self.consecutive_failures,
                "running": self.running, "last_started": iso(self.last_started),
                "last_finished": iso(self.last_finished), "last_success": iso(self.last_success),
                "last_error": self.last_error, "last_seconds": round(self.last_seconds, 3)}


@dataclass
class LoopRunner:
    """Runs ``loops`` each in a daemon thread until ``stop()``; state and metrics per loop."""

    store: Store
    settings: Settings
    loops: Sequence[Loop] = LOOPS
    #: Consecutive failures after which ``/readyz`` reports the loop (and the service) not ready.
    unready_after: int = 3
    states: dict[str, LoopState] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        _check_unique(self.loops)
        self.active = [loop for loop in self.loops if loop.enabled(self.settings)]
        self.states = {loop.name: LoopState() for loop in self.active}

    def start(self) -> None:
        context = LoopContext(self.store, self.settings, self._stop)
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
            started = time.perf_counter()
            with self._lock:
                state.running, state.last_started = True, datetime.now(UTC)
            try:
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
            if self._stop.wait(interval_for(loop, context.settings).total_seconds()):
                return

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
                for name, s in status.items():
                    runs.add_metric([name], s["runs"])
                    failures.add_metric([name], s["failures"])
                    if s["last_success"]:
                        success.add_metric([name], datetime.fromisoformat(s["last_success"]).timestamp())
                yield from (runs, failures, success)

        return LoopCollector()
