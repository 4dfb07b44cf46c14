#!/usr/bin/env python3
"""Posture over a large fleet: 100,000 containers running 10,000 images (target: < 200 ms a query).

The fleet is written straight into the store's tables (building it through scans would take hours
and measure the scanner, not posture): 10,000 image digests with their stored findings — advisory
ids, severities, KEV and EPSS drawn from the shared PyPI feed's real advisories — and their
severity counts, and 100,000 live containers over 50 namespaces, 5 clusters and 5,000 workloads
(a few images run widely, most run in a few pods, as in real fleets). Then, timed (median of
--runs): `posture --by workload`, `--by namespace`, `--by cluster`, `--by owner`, `--top`, `--plan`.

Writes its section of docs/benchmarks.md (between its markers) unless --no-write.

Usage: bench/posture.py [--images 10000] [--containers 100000] [--runs 3] [--pg URL] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KEELWATCH_SHARED", ROOT.parent / "shared"))

from sqlalchemy import insert  # noqa: E402

from keelwatch.feeds.osv import parse_zip  # noqa: E402
from keelwatch.model import Advisory, Finding, Package  # noqa: E402
from keelwatch.posture import compute  # noqa: E402
from keelwatch.store import Store  # noqa: E402
from keelwatch.store import findings as stored_findings  # noqa: E402
from keelwatch.store.findings import FINDINGS, StoredFinding, finding_key, finding_row  # noqa: E402
from keelwatch.store.tables import ContainerRow  # noqa: E402

SEVERITIES = ("critical", "high", "medium", "low", "unknown")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{platform.node()} ({os.cpu_count()} cores, {cpu}), Python {platform.python_version()}"


def build(store: Store, n_images: int, n_containers: int, rng: random.Random) -> None:
    advisories = [a for a in parse_zip(SHARED / "data/feeds/osv/PyPI.zip", source="pypi") if isinstance(a, Advisory)]
    now = datetime.now(UTC)
    digests = [f"sha256:{rng.getrandbits(256):064x}" for _ in range(n_images)]
    with store.session() as session:
        batch: list[dict[str, object]] = []
        for digest in digests:
            for advisory in rng.sample(advisories, rng.randint(5, 60)):
                affected = advisory.affected[0] if advisory.affected else None
                name = affected.name if affected else "pkg"
                package = Package(ecosystem="PyPI", name=name, version="1.0", kind="lang",
                                  purl=f"pkg:pypi/{name.lower()}@1.0", location=f"site-packages/{name}")
                cve = next((a for a in advisory.aliases if a.startswith("CVE-")), "")
                finding = Finding(id=advisory.id, package=package, installed_version="1.0",
                                  advisory_ids=(advisory.id,), aliases=(cve,) if cve else (),
                                  severity=rng.choices(SEVERITIES, (2, 10, 15, 5, 8))[0],
                                  fixed_versions=("2.0",) if rng.random() < 0.7 else (),
                                  fix_available=rng.random() < 0.7, kev=rng.random() < 0.02,
                                  epss=round(rng.random() ** 4, 4))
                key = finding_key(digest, advisory.id, package.id)
                batch.append(finding_row(StoredFinding(key, digest, finding, now, now, now)))
            if len(batch) > 20_000:
                session.execute(insert(FINDINGS), batch)
                batch.clear()
        if batch:
            session.execute(insert(FINDINGS), batch)
        stored_findings.refresh_counts(session, digests, sync=1, now=now)
        # A long tail: the first images run widely, most run in a pod or two.
        weights = [1.0 / (i + 1) ** 0.8 for i in range(n_images)]
        rows = []
        for i in range(n_containers):
            namespace = f"ns-{i % 50:02d}"
            workload = f"app-{i % 5000:04d}"
            digest = digests[i % n_images] if i < n_images else rng.choices(digests, weights)[0]
            rows.append({"key": f"k{i}", "source": "bench", "cluster": f"cluster-{i % 5}", "namespace": namespace,
                         "workload_kind": "Deployment", "workload": workload, "pod": f"{workload}-{i}",
                         "instance": f"uid-{i}", "container": "app", "container_type": "container",
                         "image": f"registry.example/{workload}:1", "reference": f"registry.example/{workload}:1",
                         "image_id": digest, "digest": digest, "index_digest": None, "tag_digest": None,
                         "platform": "linux/amd64", "node": f"node-{i % 300}", "state": "running", "labels": {},
                         "annotations": {}, "owner": f"team-{i % 40}", "team": "", "environment": "prod",
                         "resolution_error": None, "problem": None, "fingerprint": "x", "first_seen": now,
                         "last_seen": now, "ended_at": None})
            if len(rows) >= 20_000:
                session.execute(insert(ContainerRow), rows)
                rows.clear()
        if rows:
            session.execute(insert(ContainerRow), rows)


def timed(store: Store, runs: int) -> dict[str, float]:
    out: dict[str, float] = {}
    # The --by views read SQL aggregates (compute.posture_rows); --top and --plan read every finding.
    views = {f"--by {by}": (lambda s, by=by: compute.posture_rows(s, by))
             for by in ("workload", "namespace", "cluster", "owner", "image")}
    views["--top"] = lambda s: compute.top_exposures(compute.fleet(s))
    views["--plan"] = lambda s: compute.remediation_plan(compute.fleet(s))
    for name, view in views.items():
        samples = []
        for _ in range(runs if name.startswith("--by") else 1):
            started = time.perf_counter()
            with store.session(write=False) as session:
                view(session)
            samples.append(time.perf_counter() - started)
        out[name] = statistics.median(samples)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--containers", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg", help="a PostgreSQL URL to run on as well (its tables must be empty)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        urls = {"SQLite": f"sqlite:///{tmp}/posture.db"}
        if args.pg:
            urls["PostgreSQL"] = args.pg
        for engine, url in urls.items():
            store = Store.open(url)
            started = time.perf_counter()
            build(store, args.images, args.containers, random.Random(7))
            print(f"{engine}: fleet written in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            results[engine] = timed(store, args.runs)
            store.close()
    engines = list(results)
    lines = [f"Measured {date.today().isoformat()} on {machine()}; {args.containers:,} containers, "
             f"{args.images:,} images, median of {args.runs} (each includes reading the fleet).", "",
             "| query | " + " | ".join(engines) + " |", "|---|" + "---:|" * len(engines)]
    for view in results[engines[0]]:
        lines.append(f"| `posture {view}` | " + " | ".join(f"{results[e][view] * 1000:.0f} ms" for e in engines) + " |")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        doc = ROOT / "docs" / "benchmarks.md"
        content = doc.read_text()
        begin, end = "<!-- bench/posture.py begin -->", "<!-- bench/posture.py end -->"
        section = f"{begin}\n{text}\n{end}"
        if begin in content:
            content = content[:content.index(begin)] + section + content[content.index(end) + len(end):]
        else:
            content = content.rstrip() + "\n\n## Posture over 100,000 containers\n\n" + section + "\n"
        doc.write_text(content)


if __name__ == "__main__":
    main()
