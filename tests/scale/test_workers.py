"""Several real keelwatch processes on one PostgreSQL behave as one keelwatch.

Real ``worker`` and ``serve`` processes (tests/scale/launcher.py: the real command plus test knobs),
a real registry (Debian's docker-registry, images pushed with skopeo) and a real webhook receiver.
SQLite is one process by design, so these run on PostgreSQL only.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from alerts.receiver import running_receiver  # tests/ is on sys.path
from conftest import free_port
from images.registry_helpers import Registry, push, start_registry
from keelwatch.store import Store, leases
from keelwatch.store import alerts as stored_alerts
from keelwatch.store.tables import AlertAttemptRow, Base, ImageRow, ImageScanRow

pytestmark = [pytest.mark.postgres, pytest.mark.datasets, pytest.mark.registry]

LAUNCHER = Path(__file__).with_name("launcher.py")
TESTS = LAUNCHER.parent.parent
IMAGES = ("debian12-python", "debian11-openssl", "go-tools", "node-app")
TTL = 2.0  # seconds: the lease TTL the processes run with


@pytest.fixture
def db(pg_url: str) -> Iterator[Store]:
    store = Store.open(pg_url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with store.session() as session:
        session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module")
def registry(images_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, dict[str, str]]]:
    """A registry holding each image under three tags; the manifest digest of each image."""
    from keelwatch.images.registry import resolve_tag
    from keelwatch.images.source import OpenOptions

    reg = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        digests = {}
        for name in IMAGES:
            for tag in ("1", "2", "stable"):
                push(reg, images_dir / f"{name}.oci.tar", name, tag)
            digests[name] = resolve_tag(f"{reg.host}/{name}:1", OpenOptions(insecure=True))[0]
        yield reg, digests
    finally:
        reg.stop()


class Processes:
    """keelwatch processes started by a test; whatever is left is killed at the end."""

    def __init__(self, tmp_path: Path, config: Path) -> None:
        self.tmp_path, self.config = tmp_path, config
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, *args: str, **knobs: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path]),
               "KEELWATCH_TEST_LEASE_TTL": str(TTL), **knobs}
        log = self.tmp_path / f"process-{len(self.started)}.log"
        with log.open("wb") as err:
            process = subprocess.Popen([sys.executable, str(LAUNCHER), "--config", str(self.config), "-v", *args],
                                       stdout=subprocess.DEVNULL, stderr=err, env=env)
        self.started.append((process, log))
        return process

    def log(self, process: subprocess.Popen[bytes]) -> str:
        return next(log for p, log in self.started if p is process).read_text(errors="replace")

    def stop_all(self) -> None:
        """SIGTERM every live process; each must exit 0 (graceful) without a traceback."""
        live = [p for p, _ in self.started if p.poll() is None]
        for process in live:
            process.send_signal(signal.SIGTERM)
        for process in live:
            process.wait(60)
            assert process.returncode == 0, self.log(process)[-3000:]
            assert "Traceback" not in self.log(process), self.log(process)[-3000:]

    def kill_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[[Path], Processes]]:
    made: list[Processes] = []

    def make(config: Path) -> Processes:
        made.append(Processes(tmp_path, config))
        return made[-1]

    yield make
    for p in made:
        p.kill_all()


def write_config(tmp_path: Path, store: Store, extra: str = "", *, registry: Registry | None = None) -> Path:
    url = store.url.render_as_string(hide_password=False)
    config = tmp_path / "keelwatch.toml"
    scan = f'[scan]\ninsecure_registries = ["{registry.host}"]\n\n' if registry else ""
    config.write_text(f'[store]\nurl = "{url}"\n\n{scan}'
                      '[service]\nscan_interval = "0.5s"\ndeliver_interval = "0.2s"\ninventory_interval = "1h"\n'
                      f'scans_per_turn = 50\nlease_ttl = "{TTL}s"\n\n{extra}')
    return config


def workloads(tmp_path: Path, reg: Registry, digests: dict[str, str], names: tuple[str, ...], copies: int) -> str:
    """A static inventory: every image run by ``copies`` workloads under its three tags; its config."""
    path = tmp_path / "inventory.csv"
    lines = ["cluster,namespace,workload_kind,workload,pod,container,image,digest,owner"]
    for name in names:
        for i in range(copies):
            tag = ("1", "2", "stable")[i % 3]
            lines.append(f"eu-{i % 2},ns{i % 4},Deployment,{name}-{i},{name}-{i}-x,app,{reg.host}/{name}:{tag},"
                         f"{digests[name]},team-{i % 3}")
    path.write_text("\n".join(lines) + "\n")
    return f'[[inventory.sources]]\nname = "cmdb"\nkind = "static"\npath = "{path}"\n'


def sync_inventory(config: Path) -> None:
    from keelwatch.config import load_settings
    from keelwatch.inventory.sync import InventorySync

    settings = load_settings(config)
    with Store(settings) as store:
        engine = InventorySync(store, settings)
        try:
            [source] = engine.sources()
            assert engine.sync_source(source).status == "ok"
        finally:
            engine.close()


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def jobs(store: Store) -> dict[str, Any]:
    with store.session(write=False) as session:
        return {row.digest: row for row in leases.scan_jobs(session)}


def catalog_runs(path: Path) -> collections.Counter[str]:
    return collections.Counter(line.split()[1] for line in path.read_text().splitlines()) if path.exists() \
        else collections.Counter()


def test_three_workers_and_a_server_catalog_every_shared_digest_once(db: Store, registry: Any, tmp_path: Path,
                                                                     processes: Any) -> None:
    reg, digests = registry
    config = write_config(tmp_path, db, workloads(tmp_path, reg, digests, IMAGES, copies=12), registry=reg)
    sync_inventory(config)  # 48 containers, 12 tags/workloads per digest, 4 digests
    log = tmp_path / "catalogs.log"
    procs = processes(config)
    for _ in range(3):
        procs.start("worker", "--role", "scan", KEELWATCH_TEST_CATALOG_LOG=str(log))
    procs.start("serve", "--port", str(free_port()), KEELWATCH_TEST_CATALOG_LOG=str(log))  # every loop
    want = set(digests.values())
    wait_for(lambda: {d for d, j in jobs(db).items() if j.state == "done"} == want, 300, "every digest scanned")
    time.sleep(2)  # a duplicate would show up now
    procs.stop_all()
    runs = catalog_runs(log)
    assert set(runs) == want and set(runs.values()) == {1}, runs  # each digest cataloged exactly once
    assert {j.attempts for j in jobs(db).values()} == {1} and len(jobs(db)) == len(want)
    with db.session(write=False) as session:
        assert session.execute(select(func.count()).select_from(ImageRow)).scalar_one() == len(want)
        assert session.execute(select(func.count()).select_from(ImageScanRow)).scalar_one() == len(want)


def test_a_worker_killed_mid_scan_loses_its_lease_and_another_finishes(db: Store, registry: Any, tmp_path: Path,
                                                                       processes: Any) -> None:
    reg, digests = registry
    config = write_config(tmp_path, db, workloads(tmp_path, reg, digests, ("debian12-python",), copies=3),
                          registry=reg)
    sync_inventory(config)
    digest = digests["debian12-python"]
    log = tmp_path / "catalogs.log"
    procs = processes(config)
    doomed = procs.start("worker", "--role", "scan", KEELWATCH_TEST_SCAN_HOLD="120",
                         KEELWATCH_TEST_CATALOG_LOG=str(log))
    wait_for(lambda: "holding" in procs.log(doomed), 120, "the first worker to have cataloged")
    job = jobs(db)[digest]
    assert job.state == "running" and f":{doomed.pid}:" in job.holder
    survivor = procs.start("worker", "--role", "scan", KEELWATCH_TEST_CATALOG_LOG=str(log))
    time.sleep(1.0)  # the survivor is up and finds the job leased
    assert jobs(db)[digest].state == "running" and f":{doomed.pid}:" in jobs(db)[digest].holder
    doomed.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    doomed.wait()
    wait_for(lambda: jobs(db)[digest].state == "done", 60, "the survivor to finish the job")
    took = time.monotonic() - killed
    procs.stop_all()
    job = jobs(db)[digest]
    assert job.attempts == 2 and job.holder is None and job.error == ""
    assert took < TTL + 20, took  # the lease ran out within its TTL; matching did the rest
    assert catalog_runs(log) == {digest: 1}  # the survivor reused the killed worker's committed catalog
    with db.session(write=False) as session:
        assert session.execute(select(func.count()).select_from(ImageRow)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(ImageScanRow)).scalar_one() == 1
    assert survivor.returncode == 0


def test_two_senders_racing_on_the_outbox_deliver_each_key_once(db: Store, tmp_path: Path, processes: Any) -> None:
    with running_receiver() as receiver:
        receiver.fail_next = 5  # the receiver fails, then recovers: retried, not lost
        config = write_config(tmp_path, db, '[alerts]\nmax_attempts = 30\nretry_max = "1s"\n\n'
                              f'[[alerts.channels]]\nname = "hook"\nkind = "webhook"\nurl = "{receiver.url}"\n'
                              f'secret = "{receiver.secret}"\ntimeout = "5s"\n')
        now = datetime.now(UTC)
        rows = [{"idempotency_key": f"k{i}", "alert_id": None, "channel": "hook", "event": "digest",
                 "body": {"id": f"k{i}", "event": "digest", "idempotency_key": f"k{i}"}, "created": now,
                 "next_attempt": now, "attempts": 0, "last_error": ""} for i in range(300)]
        with db.session() as session:
            assert stored_alerts.add_outbox(session, rows) == 300
        procs = processes(config)
        for _ in range(2):
            procs.start("worker", "--role", "deliver")
        wait_for(lambda: len(receiver.processed) == 300, 120, "every message delivered")
        time.sleep(1)
        procs.stop_all()
        keys = receiver.keys()
    assert len(keys) == len(set(keys)) == 300  # none delivered twice
    with db.session(write=False) as session:
        ok = session.execute(select(AlertAttemptRow.outbox_id, AlertAttemptRow.sender)
                             .where(AlertAttemptRow.ok)).all()
        counts = stored_alerts.outbox_counts(session)
    assert len(ok) == 300 and len({o for o, _ in ok}) == 300
    assert len({sender for _, sender in ok}) == 2  # both senders delivered: they shared the outbox
    assert counts == {"pending": 0, "delivered": 300, "failed": 0}


def test_a_singleton_loop_runs_in_one_process_at_a_time_and_is_taken_over(db: Store, tmp_path: Path,
                                                                          processes: Any) -> None:
    probe = tmp_path / "probe.log"
    procs = processes(write_config(tmp_path, db))
    workers = [procs.start("worker", "--role", "snapshot", KEELWATCH_TEST_PROBE=str(probe)) for _ in range(2)]

    def runs() -> list[tuple[int, float, float]]:
        if not probe.exists():
            return []
        return sorted(((int(p), float(s), float(e)) for p, s, e in
                       (line.split() for line in probe.read_text().splitlines())), key=lambda r: r[1])

    wait_for(lambda: len(runs()) >= 12, 60, "a dozen probe runs")
    # Kill whichever process holds the lease right now (mid-run, its lease unreleased).
    holder = wait_for(lambda: _probe_holder(db), 10, "a holder")
    [doomed] = [w for w in workers if f":{w.pid}:" in holder]
    [survivor] = [w for w in workers if w is not doomed]
    doomed.send_signal(signal.SIGKILL)
    killed = time.time()
    doomed.wait()
    wait_for(lambda: any(p == survivor.pid and s > killed for p, s, _ in runs()), 30, "the survivor's run")
    time.sleep(1)
    procs.stop_all()
    done = runs()
    for (_, _, end), (_, start, _) in zip(done, done[1:], strict=False):
        assert start >= end + 0.09, done  # never two at once, and the 0.1 s cadence held between processes
    first_after = min(s for p, s, _ in done if s > killed)
    assert first_after - killed < TTL + 2, first_after - killed  # taken over within the lease TTL
    with db.session(write=False) as session:
        [row] = [lease for lease in leases.list_leases(session) if lease.name == "loop:probe"]
    assert row.takeovers >= 1


def _probe_holder(store: Store) -> str | None:
    with store.session(write=False) as session:
        row = next((lease for lease in leases.list_leases(session) if lease.name == "loop:probe"), None)
    return row.holder if row else None
