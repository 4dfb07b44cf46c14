#!/usr/bin/env python3
"""Alert latency and delivery throughput, with a real webhook receiver on 127.0.0.1.

1. Latency (the issue's path): PyPI.before-2023-01-01.zip, the shared debian12-python image
   scanned, a workload running it, then PyPI.zip: time from the start of the update (sync +
   re-match + raise + deliver, in-process) to the last new alert received, split by phase.
2. Throughput: N messages queued in the outbox (default 5,000) sent to the receiver by one
   sender: messages per second, and with the receiver failing 10 % of requests.

Writes its section of docs/benchmarks.md (between its own markers) unless --no-write.

Usage: bench/alerts.py [--messages N] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
SHARED = Path(os.environ.get("KEELWATCH_SHARED", ROOT.parent / "shared"))
OSV = SHARED / "data" / "feeds" / "osv"

from alerts.receiver import running_receiver  # noqa: E402
from alerts.test_alerts import container, inventory, webhook  # noqa: E402
from keelwatch.alerts.engine import raise_alerts  # noqa: E402
from keelwatch.alerts.outbox import deliver  # noqa: E402
from keelwatch.catalog import CATALOGERS  # noqa: E402
from keelwatch.catalog.walker import catalog_image  # noqa: E402
from keelwatch.config import AlertSettings, FeedSettings  # noqa: E402
from keelwatch.images import open_image  # noqa: E402
from keelwatch.match.rematch import rematch  # noqa: E402
from keelwatch.match.scan import scan_image  # noqa: E402
from keelwatch.store import Store  # noqa: E402
from keelwatch.store import alerts as stored  # noqa: E402
from keelwatch.sync.engine import sync_feed  # noqa: E402


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{platform.node()} ({os.cpu_count()} cores, {cpu}), Python {platform.python_version()}"


def latency(work: Path) -> dict[str, float]:
    store = Store.open(f"sqlite:///{work / 'latency.db'}")
    settings_feed = FeedSettings(name="pypi", kind="osv", url=str(OSV / "PyPI.before-2023-01-01.zip"))
    sync_feed(store, settings_feed, workdir=work / "w")
    opened = open_image(f"oci-archive:{SHARED / 'data/images/debian12-python.oci.tar'}")
    try:
        result = catalog_image(opened, CATALOGERS)
    finally:
        opened.close()
    store.save_catalog(result)
    digest = result.image.manifest_digest
    scan_image(store, digest)
    inventory(store, container("checkout-1", digest), container("checkout-2", digest))
    out: dict[str, float] = {}
    with running_receiver() as receiver:
        settings = AlertSettings(channels=[webhook(receiver)])
        raise_alerts(store, settings)
        deliver(store, settings)
        first = len(receiver.received)
        t0 = time.perf_counter()
        sync_feed(store, FeedSettings(name="pypi", kind="osv", url=str(OSV / "PyPI.zip")), workdir=work / "w")
        t1 = time.perf_counter()
        rematch(store)
        t2 = time.perf_counter()
        queued = raise_alerts(store, settings).queued
        t3 = time.perf_counter()
        deliver(store, settings)
        t4 = time.perf_counter()
        out = {"sync": t1 - t0, "rematch": t2 - t1, "raise": t3 - t2, "deliver": t4 - t3,
               "after_sync": t4 - t1, "total": t4 - t0, "alerts": float(queued),
               "received": float(len(receiver.received) - first)}
    store.close()
    return out


def throughput(work: Path, n: int, fail_rate: float) -> dict[str, float]:
    store = Store.open(f"sqlite:///{work / f'throughput-{fail_rate}.db'}")
    with running_receiver() as receiver:
        settings = AlertSettings(channels=[webhook(receiver)], retry_max=timedelta(seconds=0))
        now = datetime.now(UTC)
        with store.session() as session:
            stored.add_outbox(session, [{
                "idempotency_key": f"bench-{i}", "alert_id": f"a{i}", "channel": "hook", "event": "opened",
                "body": {"id": f"a{i}", "event": "opened", "advisory": f"CVE-2099-{i:05d}", "severity": "high",
                         "idempotency_key": f"bench-{i}", "containers": [], "images": []},
                "created": now, "next_attempt": now, "attempts": 0, "last_error": ""} for i in range(n)])
        receiver.fail_next = int(n * fail_rate)
        clock = [datetime.now(UTC)]
        t0 = time.perf_counter()
        rounds = 0
        while len(receiver.processed) < n and rounds < 20:
            deliver(store, settings, clock=lambda: clock[0])
            clock[0] += timedelta(seconds=5)
            rounds += 1
        elapsed = time.perf_counter() - t0
        done = len(receiver.processed)
    store.close()
    return {"messages": float(n), "delivered": float(done), "seconds": elapsed, "per_second": done / elapsed}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lat = latency(work)
        clean = throughput(work, args.messages, 0.0)
        flaky = throughput(work, args.messages, 0.1)
    lines = [
        f"Measured {date.today().isoformat()} on {machine()}, SQLite, one run.",
        "",
        "| what | figure |",
        "|---|---:|",
        f"| PyPI 2022 → current: sync | {lat['sync']:.2f} s |",
        f"| re-match | {lat['rematch']:.3f} s |",
        f"| raise alerts | {lat['raise']:.3f} s |",
        f"| deliver {lat['received']:.0f} new alerts to the webhook | {lat['deliver']:.3f} s |",
        f"| **update finished → last alert received** (re-match + raise + deliver; target < 2 s) | "
        f"**{lat['after_sync']:.2f} s** |",
        f"| throughput, {clean['messages']:.0f} messages, receiver always OK | {clean['per_second']:.0f} msg/s |",
        f"| throughput, receiver failing 10 % (retried) | {flaky['per_second']:.0f} msg/s "
        f"({flaky['delivered']:.0f}/{flaky['messages']:.0f} delivered) |",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        doc = ROOT / "docs" / "benchmarks.md"
        content = doc.read_text()
        begin, end = "<!-- bench/alerts.py begin -->", "<!-- bench/alerts.py end -->"
        section = f"{begin}\n{text}\n{end}"
        if begin in content:
            content = content[:content.index(begin)] + section + content[content.index(end) + len(end):]
        else:
            content = content.rstrip() + "\n\n## Alerts: latency and delivery\n\n" + section + "\n"
        doc.write_text(content)


if __name__ == "__main__":
    main()
