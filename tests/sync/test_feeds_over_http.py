"""Every feed kind served over HTTP by a real server on 127.0.0.1, synced by `keelwatch db update`.

The issue's end-to-end case: the shared OSV zip, the KEV catalog, EPSS (the real head and tail of
one daily file, gzipped), an NVD API page, the Debian tracker and Alpine secdb samples; then a
newer PyPI snapshot: the journal says exactly what changed, and every other feed answers 304.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# tests/ holds no __init__.py: pytest puts it on sys.path, and tests/feeds is the package "feeds".
from feeds.httpserver import Route, TestServer  # type: ignore[import-not-found]
from keelwatch import feeds
from keelwatch.feeds.base import Spool
from keelwatch.model import Advisory, Exploitability

from .feeds import osv_records

SAMPLES = Path(__file__).resolve().parent.parent / "feeds" / "samples"


@pytest.fixture
def server() -> Iterator[TestServer]:
    running = TestServer()
    yield running
    running.close()


def parsed(kind: str, path: Path, options: dict[str, Any] | None = None) -> tuple[set[str], set[str]]:
    """(advisory ids, CVEs with exploitability) the feed itself reads from the local file."""
    records = list(feeds.get(kind, options).parse(Spool(path, ""), source=kind))
    return ({r.id for r in records if isinstance(r, Advisory)},
            {r.cve for r in records if isinstance(r, Exploitability)})


def keelwatch(config: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELWATCH_") or k == "KEELWATCH_SHARED"}
    env["KEELWATCH_HOME"] = str(config.parent / "home")
    out = subprocess.run([sys.executable, "-m", "keelwatch", "--config", str(config), *args, "--format", "json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_db_update_fills_the_store_from_every_feed_kind(store: Any, store_url: str, feeds_dir: Path,
                                                        server: TestServer, tmp_path: Path) -> None:
    epss = tmp_path / "epss.csv.gz"
    epss.write_bytes(gzip.compress((feeds_dir / "epss/epss_scores-current.2026-09-29.head.csv").read_bytes()
                                   + (feeds_dir / "epss/epss_scores-current.2026-09-29.tail.csv").read_bytes()))
    files = {
        "/osv/PyPI/all.zip": feeds_dir / "osv/PyPI.before-2023-01-01.zip",
        "/kev.json": feeds_dir / "kev/known_exploited_vulnerabilities.json",
        "/epss_scores-current.csv.gz": epss,
        "/nvd/page.json": feeds_dir / "nvd/page-sample.json",
        "/debian/tracker.json": SAMPLES / "debian-tracker/tracker.json",
        "/alpine/v3.11/main.yaml": feeds_dir / "alpine-secdb/v3.11/main.yaml",
    }
    for path, source in files.items():
        server.routes[path] = Route(source.read_bytes(), etag=f'"{source.name}-1"')
    feeds_toml = [("osv-pypi", "osv", "/osv/PyPI/all.zip"), ("kev", "kev", "/kev.json"),
                  ("epss", "epss", "/epss_scores-current.csv.gz"), ("nvd", "nvd", "/nvd/page.json"),
                  ("debian", "debian-tracker", "/debian/tracker.json"),
                  ("alpine", "alpine-secdb", "/alpine/v3.11/main.yaml")]
    lines = ["[store]", f'url = "{store_url}"', ""]
    for name, kind, path in feeds_toml:
        lines += ["[[feeds]]", f'name = "{name}"', f'kind = "{kind}"', f'url = "{server.url(path)}"',
                  "retries = 0", ""]
    config = tmp_path / "keelwatch.toml"
    config.write_text("\n".join(lines))

    reports = {r["feed"]: r for r in keelwatch(config, "db", "update")}
    assert {name: r["status"] for name, r in reports.items()} == {name: "ok" for name, _, _ in feeds_toml}
    expected = {name: parsed(kind, files[path]) for name, kind, path in feeds_toml}
    status = {s["name"]: s for s in keelwatch(config, "db", "status")}
    for name, (advisories, cves) in expected.items():
        assert (status[name]["advisories"], status[name]["exploitability"]) == (len(advisories), len(cves)), name
    assert len(expected["osv-pypi"][0]) == 2214 and len(expected["epss"][1]) == 296 + 133
    kev = json.loads(files["/kev.json"].read_bytes())["vulnerabilities"]
    assert status["kev"]["exploitability"] == len({v["cveID"] for v in kev})
    assert all(len(expected[name][0]) > 0 for name in ("nvd", "debian", "alpine"))
    journal = Counter((e["source"], e["change"]) for e in keelwatch(config, "db", "changes", "--since", "0"))
    assert journal[("osv-pypi", "added")] == 2214
    assert journal[("kev", "exploitability")] == status["kev"]["exploitability"]
    first = max(s["last_sync"] for s in status.values())

    # The PyPI feed publishes its newer snapshot; nothing else moved (each answers 304 to its ETag).
    newer = feeds_dir / "osv/PyPI.zip"
    server.routes["/osv/PyPI/all.zip"] = Route(newer.read_bytes(), etag='"PyPI.zip-2"')
    seen = len(server.seen)
    reports = {r["feed"]: r for r in keelwatch(config, "db", "update")}
    assert {n: r["status"] for n, r in reports.items() if n != "osv-pypi"} == {
        n: "unchanged" for n, _, _ in feeds_toml if n != "osv-pypi"}
    asked = {s.path: s.headers.get("if-none-match") for s in server.seen[seen:]}
    assert asked["/kev.json"] == '"known_exploited_vulnerabilities.json-1"'
    old, new = osv_records(files["/osv/PyPI/all.zip"]), osv_records(newer)
    pypi = reports["osv-pypi"]
    assert (pypi["added"], pypi["deleted"]) == (len(set(new) - set(old)), len(set(old) - set(new)))
    assert pypi["changed"] + pypi["withdrawn"] == sum(old[i] != new[i] for i in set(old) & set(new))
    changes = keelwatch(config, "db", "changes", "--since", str(first))
    assert {c["source"] for c in changes} == {"osv-pypi"} and len(changes) == 474 + 27 + 19
