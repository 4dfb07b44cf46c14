"""The service's loops doing the real work together: feeds → re-match → alerts → delivery, the
inventory and posture snapshots, as `keelwatch serve` runs them (one process, SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from keelwatch.config import load_settings
from keelwatch.service.loops import LOOPS, LoopRunner
from keelwatch.store import Store
from keelwatch.store.tables import PostureSnapshotRow
from match.test_rematch import store_image  # tests/ is on sys.path

pytestmark = pytest.mark.datasets


def test_the_loops_take_a_new_disclosure_to_the_channel(store: Store, store_url: str, feeds_dir: Path,
                                                        images_dir: Path, tmp_path: Path) -> None:
    from keelwatch.config import FeedSettings
    from keelwatch.match.scan import scan_image
    from keelwatch.sync.engine import sync_feed

    pypi = tmp_path / "PyPI.zip"
    pypi.write_bytes((feeds_dir / "osv/PyPI.before-2023-01-01.zip").read_bytes())
    digest = store_image(store, images_dir)
    inventory = tmp_path / "inventory.csv"
    inventory.write_text("cluster,namespace,workload_kind,workload,pod,container,image,digest,owner\n"
                         f"eu-1,shop,Deployment,checkout,checkout-1,app,registry.example/shop:1.4,{digest},payments\n")
    alerts = tmp_path / "alerts.jsonl"
    config = tmp_path / "keelwatch.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n\n'
                      f'[service]\nfeed_interval = "1s"\ninventory_interval = "1s"\ndeliver_interval = "0.2s"\n\n'
                      f'[[feeds]]\nname = "osv-pypi"\nkind = "osv"\nurl = "{pypi}"\n\n'
                      f'[[inventory.sources]]\nname = "cmdb"\nkind = "static"\npath = "{inventory}"\n\n'
                      f'[[alerts.channels]]\nname = "log"\nkind = "jsonl"\npath = "{alerts}"\n')
    settings = load_settings(config)
    sync_feed(store, FeedSettings(name="osv-pypi", kind="osv", url=str(pypi)), workdir=tmp_path / "w")
    scan_image(store, digest)

    def messages() -> list[dict[str, Any]]:
        return [json.loads(x) for x in alerts.read_text().splitlines()] if alerts.exists() else []

    def wait_for(check: Any, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out; runner state: {runner.status()}")

    loops = [loop for loop in LOOPS if loop.name != "posture-snapshot"]
    runner = LoopRunner(store, settings, loops)
    runner.start()
    try:
        wait_for(lambda: messages())  # the inventory loop raised alerts, the deliver loop sent them
        first = {m["advisory"] for m in messages()}
        # A new disclosure: the feed file is replaced, the feeds loop syncs, re-matches, raises.
        pypi.write_bytes((feeds_dir / "osv/PyPI.zip").read_bytes())
        wait_for(lambda: {m["advisory"] for m in messages()} - first)
        new = [m for m in messages() if m["advisory"] not in first]
        assert all(m["event"] == "opened" and m["containers"][0]["workload"] == "checkout" for m in new)
        assert all(state["failures"] == 0 for state in runner.status().values()), runner.status()
    finally:
        assert runner.stop(timeout=60)
    keys = [m["idempotency_key"] for m in messages()]
    assert len(keys) == len(set(keys))  # never twice


def test_the_snapshot_loop_records_posture(store: Store) -> None:
    from keelwatch.config import Settings

    [loop] = [loop for loop in LOOPS if loop.name == "posture-snapshot"]
    runner = LoopRunner(store, Settings(), [type(loop)(loop.name, loop.interval, loop.run,
                                                       initial_delay=timedelta(0))])
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not runner.status()[loop.name]["runs"]:
            time.sleep(0.1)
    finally:
        runner.stop(timeout=30)
    with store.session(write=False) as session:
        rows = session.query(PostureSnapshotRow).all()
    assert [r.grouping for r in rows] == ["fleet"]  # an empty fleet still has its row
