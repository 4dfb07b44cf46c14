#!/usr/bin/env python3
"""The Kubernetes inventory at scale: a full sync of 100,000 pods, then a watch under 1,000 events/s.

The cluster is the test API server of tests/inventory (TLS on 127.0.0.1, the real wire format)
run in a child process, as a real API server would be, so that its JSON encoding and its
event fan-out do not share the engine's interpreter (and its GIL). It holds --pods pods over
--namespaces namespaces built with tests/inventory/kube_objects.py: Deployment pods (app, often
a sidecar and an init container), StatefulSet pods, DaemonSet pods on every node of a few
namespaces, CronJob pods (terminated), pending pods (no node, no imageID) and bare pods with an
ephemeral debug container; with their nodes (a quarter arm64), ReplicaSets and Jobs, so every
owner chain resolves from the lists and no pod needs a lookup of its own.

The engine is the real one: ``InventorySync(store, settings).sync_source(...)`` with a SQLite
store in a temp dir, the source settings as tests/inventory/test_kubernetes.py builds them
(kubeconfig with a bearer token, resolve=False) plus owner/team/environment rules. With two or
more cores the engine is pinned to one and the API server to another.

1. Full sync into an empty store: wall time (with the snapshot — list + parse — and resolve
   split out), CPU time, peak RSS (``getrusage``). Then the same sync again (every row unchanged).
2. Watch: ``InventorySync.watch`` running (default watch_flush, 1 s) while the server modifies
   random pods at --rate events/s for --watch-seconds (a label change: each event rewrites its
   pod's rows). Reported: events/s the engine committed, lag of each event from its put to the
   commit that stored it (p50/p95/max), the lag from the last put until the store shows it
   (polled from another connection), and the engine's CPU use over the window (1.0 = one core).
3. The full sync again under cProfile (fresh store): the top entries.
4. The full sync again under tracemalloc (fresh store): peak of Python allocations, for the
   snapshot and for resolve + write.

Writes its section of docs/benchmarks.md (between its markers) unless --no-write.

Usage: bench/inventory.py [--pods 100000] [--namespaces 50] [--watch-seconds 20] [--rate 1000] [--no-write]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import multiprocessing
import os
import platform
import pstats
import random
import re
import resource
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy import select  # noqa: E402

from inventory import kube_objects as ko  # noqa: E402
from inventory.kube_server import KubeApiServer  # noqa: E402
from keelwatch.config import InventorySettings, InventorySourceSettings, Settings, StoreSettings  # noqa: E402
from keelwatch.inventory import open_source  # noqa: E402
from keelwatch.inventory.base import ContainerRecord, InventorySource, PodChange  # noqa: E402
from keelwatch.inventory.sync import InventorySync, SyncReport  # noqa: E402
from keelwatch.store import Store  # noqa: E402
from keelwatch.store.inventory import CONTAINERS, ContainerValues  # noqa: E402

GEN = "bench.keelwatch.io/generation"  # the label each watch event changes
SOURCE = "lab"
TEAMS = ("storefront", "payments", "search", "platform", "data", "identity", "ml", "growth")
ENVIRONMENTS = ("production", "staging", "development")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{platform.node()} ({os.cpu_count()} cores, {cpu}), Python {platform.python_version()}"


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the cluster (child process) ---------------------------------------------------------------------


def _hash(rng: random.Random, n: int = 10) -> str:
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


class Images:
    """A few hundred images with their digests, spelled as a kubelet on containerd reports them."""

    def __init__(self, rng: random.Random, n: int = 400) -> None:
        self.items: list[tuple[str, str, str]] = []  # (spec image, status image, imageID)
        for i in range(n):
            digest = f"sha256:{rng.getrandbits(256):064x}"
            if i % 4 == 0:
                repo, tag = f"docker.io/library/{('nginx', 'redis', 'postgres', 'python', 'node')[i % 5]}-{i}", "1.27"
                spec = f"{repo.rsplit('/', 1)[1]}:{tag}"
            else:
                repo, tag = f"ghcr.io/acme/service-{i}", f"{i % 7}.{i % 13}.{i % 5}"
                spec = f"{repo}:{tag}"
            image_id = f"docker-pullable://{repo}@{digest}" if i % 10 == 0 else f"{repo}@{digest}"
            self.items.append((spec, f"{repo}:{tag}", image_id))
        self.sidecar = ("envoyproxy/envoy:v1.31.2", "docker.io/envoyproxy/envoy:v1.31.2",
                        f"docker.io/envoyproxy/envoy@{ko.ENVOY_DIGEST}")
        self.exporter = ("quay.io/prometheus/node-exporter:v1.8.2", "quay.io/prometheus/node-exporter:v1.8.2",
                         f"quay.io/prometheus/node-exporter@{ko.EXPORTER_DIGEST}")
        self.busybox = ("busybox:1.36", "docker.io/library/busybox:1.36",
                        f"docker.io/library/busybox@{ko.BUSYBOX_DIGEST}")

    def pick(self, rng: random.Random) -> tuple[str, str, str]:
        return self.items[min(int(rng.paretovariate(1.2)) - 1, len(self.items) - 1)]  # a few run widely


def build_cluster(server: KubeApiServer, n_pods: int, n_namespaces: int, seed: int = 7) -> dict[str, int]:
    """Put nodes, namespaces, ReplicaSets, Jobs and exactly ``n_pods`` pods; the counts of what was put."""
    rng = random.Random(seed)
    images = Images(rng)
    n_nodes = max(4, n_pods // 100)
    nodes = [f"ip-10-0-{i // 250}-{i % 250}.eu-west-1.compute.internal" for i in range(n_nodes)]
    for i, name in enumerate(nodes):
        server.put("nodes", ko.node(name, "arm64" if i % 4 == 3 else "amd64"))
    per_ns = [n_pods // n_namespaces + (1 if i < n_pods % n_namespaces else 0) for i in range(n_namespaces)]
    counts = {"nodes": n_nodes, "namespaces": n_namespaces, "replicasets": 0, "jobs": 0, "pods": 0, "containers": 0}

    pods: list[dict[str, Any]] = []

    def put_pod(obj: dict[str, Any]) -> None:
        pods.append(obj)
        counts["pods"] += 1
        spec = obj["spec"]
        counts["containers"] += sum(len(spec.get(k) or []) for k in ("containers", "initContainers",
                                                                      "ephemeralContainers"))

    for n, quota in enumerate(per_ns):
        ns = f"ns-{n:02d}-{TEAMS[n % len(TEAMS)]}"  # in list order
        team = TEAMS[n % len(TEAMS)]
        server.put("namespaces", ko.namespace(ns, team=team, environment=ENVIRONMENTS[n % 3]))
        left = quota
        w = 0
        daemonset = n % 10 == 0  # a few namespaces run a DaemonSet: a pod on every node
        while left > 0:
            w += 1
            roll = rng.random()
            if daemonset:
                daemonset = False
                for node_name in nodes[:left]:
                    put_pod(ko.pod(ns, f"node-agent-{_hash(rng, 5)}", owners=[ko.owner("DaemonSet", "node-agent")],
                                   node_name=node_name, labels={"app.kubernetes.io/name": "node-agent"},
                                   containers=[ko.container("node-exporter", images.exporter[0])],
                                   statuses=[ko.running("node-exporter", images.exporter[1], images.exporter[2])]))
                    left -= 1
            elif roll < 0.06 and left >= 3:  # a StatefulSet
                name = f"db-{w}"
                spec, image, image_id = images.pick(rng)
                for ordinal in range(min(3, left)):
                    put_pod(ko.pod(ns, f"{name}-{ordinal}", owners=[ko.owner("StatefulSet", name)],
                                   node_name=rng.choice(nodes), labels={"app": name, "team": team,
                                                                        "statefulset.kubernetes.io/pod-name":
                                                                        f"{name}-{ordinal}"},
                                   containers=[ko.container("server", spec)],
                                   statuses=[ko.running("server", image, image_id, restarts=rng.randrange(3))]))
                    left -= 1
            elif roll < 0.10:  # a CronJob's last runs: a Job each, its pod terminated
                cron = f"report-{w}"
                spec, image, image_id = images.pick(rng)
                for run in range(min(3, left)):
                    job = f"{cron}-{28901230 + run * 60}"
                    server.put("jobs", ko.job(ns, job, cron))
                    counts["jobs"] += 1
                    put_pod(ko.pod(ns, f"{job}-{_hash(rng, 5)}", owners=[ko.owner("Job", job, "batch/v1")],
                                   phase="Succeeded", node_name=rng.choice(nodes),
                                   labels={"batch.kubernetes.io/job-name": job},
                                   containers=[ko.container("report", spec)],
                                   statuses=[ko.terminated("report", image, image_id)]))
                    left -= 1
            elif roll < 0.11:  # a bare pod someone debugs: an ephemeral container
                spec, image, image_id = images.pick(rng)
                put_pod(ko.pod(ns, f"shell-{w}", node_name=rng.choice(nodes),
                               containers=[ko.container("shell", spec)],
                               statuses=[ko.running("shell", image, image_id)],
                               ephemeral=[ko.container("debugger-7xk2p", images.busybox[0],
                                                       targetContainerName="shell", stdin=True, tty=True)],
                               ephemeral_statuses=[ko.running("debugger-7xk2p", images.busybox[1],
                                                              images.busybox[2])]))
                left -= 1
            else:  # a Deployment: its ReplicaSet, replicas with an optional sidecar and init container
                deployment = f"svc-{w}"
                template_hash = _hash(rng, 10)
                rs = f"{deployment}-{template_hash}"
                server.put("replicasets", ko.replicaset(ns, rs, deployment))
                counts["replicasets"] += 1
                spec, image, image_id = images.pick(rng)
                sidecar, init = rng.random() < 0.5, rng.random() < 0.3
                labels = {"app": deployment, "pod-template-hash": template_hash, "team": team}
                annotations = {"keelwatch.io/owner": f"{team}@example.com"}
                for _ in range(min(rng.randint(2, 20), left)):
                    pending = rng.random() < 0.02
                    containers = [ko.container("app", spec)]
                    statuses = [ko.waiting("app", spec) if pending else ko.running("app", image, image_id)]
                    if sidecar:
                        containers.append(ko.container("envoy", images.sidecar[0]))
                        statuses.append(ko.waiting("envoy", images.sidecar[0]) if pending
                                        else ko.running("envoy", images.sidecar[1], images.sidecar[2]))
                    kw: dict[str, Any] = {}
                    if init and not pending:
                        kw = {"init": [ko.container("migrate", spec)],
                              "init_statuses": [ko.terminated("migrate", image, image_id)]}
                    put_pod(ko.pod(ns, f"{rs}-{_hash(rng, 5)}", owners=[ko.owner("ReplicaSet", rs)],
                                   node_name=None if pending else rng.choice(nodes),
                                   phase="Pending" if pending else "Running", labels=dict(labels),
                                   annotations=annotations, containers=containers, statuses=statuses, **kw))
                    left -= 1
    # In the order the server lists them (namespace, name): its sort of every pod per page is then linear.
    for obj in sorted(pods, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])):
        server.put("pods", obj)
    return counts


def serve(conn: Any, workdir: str, n_pods: int, n_namespaces: int, cpu: int | None) -> None:
    """The child: an API server holding the cluster; modifies pods at a rate when told to."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    started = time.monotonic()
    # history=1 while loading (no 100,000 ADDED events kept), then room for the watch's events.
    server = KubeApiServer(Path(workdir) / "apiserver", history=1)
    counts = build_cluster(server, n_pods, n_namespaces)
    server.history = 50_000
    kubeconfig = server.kubeconfig(Path(workdir) / "kubeconfig")
    conn.send(("ready", str(kubeconfig), counts, time.monotonic() - started))
    producer = Producer(server, conn)
    try:
        while True:
            command, *args = conn.recv()
            if command == "stop":
                break
            if command == "modify":
                producer.modify(*args)
            elif command == "cpu":
                conn.send(("cpu", cpu_seconds()))
            elif command == "reads":
                conn.send(("reads", single_reads(server.requests), len(server.requests)))
    finally:
        server.stop()


def single_reads(requests: Sequence[str]) -> dict[str, int]:
    """GETs of one node, ReplicaSet or Job by name (the source's cache misses), by kind."""
    out = {"nodes": 0, "replicasets": 0, "jobs": 0}
    for path in requests:
        match = re.search(r"/(nodes|replicasets|jobs)/[^/?]+$", path.split("?", 1)[0])
        if match:
            out[match[1]] += 1
    return out


class Producer:
    """Changes random pods' label at a rate once a new watch is connected; reports (ns, pod, generation, put time)."""

    def __init__(self, server: KubeApiServer, conn: Any) -> None:
        self.server, self.conn = server, conn
        self.rng = random.Random(11)
        self.generation = 0

    def modify(self, rate: float, seconds: float, seen_requests: int) -> None:
        server = self.server
        deadline = time.monotonic() + 600  # a watch from an empty store lists everything first
        while not any("watch=" in r for r in server.requests[seen_requests:]) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the stream is up
        with server.changed:
            keys = list(server.objects["pods"])
        log: list[tuple[str, str, int, float]] = []
        total = int(rate * seconds)
        self.conn.send(("started", time.monotonic()))
        start = time.monotonic()
        for i in range(total):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ns, name = self.rng.choice(keys)
            with server.changed:
                current = server.objects["pods"][(ns, name)]
            self.generation += 1
            labels = {**current["metadata"].get("labels", {}), GEN: str(self.generation)}
            server.put("pods", dict(current, metadata=dict(current["metadata"], labels=labels)))
            log.append((ns, name, self.generation, time.monotonic()))
        self.conn.send(("done", log))


# --- the engine (this process) ---------------------------------------------------------------------


class BenchSync(InventorySync):
    """The real engine, with timers around its phases and a note of when each watch change was committed."""

    def __init__(self, store: Store, settings: Settings, *, after_snapshot: Callable[[], None] | None = None) -> None:
        self.times: dict[str, float] = {"open": 0.0, "snapshot": 0.0, "resolve": 0.0}
        self.committed: list[tuple[str, str, int, float]] = []  # (ns, pod, generation, commit time)
        self.batches: list[int] = []
        self._after_snapshot = after_snapshot or (lambda: None)
        super().__init__(store, settings, opener=self._timed_open)

    def _timed_open(self, settings: InventorySourceSettings) -> InventorySource:
        started = time.perf_counter()
        source = open_source(settings)
        self.times["open"] += time.perf_counter() - started
        snapshot = source.snapshot
        times, after = self.times, self._after_snapshot

        def timed() -> Any:
            started = time.perf_counter()
            try:
                return snapshot()
            finally:
                times["snapshot"] += time.perf_counter() - started
                after()

        source.snapshot = timed  # type: ignore[method-assign]
        return source

    def resolve_all(self, settings: InventorySourceSettings, records: Any) -> list[ContainerValues]:
        started = time.perf_counter()
        try:
            return super().resolve_all(settings, records)
        finally:
            self.times["resolve"] += time.perf_counter() - started

    def apply_changes(self, settings: InventorySourceSettings, changes: Sequence[PodChange], *,
                      resource_version: str | None) -> SyncReport:
        report = super().apply_changes(settings, changes, resource_version=resource_version)
        now = time.monotonic()
        self.batches.append(len(changes))
        for change in changes:
            records: tuple[ContainerRecord, ...] = change.records
            if records and GEN in records[0].labels:
                self.committed.append((change.scope[0], change.scope[1], int(records[0].labels[GEN]), now))
        return report


def source_settings(kubeconfig: str) -> InventorySourceSettings:
    return InventorySourceSettings(name=SOURCE, kind="kubernetes", kubeconfig=kubeconfig, resolve=False,
                                   owner=["annotation:keelwatch.io/owner"], team=["label:team", "namespace-label:team"],
                                   environment=["namespace-label:environment"])


def engine_settings(store: Store, source: InventorySourceSettings) -> Settings:
    return Settings(store=StoreSettings(url=str(store.url)), inventory=InventorySettings(sources=[source]))


def full_sync(work: Path, name: str, source: InventorySourceSettings, *, profile: cProfile.Profile | None = None,
              traced: dict[str, int] | None = None) -> tuple[Store, BenchSync, SyncReport, dict[str, float]]:
    store = Store.open(f"sqlite:///{work / f'{name}.db'}")

    def after_snapshot() -> None:
        if traced is not None:
            traced["snapshot_peak"], traced["snapshot_held"] = tracemalloc.get_traced_memory()[::-1]
            tracemalloc.reset_peak()

    sync = BenchSync(store, engine_settings(store, source), after_snapshot=after_snapshot)
    cpu, started = cpu_seconds(), time.perf_counter()
    if traced is not None:
        tracemalloc.start()
    if profile is not None:
        profile.enable()
    try:
        report = sync.sync_source(source)
    finally:
        if profile is not None:
            profile.disable()
        if traced is not None:
            traced["apply_peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    figures = {"wall": time.perf_counter() - started, "cpu": cpu_seconds() - cpu}
    if report.status != "ok":
        raise SystemExit(f"the sync did not succeed: {report.status} {report.error} {report.problems[:3]}")
    return store, sync, report, figures


def stored_generation(store: Store, ns: str, pod: str) -> int:
    with store.session(write=False) as session:
        labels = session.execute(select(CONTAINERS.c.labels).where(
            CONTAINERS.c.source == SOURCE, CONTAINERS.c.namespace == ns, CONTAINERS.c.pod == pod,
            CONTAINERS.c.ended_at.is_(None)).limit(1)).scalar_one_or_none()
    return int((labels or {}).get(GEN, 0))


def watch(store: Store, sync: BenchSync, conn: Any, rate: float, seconds: float, *,
          drain: float = 60) -> dict[str, Any]:
    """The engine's watch while the server changes pods; waits up to ``drain`` s after the last put."""
    stop = threading.Event()
    reports: list[SyncReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sync.watch([SOURCE], stop=stop.is_set, on_report=reports.append)
        except BaseException as exc:  # shown below
            errors.append(exc)

    conn.send(("reads",))
    (_, reads_before, requests) = conn.recv()
    thread = threading.Thread(target=run, name="bench-watch", daemon=True)
    thread.start()
    conn.send(("modify", rate, seconds, requests))
    (_, started) = conn.recv()  # blocks without the GIL while the engine works
    cpu_start = cpu_seconds()
    (_, log) = conn.recv()
    last_ns, last_pod, last_gen, last_put = log[-1]
    while stored_generation(store, last_ns, last_pod) < last_gen and time.monotonic() < last_put + drain:
        time.sleep(0.01)
    seen = time.monotonic()
    cpu_share = (cpu_seconds() - cpu_start) / (seen - started)
    caught_up = stored_generation(store, last_ns, last_pod) >= last_gen
    stop.set()
    thread.join(60)
    if errors:
        raise errors[0]
    conn.send(("reads",))
    (_, reads_after, _) = conn.recv()
    first_put = log[0][3]
    put_at = {(ns, pod, gen): t for ns, pod, gen, t in log}
    done = [(t, t - put_at[(ns, pod, gen)]) for ns, pod, gen, t in sync.committed if (ns, pod, gen) in put_at]
    lags = sorted(lag for _, lag in done)
    in_window = sum(1 for t, _ in done if t <= last_put)
    window = max(t for t, _ in done) - first_put if done else float("nan")
    return {
        "events": len(log), "put_rate": (len(log) - 1) / (last_put - first_put),
        "committed": len(lags), "processed_rate": len(lags) / window if done else 0.0,
        "committed_while_putting": in_window, "caught_up": caught_up,
        "lag_p50": lags[len(lags) // 2] if lags else float("nan"),
        "lag_p95": lags[int(len(lags) * 0.95)] if lags else float("nan"),
        "lag_max": lags[-1] if lags else float("nan"),
        "last_lag": seen - last_put, "batches": len(sync.batches),
        "batch_mean": statistics.mean(sync.batches) if sync.batches else 0,
        "problems": sum(1 for r in reports if r.status != "ok"), "cpu_share": cpu_share,
        "reads": {k: reads_after[k] - reads_before[k] for k in reads_after},
    }


def watch_rows(rate: float, seconds: float, resumed: dict[str, Any], listed: dict[str, Any]) -> list[str]:
    def row(what: str, fmt: Callable[[dict[str, Any]], str]) -> str:
        return f"| watch: {what} | {fmt(resumed)} | {fmt(listed)} |"

    def reads(w: dict[str, Any]) -> str:
        return f"{w['reads']['nodes']:,} / {w['reads']['replicasets']:,} / {w['reads']['jobs']:,}"

    return [
        "",
        f"The watch, {seconds:g} s of pod changes at {rate:,.0f}/s (a label each, so each rewrites its pod's rows); "
        "*resumed*: after the sync above, from its stored resourceVersion, as `keelwatch inventory watch` after "
        "`inventory sync`; *listed first*: from an empty store, the watch lists (a full sync) and then watches. "
        "Lags are from the server's put to the engine's commit; the watch is given 60 s after the last put.",
        "",
        "| what | resumed | listed first |",
        "|---|---:|---:|",
        row("events put (rate achieved)", lambda w: f"{w['events']:,} ({w['put_rate']:,.0f}/s)"),
        row(f"events committed / by the last put (target: keeps up with {rate:,.0f}/s)",
            lambda w: f"{w['committed']:,} / {w['committed_while_putting']:,}"),
        row("events committed per second (first put → last commit)", lambda w: f"{w['processed_rate']:,.0f}"),
        row("lag put → commit, p50 / p95 / max (watch_flush = 1 s)",
            lambda w: f"{w['lag_p50']:.2f} / {w['lag_p95']:.2f} / {w['lag_max']:.2f} s"),
        row("lag from the last put until the store shows it",
            lambda w: f"{w['last_lag']:.2f} s" if w["caught_up"] else f"not within {w['last_lag']:.0f} s"),
        row("write batches (mean events a batch)", lambda w: f"{w['batches']:,} ({w['batch_mean']:.0f})"),
        row("engine CPU from the first put to the last seen (1.0 = one core)", lambda w: f"{w['cpu_share']:.2f}"),
        row("GETs of one node / ReplicaSet / Job (cache misses)", reads),
    ]


def top_entries(profile: cProfile.Profile, n: int = 12) -> tuple[str, list[tuple[str, float, float, int]]]:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    rows = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (file, line, func), (_, calls, tottime, cumtime, _) in sorted(raw.items(), key=lambda kv: -kv[1][2])[:n]:
        where = f"{Path(file).name}:{line}({func})" if line else func
        for prefix in ("site-packages/", "src/"):
            if prefix in file:
                where = f"{file.split(prefix, 1)[1]}:{line} {func}"
        rows.append((where, tottime, cumtime, calls))
    return out.getvalue(), rows


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=100_000)
    ap.add_argument("--namespaces", type=int, default=50)
    ap.add_argument("--watch-seconds", type=float, default=20)
    ap.add_argument("--rate", type=float, default=1000, help="watch events per second")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    engine_cpu, server_cpu = (cores[0], cores[1]) if len(cores) >= 2 else (None, None)
    load = os.getloadavg()[0]

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp:
        work = Path(tmp)
        ctx = multiprocessing.get_context("spawn")
        conn, child_conn = ctx.Pipe()
        child = ctx.Process(target=serve, args=(child_conn, tmp, args.pods, args.namespaces, server_cpu), daemon=True)
        child.start()
        _, kubeconfig, counts, built = conn.recv()
        say(f"cluster built in {built:.1f}s: {counts}")
        if engine_cpu is not None:
            os.sched_setaffinity(0, {engine_cpu})
        source = source_settings(kubeconfig)
        try:
            rss_before = rss_mib()
            conn.send(("cpu",))
            server_cpu_before = conn.recv()[1]
            store, sync, report, first = full_sync(work, "inventory", source)
            conn.send(("cpu",))
            first["server_cpu"] = conn.recv()[1] - server_cpu_before
            rss_peak = rss_mib()
            first.update(sync.times)
            say(f"full sync: {first['wall']:.1f}s, {report.containers} containers, {report.counts}, "
                f"snapshot {sync.times['snapshot']:.1f}s, resolve {sync.times['resolve']:.1f}s, "
                f"peak RSS {rss_peak:.0f}")
            if report.containers != counts["containers"]:
                raise SystemExit(f"{report.containers} containers synced, {counts['containers']} put")
            sync.times = {"open": 0.0, "snapshot": 0.0, "resolve": 0.0}
            cpu, started = cpu_seconds(), time.perf_counter()
            again = sync.sync_source(source)
            resync = {"wall": time.perf_counter() - started, "cpu": cpu_seconds() - cpu, **sync.times}
            say(f"resync: {resync['wall']:.1f}s {again.counts}")

            # The watch as `keelwatch inventory watch` runs after `inventory sync`: it resumes from the stored
            # resourceVersion with a new source, whose node and owner caches are empty.
            resumed = watch(store, sync, conn, args.rate, args.watch_seconds)
            say(f"watch, resumed: {resumed}")
            sync.close()
            store.close()
            # The watch from an empty store: it lists first (filling those caches), then watches.
            wstore = Store.open(f"sqlite:///{work / 'watched.db'}")
            wsync = BenchSync(wstore, engine_settings(wstore, source))
            listed = watch(wstore, wsync, conn, args.rate, args.watch_seconds)
            say(f"watch, listed first: {listed}")
            wsync.close()
            wstore.close()

            profile = cProfile.Profile()
            pstore, psync, _, profiled = full_sync(work, "profiled", source, profile=profile)
            psync.close()
            pstore.close()
            printed, top = top_entries(profile)
            say(printed)
            traced: dict[str, int] = {}
            tstore, tsync, _, _ = full_sync(work, "traced", source, traced=traced)
            tsync.close()
            tstore.close()
            say(f"tracemalloc: {traced}")
        finally:
            conn.send(("stop",))
            child.join(30)

    mib = 1024 * 1024
    lines = [
        f"Measured {date.today().isoformat()} on {machine()}; load average {load:.1f} at the start (the machine is "
        f"shared). `.venv/bin/python bench/inventory.py --pods {args.pods} --namespaces {args.namespaces} "
        f"--watch-seconds {args.watch_seconds:g}`: {counts['pods']:,} pods ({counts['containers']:,} containers) "
        f"over {counts['namespaces']} namespaces and {counts['nodes']:,} nodes, {counts['replicasets']:,} ReplicaSets "
        f"and {counts['jobs']:,} Jobs, served by the test API server (tests/inventory/kube_server.py, TLS, "
        f"500 pods a page) in a child process"
        + (f"; the engine pinned to core {engine_cpu}, the server to core {server_cpu}" if engine_cpu is not None
           else "") + ". SQLite store in a temp dir, `resolve = false`.",
        "",
        "| what | figure |",
        "|---|---:|",
        f"| full sync into an empty store (target < 60 s) | {first['wall']:.1f} s |",
        f"| … of which opening the source (kubeconfig, the client's first import) | {first['open']:.1f} s |",
        f"| … of which the snapshot (list pages over HTTP + JSON + container records) | {first['snapshot']:.1f} s |",
        f"| … of which resolve (`resolve = false`: normalise the references) | {first['resolve']:.1f} s |",
        f"| … of which the store (fingerprints, INSERTs, commit) | "
        f"{first['wall'] - first['open'] - first['snapshot'] - first['resolve']:.1f} s |",
        f"| CPU time of the full sync: the engine / the test API server (its own process) | {first['cpu']:.1f} s / "
        f"{first['server_cpu']:.1f} s |",
        f"| peak RSS of the process (before the sync: {rss_before:.0f} MiB) | {rss_peak:.0f} MiB |",
        f"| peak Python allocations (tracemalloc): snapshot / resolve + write | "
        f"{traced['snapshot_peak'] / mib:.0f} / {traced['apply_peak'] / mib:.0f} MiB |",
        f"| the same sync again, every row unchanged (CPU) | {resync['wall']:.1f} s ({resync['cpu']:.1f} s) |",
        *watch_rows(args.rate, args.watch_seconds, resumed, listed),
        "",
        f"Where the full sync's time goes (cProfile, fresh store, {profiled['wall']:.1f} s under the profiler), "
        "top entries by own time:",
        "",
        "| function | own s | cumulative s | calls |",
        "|---|---:|---:|---:|",
        *(f"| `{where}` | {own:.2f} | {cum:.2f} | {calls:,} |" for where, own, cum, calls in top),
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        doc = ROOT / "docs" / "benchmarks.md"
        content = doc.read_text()
        begin, end = "<!-- bench/inventory.py begin -->", "<!-- bench/inventory.py end -->"
        section = f"{begin}\n{text}\n{end}"
        if begin in content:
            content = content[:content.index(begin)] + section + content[content.index(end) + len(end):]
        else:
            content = content.rstrip() + "\n\n## Inventory: 100,000 pods\n\n" + section + "\n"
        doc.write_text(content)


if __name__ == "__main__":
    main()
