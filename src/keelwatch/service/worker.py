"""``keelwatch worker``: the service's loops without the HTTP server, until SIGTERM or SIGINT.

Several workers (and ``keelwatch serve`` processes) on one PostgreSQL behave as one keelwatch:
the loops share their work through leases (``keelwatch.service.loops``, docs/scale-out.md).
``--role`` picks the loops a worker runs; ``--concurrency`` how many scans it runs at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

from keelwatch.config import Settings
from keelwatch.service.loops import LOOPS, Loop, LoopRunner, loops_for_roles
from keelwatch.store import Store

log = logging.getLogger(__name__)

#: Seconds a worker waits, after SIGTERM, for its loops to finish their unit of work.
GRACEFUL_SECONDS = 20


def configured_roles(settings: Settings) -> list[str]:
    """``[service] roles`` (once config has the field), else every role."""
    return list(getattr(settings.service, "roles", None) or ["all"])


def run_worker(store: Store, settings: Settings, *, roles: Collection[str] | None = None, concurrency: int = 1,
               lease_ttl: timedelta | None = None, metrics_port: int | None = None, loops: Sequence[Loop] = LOOPS,
               stop: threading.Event | None = None) -> bool:
    """Run the loops of ``roles`` until ``stop`` is set (SIGTERM and SIGINT set it in the main thread).

    True when every loop stopped within the grace period.
    """
    chosen = loops_for_roles(roles if roles is not None else configured_roles(settings), loops)
    runner = LoopRunner(store, settings, chosen, concurrency=concurrency, lease_ttl=lease_ttl)
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    server = None
    try:
        if metrics_port is not None:
            server = _serve_metrics(runner, metrics_port)
        runner.start()
        log.info("worker %s running %s", runner.holder, ", ".join(runner.states) or "no loops")
        while not stop.wait(1.0):
            pass
        log.info("stopping: waiting up to %d s for the loops", GRACEFUL_SECONDS)
        return runner.stop(GRACEFUL_SECONDS)
    finally:
        if server is not None:
            server.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_metrics(runner: LoopRunner, port: int) -> Any:
    """``/metrics`` of this worker's loops (runs, failures, takeovers, scan queue depth) on ``port``."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(runner.collector())
    registry.register(_QueueCollector(runner.store))
    server, _thread = start_http_server(port, addr="0.0.0.0", registry=registry)
    return server


class _QueueCollector:
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        from keelwatch.store import leases

        jobs = GaugeMetricFamily("keelwatch_scan_jobs", "Scan jobs by state (the queue depth: queued)",
                                 labels=["state"])
        try:
            with self.store.session(write=False) as session:
                counts = leases.scan_counts(session)
        except Exception as exc:  # the database is away: the metric is absent, not zero
            log.warning("cannot read the scan queue for /metrics: %s", exc)
            return
        for state, n in counts.items():
            jobs.add_metric([state], n)
        yield jobs
