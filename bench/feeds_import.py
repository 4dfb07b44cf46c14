#!/usr/bin/env python3
"""Time syncing every shared OSV zip into a fresh store, and what a sync costs after that.

Each of ``$KEELWATCH_SHARED/data/feeds/osv/*.zip`` is one ``[[feeds]]`` table (kind osv). Measured:

- ``keelwatch --config FILE db update`` into an empty SQLite file: a new process, as users run it;
- the same sync in-process, split into parsing (the OSV feed alone) and the rest (compare, write,
  journal, commit);
- a second ``db update`` (every feed answers "unchanged");
- the real PyPI delta (``PyPI.before-2023-01-01.zip`` → ``PyPI.zip``: 474 added, 27 deleted, 19 changed);
- ``db export`` and ``db import`` of the result into an empty store;
- with ``--pg URL`` (a server URL; a throwaway database is created and dropped), the in-process
  sync on PostgreSQL too.

Medians of N runs. Writes its section of docs/benchmarks.md (between its own markers).

Usage: bench/feeds_import.py [--runs N] [--pg postgresql://postgres@127.0.0.1/postgres] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KEELWATCH_SHARED", ROOT.parent / "shared"))
OSV = SHARED / "data" / "feeds" / "osv"
BIN = Path(sys.executable).parent
MARK_BEGIN, MARK_END = "<!-- bench/feeds_import.py begin -->", "<!-- bench/feeds_import.py end -->"
HEADING = "## Knowledge base: syncing the shared OSV feeds"


def feeds() -> list[tuple[str, Path]]:
    zips = sorted(OSV.glob("*.zip"))
    if not zips:
        raise SystemExit(f"no OSV zips under {OSV} (set KEELWATCH_SHARED)")
    return [(z.name.removesuffix(".zip").lower().replace(".", "-"), z) for z in zips]


def config(path: Path, url: str, chosen: list[tuple[str, Path]]) -> Path:
    lines = ["[store]", f'url = "{url}"', ""]
    for name, zip_path in chosen:
        lines += ["[[feeds]]", f'name = "{name}"', 'kind = "osv"', f'url = "{zip_path}"', ""]
    path.write_text("\n".join(lines))
    return path


def cli(cfg: Path, *args: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELWATCH_") or k == "KEELWATCH_SHARED"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed program runs from bytecode
    start = time.perf_counter()
    out = subprocess.run([str(BIN / "keelwatch"), "-q", "--config", str(cfg), *args], capture_output=True,
                         text=True, env=env)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"keelwatch {' '.join(args)} failed:\n{out.stderr}")
    return elapsed


def median(runs: int, one: Callable[[], float]) -> float:
    return statistics.median(one() for _ in range(runs))


def in_process(url: str, chosen: list[tuple[str, Path]], work: Path) -> tuple[float, float, int]:
    """(total s, parse-only s, records) of one sync of every feed into the empty store at ``url``."""
    from keelwatch import feeds as registry
    from keelwatch.config import FeedSettings, Settings, StoreSettings
    from keelwatch.feeds.base import Spool
    from keelwatch.store import Store
    from keelwatch.sync import sync_all

    parse = 0.0
    records = 0
    for name, zip_path in chosen:
        start = time.perf_counter()
        records += sum(1 for _ in registry.get("osv").parse(Spool(zip_path, ""), source=name))
        parse += time.perf_counter() - start
    settings = Settings(store=StoreSettings(url=url), feeds=[FeedSettings(name, "osv", str(z)) for name, z in chosen])
    with Store(settings) as store:
        start = time.perf_counter()
        reports = sync_all(store, settings, workdir=work)
        total = time.perf_counter() - start
    assert all(r.status == "ok" for r in reports), [r for r in reports if r.status != "ok"]
    return total, parse, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg", help="PostgreSQL server URL: also time the in-process sync there")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    chosen = feeds()
    tmp = Path(tempfile.mkdtemp(prefix="kw-bench-feeds-"))
    counter = iter(range(1_000_000))

    def fresh_sqlite() -> str:
        return f"sqlite:///{tmp / f'kb-{next(counter)}.db'}"

    # keelwatch db update, a new process, into an empty store (the figure issue 3 asks about).
    cli(config(tmp / "warm.toml", fresh_sqlite(), chosen), "db", "update")  # bytecode and page cache
    results: dict[str, float] = {}
    results["cli"] = median(args.runs, lambda: cli(config(tmp / "c.toml", fresh_sqlite(), chosen), "db", "update"))
    cfg = config(tmp / "again.toml", fresh_sqlite(), chosen)
    cli(cfg, "db", "update")
    results["unchanged"] = median(args.runs, lambda: cli(cfg, "db", "update"))
    results["export"] = median(args.runs, lambda: cli(cfg, "db", "export", str(tmp / "kb.zip")))
    size = (tmp / "kb.zip").stat().st_size
    results["import"] = median(args.runs, lambda: cli(config(tmp / "i.toml", fresh_sqlite(), []), "db", "import",
                                                      str(tmp / "kb.zip")))

    # The PyPI delta, in a process of its own (what an hourly `db update` pays for the change).
    def delta() -> float:
        url = fresh_sqlite()
        pypi = tmp / "PyPI.zip"
        pypi.write_bytes((OSV / "PyPI.before-2023-01-01.zip").read_bytes())
        cfg = config(tmp / "d.toml", url, [("pypi", pypi)])
        cli(cfg, "db", "update")
        pypi.write_bytes((OSV / "PyPI.zip").read_bytes())
        return cli(cfg, "db", "update")

    results["delta"] = median(args.runs, delta)

    sqlite_runs = [in_process(fresh_sqlite(), chosen, tmp / "w") for _ in range(args.runs)]
    results["sqlite_total"] = statistics.median(r[0] for r in sqlite_runs)
    results["parse"] = statistics.median(r[1] for r in sqlite_runs)
    records = sqlite_runs[0][2]
    if args.pg:
        results["pg_total"] = statistics.median(pg_run(args.pg, chosen, tmp) for _ in range(args.runs))

    for key, value in results.items():
        print(f"{key:14} {value:7.2f} s", flush=True)
    table = render(results, records, len(chosen), size, args.runs)
    print(table)
    if not args.no_write:
        write(table)


def pg_run(server: str, chosen: list[tuple[str, Path]], tmp: Path) -> float:
    import psycopg
    from sqlalchemy import make_url

    base = make_url(server).set(drivername="postgresql+psycopg")
    name = f"keelwatch_bench_{secrets.token_hex(4)}"
    admin: dict[str, Any] = dict(host=base.host or "127.0.0.1", port=base.port or 5432, user=base.username,
                                 password=base.password, dbname=base.database or "postgres", autocommit=True)
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        return in_process(base.set(database=name).render_as_string(hide_password=False), chosen, tmp / "w")[0]
    finally:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def render(r: dict[str, float], records: int, count: int, size: int, runs: int) -> str:
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    pg = f"| sync of all {count} feeds in-process, PostgreSQL (local server) | {r['pg_total']:.2f} |\n" \
        if "pg_total" in r else ""
    return (
        f"{MARK_BEGIN}\n"
        f"Measured {date.today().isoformat()} on {platform.node()} ({os.cpu_count()} cores, {cpu}), "
        f"Python {platform.python_version()}; median of {runs} runs. The {count} zips of "
        f"`data/feeds/osv/` ({records:,} records, each zip one `[[feeds]]` table of kind `osv`) into an empty "
        "SQLite file; a new `keelwatch` process per command.\n\n"
        "| what | seconds |\n|---|---:|\n"
        f"| `keelwatch db update`, all {count} feeds, empty store (process start to exit) | {r['cli']:.2f} |\n"
        f"| the same sync in-process | {r['sqlite_total']:.2f} |\n"
        f"| … of which parsing the zips (the OSV feed alone, no database) | {r['parse']:.2f} |\n"
        f"{pg}"
        f"| `keelwatch db update` again (every feed unchanged) | {r['unchanged']:.2f} |\n"
        f"| `keelwatch db update` of the PyPI delta (before-2023 → 2024: 474 added, 27 deleted, 19 changed) "
        f"| {r['delta']:.2f} |\n"
        f"| `keelwatch db export` ({size / 1e6:.1f} MB file) | {r['export']:.2f} |\n"
        f"| `keelwatch db import` of it into an empty store | {r['import']:.2f} |\n"
        f"{MARK_END}"
    )


def write(table: str) -> None:
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if MARK_BEGIN in text:
        head, _, rest = text.partition(MARK_BEGIN)
        _, _, tail = rest.partition(MARK_END)
        text = head + table + tail
    else:
        text = text.rstrip("\n") + f"\n\n{HEADING}\n\n{table}\n"
    doc.write_text(text)
    print(f"wrote {doc}")


if __name__ == "__main__":
    main()
