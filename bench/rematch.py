#!/usr/bin/env python3
"""Time re-matching a synthetic fleet when the feeds change (the delta, then everything), and one image's scan.

The fleet (issue 8, "Speed"): N images (default 10,000) of about P packages each (default 300), drawn
from real package universes with a popularity skew, so that most images share the common packages:

- Debian bookworm's binary packages (``/var/lib/apt/lists/*bookworm*_Packages*``: name, version,
  ``Source:`` name and version), as dpkg packages of ecosystem ``Debian:12``. Every image has the
  ``required`` packages, most the ``important`` ones, then extras by a Zipf draw over the rest
  (sources that Debian's advisories name first, most-named first: popular packages are the ones
  with advisories). Half the images are "patched": a package that bookworm-security or
  bookworm-updates carries has that newer version there.
- PyPI and npm names from the shared OSV feeds (the most downloaded PyPI projects first, the rest
  in a seeded shuffle), at versions taken from those advisories' ``versions`` lists and range
  events (newest most often), so that matches really happen.

Then, into a fresh store (a temporary SQLite file, or a throwaway database on the PostgreSQL server
of ``--database-url``): save every catalog (``save_catalog`` for a sample, timed; the rest written in
bulk through the same tables, rows identical); sync ``PyPI.before-2023-01-01.zip``,
``Debian.before-2023-01-01.zip`` and ``npm-ghsa-subset.zip``; ``scan_image`` every image; sync the
newer ``PyPI.zip`` and ``Debian.zip`` (the real delta) and time ``rematch(store)`` from there to
all finding events committed; then ``rematch(store, full=True)``; then scans of new 500-package
images against the whole store. cProfile runs on a copy of the store taken before the re-match,
so the timed runs are not slowed by it.

Targets (issue 8): the delta re-match over 10,000 images under 2 s on SQLite; a full scan of one
500-package image under 100 ms.

Scanning every image dominates the run: ``--images 1000`` takes about 5 minutes on 2 cores, the
full 10,000 about 50 (``--no-profile`` saves the profiled re-runs).

Usage: bench/rematch.py [--images N] [--packages P] [--database-url URL] [--seed S] [--write-docs]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import gzip
import hashlib
import io
import json
import lzma
import os
import platform
import pstats
import random
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import accumulate
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout without an installed keelwatch too

from sqlalchemy import Table  # noqa: E402

from keelwatch.catalog.purl import purl  # noqa: E402
from keelwatch.config import FeedSettings  # noqa: E402
from keelwatch.errors import VersionError  # noqa: E402
from keelwatch.match.rematch import RematchReport, rematch  # noqa: E402
from keelwatch.match.scan import scan_image  # noqa: E402
from keelwatch.model import CatalogResult, Image, Layer, OSRelease, Package, Platform  # noqa: E402
from keelwatch.names import normalise_name  # noqa: E402
from keelwatch.store import Store  # noqa: E402
from keelwatch.store import catalog as stored_catalog  # noqa: E402
from keelwatch.store.tables import ImagePackageRow, ImageRow, LayerRow, PackageRow  # noqa: E402
from keelwatch.sync.engine import sync_feed  # noqa: E402
from keelwatch.versions import sort_key  # noqa: E402

SHARED = Path(os.environ.get("KEELWATCH_SHARED", ROOT.parent / "shared"))
OSV = SHARED / "data" / "feeds" / "osv"
APT_LISTS = Path("/var/lib/apt/lists")
MARK_BEGIN, MARK_END = "<!-- bench/rematch.py begin -->", "<!-- bench/rematch.py end -->"
HEADING = "## Re-match (bench/rematch.py)"
BEFORE = {"pypi": "PyPI.before-2023-01-01.zip", "debian": "Debian.before-2023-01-01.zip", "npm": "npm-ghsa-subset.zip"}
AFTER = {"pypi": "PyPI.zip", "debian": "Debian.zip"}
CATALOGERS = {"dpkg": 1, "python": 1, "npm": 1}
ZIPF_NAMES = 1.0  # name popularity: rank r drawn with weight 1 / r**s
ZIPF_VERSIONS = 1.2  # versions of one name, newest first
# The head of the PyPI popularity ranking (roughly pypistats' most downloaded, in order); the names the
# shared feeds name come first, the rest of the feeds' names follow in a seeded shuffle. Ranking by
# advisory count instead would put tensorflow (400+ advisories) in every image.
_POPULAR = """
boto3 botocore urllib3 requests setuptools certifi idna charset-normalizer typing-extensions python-dateutil
s3transfer packaging six numpy pyyaml fsspec cryptography pip pydantic attrs protobuf cffi pycparser jmespath
wheel rsa importlib-metadata pyasn1 zipp click pandas markupsafe jinja2 platformdirs pytz filelock colorama
pluggy awscli pyjwt tomli virtualenv wrapt pytest cachetools google-auth jsonschema pyarrow sqlalchemy aiohttp
psutil multidict yarl requests-oauthlib oauthlib tqdm werkzeug pillow lxml pygments docutils greenlet tzdata
beautifulsoup4 scipy pyparsing grpcio openpyxl msgpack anyio h11 httpx httpcore flask itsdangerous gunicorn
django paramiko pynacl bcrypt redis celery tornado ipython jupyter-server notebook nbconvert mistune bleach
markdown sqlparse future pymysql psycopg2 waitress twisted uvicorn starlette fastapi mako gitpython ujson
"""
PYPI_POPULAR = tuple(_POPULAR.split())


# --- package universes ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deb:
    name: str
    version: str
    arch: str
    source_name: str
    source_version: str
    priority: str
    newer: tuple[str, str] | None = None  # (version, source version) from bookworm-security / -updates


@dataclass(slots=True)
class Universe:
    deb_required: list[Deb] = field(default_factory=list)
    deb_important: list[Deb] = field(default_factory=list)
    deb_extras: list[Deb] = field(default_factory=list)  # ranked: most popular first
    lang: dict[str, list[tuple[str, list[str]]]] = field(default_factory=dict)  # ecosystem → ranked (name, versions)
    deb_lists: list[str] = field(default_factory=list)


def read_list(path: Path) -> str:
    """An apt list file, whatever apt compressed it with."""
    helper = Path("/usr/lib/apt/apt-helper")
    if helper.exists():
        out = subprocess.run([str(helper), "cat-file", str(path)], capture_output=True)
        if out.returncode == 0:
            return out.stdout.decode("utf-8", "replace")
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    elif path.suffix == ".xz":
        data = lzma.decompress(data)
    elif path.suffix == ".lz4":
        data = subprocess.run(["lz4cat", str(path)], capture_output=True, check=True).stdout
    return data.decode("utf-8", "replace")


def parse_packages(text: str) -> dict[str, Deb]:
    out: dict[str, Deb] = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        name, version = fields.get("Package"), fields.get("Version")
        if not name or not version:
            continue
        source_name, _, rest = fields.get("Source", name).partition(" ")
        source_version = rest.strip("() ") or version
        out.setdefault(name, Deb(name, version, fields.get("Architecture", "amd64"), source_name, source_version,
                                 fields.get("Priority", "optional")))
    return out


def apt_list(kind: str) -> Path | None:
    """The amd64 (else first) binary Packages list of ``bookworm`` / ``bookworm-security`` / ``bookworm-updates``."""
    found = sorted(p for p in APT_LISTS.glob(f"*_dists_{kind}_main_binary-*_Packages*") if "diff_Index" not in p.name)
    return next((p for p in found if "binary-amd64" in p.name), found[0] if found else None)


def debian_universe(universe: Universe, advisory_counts: Counter[str], rng: random.Random) -> bool:
    main = apt_list("bookworm")
    if main is None:
        return False
    packages = parse_packages(read_list(main))
    universe.deb_lists.append(main.name)
    for kind in ("bookworm-updates", "bookworm-security"):  # security last: it wins where both have one
        newer = apt_list(kind)
        if newer is None:
            continue
        universe.deb_lists.append(newer.name)
        for name, deb in parse_packages(read_list(newer)).items():
            if name in packages:
                packages[name] = dataclasses.replace(packages[name], newer=(deb.version, deb.source_version))
    for deb in sorted(packages.values(), key=lambda d: d.name):
        if deb.priority == "required":
            universe.deb_required.append(deb)
        elif deb.priority == "important":
            universe.deb_important.append(deb)
        else:
            universe.deb_extras.append(deb)
    # Extras: binaries of sources the advisories name (most named first), then the rest in a fixed shuffle.
    rng.shuffle(universe.deb_extras)
    universe.deb_extras.sort(key=lambda d: -advisory_counts.get(d.source_name, 0))
    return True


def osv_records(zip_name: str) -> Iterator[dict[str, Any]]:
    with zipfile.ZipFile(OSV / zip_name) as archive:
        for member in archive.namelist():
            if member.endswith(".json"):
                yield json.loads(archive.read(member))


def feed_universes(universe: Universe, rng: random.Random) -> Counter[str]:
    """PyPI and npm (name, versions) ranked by popularity; Debian source names' advisory counts."""
    debian: Counter[str] = Counter()
    for record in osv_records(AFTER["debian"]):
        for name in {a["package"]["name"] for a in record.get("affected", ())}:
            debian[name] += 1
    for ecosystem, zips in (("PyPI", (BEFORE["pypi"], AFTER["pypi"])), ("npm", (BEFORE["npm"],))):
        counts: Counter[str] = Counter()
        spellings: dict[str, Counter[str]] = {}
        versions: dict[str, set[str]] = {}
        for zip_name in zips:
            for record in osv_records(zip_name):
                for affected in record.get("affected", ()):
                    package = affected.get("package", {})
                    if package.get("ecosystem") != ecosystem:
                        continue
                    key = normalise_name(ecosystem, package["name"])
                    counts[key] += zip_name == zips[-1]
                    spellings.setdefault(key, Counter())[package["name"]] += 1
                    seen = versions.setdefault(key, set())
                    seen.update(affected.get("versions", ()))
                    for r in affected.get("ranges", ()):
                        if r.get("type") in ("ECOSYSTEM", "SEMVER"):
                            seen.update(v for e in r.get("events", ()) for k, v in e.items()
                                        if k in ("introduced", "fixed", "last_affected") and v != "0")
        popular = {normalise_name(ecosystem, n): i for i, n in enumerate(PYPI_POPULAR if ecosystem == "PyPI" else ())}
        order = sorted(counts)
        rng.shuffle(order)
        order.sort(key=lambda k: popular.get(k, len(popular)))  # stable: the shuffle stays behind the head
        ranked = []
        for key in order:
            ordered = _newest_first(ecosystem, versions[key])
            if ordered:
                ranked.append((spellings[key].most_common(1)[0][0], ordered))
        universe.lang[ecosystem] = ranked
    return debian


def _newest_first(ecosystem: str, versions: set[str]) -> list[str]:
    keyed = []
    for v in versions:
        try:
            keyed.append((sort_key(ecosystem, v), v))
        except VersionError:
            continue
    return [v for _, v in sorted(keyed, reverse=True)]


# --- the fleet ----------------------------------------------------------------------------------------------


class Zipf:
    """Draws of distinct items, item of rank r with weight 1 / r**s."""

    def __init__(self, items: Sequence[Any], s: float) -> None:
        self.items = items
        self.cum = list(accumulate(1.0 / (r + 1) ** s for r in range(len(items))))
        self.ranks = range(len(items))

    def one(self, rng: random.Random) -> Any:
        return self.items[rng.choices(self.ranks, cum_weights=self.cum)[0]]

    def distinct(self, rng: random.Random, k: int) -> list[Any]:
        k = min(k, len(self.items))
        chosen: dict[int, None] = {}
        while len(chosen) < k:
            for rank in rng.choices(self.ranks, cum_weights=self.cum, k=2 * (k - len(chosen))):
                chosen.setdefault(rank)
                if len(chosen) == k:
                    break
        return [self.items[r] for r in chosen]


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class Fleet:
    """Image ``i`` of the fleet, the same for a given seed in every run."""

    SHARES = {"Debian": 0.70, "PyPI": 0.27, "npm": 0.03}
    BASE_VARIANTS = 12  # distinct base layers the fleet is built on

    def __init__(self, universe: Universe, packages: int, seed: int, debian_ecosystem: str) -> None:
        self.u, self.packages, self.seed = universe, packages, seed
        self.debian_ecosystem = debian_ecosystem
        self.os = OSRelease(id="debian", version_id=debian_ecosystem.partition(":")[2] or "12",
                            pretty_name="Debian GNU/Linux 12 (bookworm)", version_codename="bookworm")
        self.deb_extras = Zipf(universe.deb_extras, ZIPF_NAMES)
        self.lang_names = {e: Zipf(ranked, ZIPF_NAMES) for e, ranked in universe.lang.items() if ranked}
        self._versions: dict[tuple[str, str], Zipf] = {}
        self._purls: dict[tuple[str, str, str, str], str] = {}
        self._debs: dict[tuple[str, bool, str], Package] = {}
        has_deb = bool(universe.deb_required or universe.deb_extras)
        shares = {e: s for e, s in self.SHARES.items() if e in self.lang_names or (e == "Debian" and has_deb)}
        total = sum(shares.values())
        self.shares = {e: s / total for e, s in shares.items()}

    def digest(self, i: int) -> str:
        return digest(f"keelwatch-bench:{self.seed}:{i}")

    def image(self, i: int, count: int | None = None) -> CatalogResult:
        rng = random.Random(f"{self.seed}:{i}")
        count = count or round(self.packages * rng.uniform(0.8, 1.2))
        base = digest(f"base:{self.seed}:{rng.randrange(self.BASE_VARIANTS)}")
        app = digest(f"app:{self.seed}:{i}")
        packages: list[Package] = []
        if "Debian" in self.shares:
            packages += self._debian(rng, round(count * self.shares["Debian"]), base)
        for ecosystem in ("PyPI", "npm"):
            if ecosystem in self.shares:
                packages += self._lang(rng, ecosystem, round(count * self.shares[ecosystem]), app)
        image = Image(
            reference=f"registry.example/bench/app-{i % 997}:{i}", name=f"registry.example/bench/app-{i % 997}",
            manifest_digest=self.digest(i), config_digest=digest(f"config:{self.seed}:{i}"), platform=Platform(),
            layers=[Layer(digest=base, media_type="application/vnd.oci.image.layer.v1.tar+gzip", size=30_000_000,
                          index=0),
                    Layer(digest=app, media_type="application/vnd.oci.image.layer.v1.tar+gzip",
                          size=rng.randrange(1_000_000, 90_000_000), index=1)],
            os=self.os if "Debian" in self.shares else None, source_kind="registry")
        return CatalogResult(image=image, packages=packages, catalogers=dict(CATALOGERS))

    def _debian(self, rng: random.Random, count: int, layer: str) -> list[Package]:
        patched = rng.random() < 0.5
        chosen = list(self.u.deb_required)
        if rng.random() < 0.8:
            chosen += self.u.deb_important
        chosen += self.deb_extras.distinct(rng, max(0, count - len(chosen)))
        return [self._deb_package(d, patched, layer) for d in chosen]

    def _deb_package(self, deb: Deb, patched: bool, layer: str) -> Package:
        key = (deb.name, patched and deb.newer is not None, layer)
        package = self._debs.get(key)
        if package is None:
            version, source_version = deb.newer if key[1] and deb.newer else (deb.version, deb.source_version)
            epoch, sep, rest = version.partition(":")
            bare, epoch = (rest, epoch) if sep and epoch.isdigit() else (version, "")
            package = self._debs[key] = Package(
                ecosystem=self.debian_ecosystem, name=deb.name, version=version, kind="os",
                purl=purl("deb", deb.name, bare, namespace="debian",
                          qualifiers={"arch": deb.arch, "epoch": epoch, "distro": f"debian-{self.os.version_id}"}),
                source_name=deb.source_name, source_version=source_version, arch=deb.arch, layer_digest=layer,
                found_by="dpkg", location="var/lib/dpkg/status")
        return package

    def _lang(self, rng: random.Random, ecosystem: str, count: int, layer: str) -> list[Package]:
        out = []
        for name, versions in self.lang_names[ecosystem].distinct(rng, count):
            pick = self._versions.get((ecosystem, name))
            if pick is None:
                pick = self._versions[(ecosystem, name)] = Zipf(versions, ZIPF_VERSIONS)
            version = pick.one(rng)
            key = (ecosystem, name, version, "")
            p = self._purls.get(key)
            if p is None:
                p = self._purls[key] = purl("pypi" if ecosystem == "PyPI" else "npm", name, version)
            location = (f"usr/local/lib/python3.11/site-packages/{name}-{version}.dist-info/METADATA"
                        if ecosystem == "PyPI" else f"app/node_modules/{name}/package.json")
            out.append(Package(ecosystem=ecosystem, name=name, version=version, purl=p, layer_digest=layer,
                               found_by="python" if ecosystem == "PyPI" else "npm", location=location))
        return out


# --- saving the catalogs -------------------------------------------------------------------------------------


def table(row: Any) -> Table:
    return cast(Table, row.__table__)


def bulk_save(session: Any, results: Sequence[CatalogResult], known: set[int], now: datetime) -> None:
    """The rows ``save_catalog`` writes for new images (no file lists, no warnings), in a few executemany."""
    from sqlalchemy import insert, select

    images = table(ImageRow)
    rows = []
    for result in results:
        image, os_release = result.image, result.image.os
        rows.append({
            "manifest_digest": image.manifest_digest, "index_digest": image.index_digest,
            "config_digest": image.config_digest, "platform": str(image.platform),
            "os_id": os_release.id if os_release else None,
            "os_version_id": os_release.version_id if os_release else None,
            "os_pretty_name": os_release.pretty_name if os_release else None,
            "os_codename": os_release.version_codename if os_release else None,
            "ecosystem": os_release.ecosystem if os_release else None, "name": image.name,
            "reference": image.reference, "repo_tags": list(image.repo_tags), "created": image.created,
            "labels": dict(image.labels), "source_kind": image.source_kind, "cataloged_at": now,
            "catalogers": dict(result.catalogers), "package_count": len(result.packages), "extra": dict(result.extra),
        })
    session.execute(insert(images), rows)
    wanted = [r.image.manifest_digest for r in results]
    ids = {d: i for d, i in session.execute(select(images.c.manifest_digest, images.c.id)
                                            .where(images.c.manifest_digest.in_(wanted)))}
    layers, links, new_packages = [], [], []
    names = ("ecosystem", "name", "version", "purl", "source_name", "source_version", "arch", "kind")
    for result in results:
        image_id = ids[result.image.manifest_digest]
        layers += [{"image_id": image_id, "index": layer.index, "digest": layer.digest, "diff_id": layer.diff_id,
                    "media_type": layer.media_type, "size": layer.size} for layer in result.image.layers]
        for position, package in enumerate(result.packages):
            key = stored_catalog.package_key(package)
            if key not in known:
                known.add(key)
                new_packages.append({"id": key, **dict(zip(names, stored_catalog.package_identity(package),
                                                           strict=True))})
            links.append({"image_id": image_id, "position": position, "package_id": key,
                          "layer_digest": package.layer_digest, "location": package.location,
                          "found_by": package.found_by, "licenses": list(package.licenses), "files_id": None})
    if layers:
        session.execute(insert(table(LayerRow)), layers)
    if new_packages:
        session.execute(insert(table(PackageRow)), new_packages)
    if links:
        session.execute(insert(table(ImagePackageRow)), links)


def save_fleet(store: Store, fleet: Fleet, count: int, sample: int, out: dict[str, Any]) -> list[str]:
    """Every image's catalog stored; the digests. ``sample`` images through ``save_catalog``, timed."""
    from sqlalchemy import func, select

    digests = [fleet.digest(i) for i in range(count)]
    sample = min(sample, count)
    generate = save = 0.0
    per_image: list[float] = []
    rows = 0
    for i in range(sample):
        t0 = time.perf_counter()
        result = fleet.image(i)
        t1 = time.perf_counter()
        store.save_catalog(result)
        per_image.append(time.perf_counter() - t1)
        generate += t1 - t0
        rows += len(result.packages)
    save = sum(per_image)
    out["save_catalog_per_image"] = statistics.median(per_image) if per_image else 0.0
    out["save_catalog_sample"] = sample
    bulk = 0.0
    if count > sample:
        with store.session() as session:
            known = set(session.execute(select(PackageRow.__table__.c.id)).scalars())
        batch: list[CatalogResult] = []
        now = datetime.now(UTC)
        done = sample
        for i in range(sample, count):
            t0 = time.perf_counter()
            batch.append(fleet.image(i))
            generate += time.perf_counter() - t0
            rows += len(batch[-1].packages)
            if len(batch) == 250 or i == count - 1:
                t0 = time.perf_counter()
                with store.session() as session:
                    bulk_save(session, batch, known, now)
                bulk += time.perf_counter() - t0
                done += len(batch)
                batch = []
                if done % max(1000, count // 10 // 250 * 250) < 250 or done == count:
                    print(f"  saved {done:,}/{count:,} images ({rows:,} package rows) ...", flush=True)
        # The bulk rows must be what save_catalog writes: compare one image each way.
        for i in (0, count - 1):
            loaded = store.load_catalog(fleet.digest(i))
            expected = fleet.image(i)
            assert loaded is not None and loaded.packages == expected.packages, f"image {i} stored differently"
            assert loaded.image.layers == expected.image.layers and loaded.image.os == expected.image.os
    out.update(generate=generate, save_catalog=save, bulk=bulk, package_rows=rows)
    with store.session(write=False) as session:
        out["distinct_packages"] = session.execute(select(func.count()).select_from(PackageRow.__table__)).scalar()
    return digests


# --- feeds, scans, re-matches ----------------------------------------------------------------------------------


def sync(store: Store, name: str, zip_name: str, work: Path) -> tuple[float, Any]:
    t0 = time.perf_counter()
    report = sync_feed(store, FeedSettings(name=name, kind="osv", url=str(OSV / zip_name)), workdir=work)
    elapsed = time.perf_counter() - t0
    if report.status != "ok":
        raise SystemExit(f"sync of {zip_name} as {name}: {report.status} {getattr(report, 'error', '')}")
    return elapsed, report


def scan_all(store: Store, digests: Sequence[str]) -> dict[str, Any]:
    times: list[float] = []
    findings = unknowns = opened = 0
    cpu, started = time.process_time(), time.perf_counter()
    step = max(1, len(digests) // 10)
    for n, image_digest in enumerate(digests, start=1):
        t0 = time.perf_counter()
        report = scan_image(store, image_digest)
        times.append(time.perf_counter() - t0)
        findings += report.scan.total
        unknowns += report.scan.unknowns
        opened += report.opened
        if n % step == 0:
            print(f"  scanned {n:,}/{len(digests):,} images, {time.perf_counter() - started:.1f} s, "
                  f"{findings:,} findings", flush=True)
    times.sort()
    return {"total": time.perf_counter() - started, "cpu": time.process_time() - cpu,
            "median": statistics.median(times), "p95": times[int(0.95 * (len(times) - 1))], "max": times[-1],
            "findings": findings, "unknowns": unknowns, "opened": opened}


def journal_summary(store: Store, since: int | None) -> dict[str, Any]:
    entries = store.changes_since(since)
    advisory = [e for e in entries if e.change in ("added", "changed", "withdrawn", "deleted")]
    by_feed: dict[str, Counter[str]] = {}
    for e in advisory:
        by_feed.setdefault(e.source, Counter())[e.change] += 1
    keys = {k for e in advisory for k in e.packages}
    return {"entries": len(entries), "advisories": len({(e.source, e.advisory_id) for e in advisory}),
            "by_feed": {f: dict(c) for f, c in sorted(by_feed.items())}, "package_keys": len(keys)}


def events_of_sync(store: Store, sync_id: int | None) -> int:
    from sqlalchemy import func, select

    from keelwatch.store.tables import FindingEventRow

    with store.session(write=False) as session:
        return int(session.execute(select(func.count()).select_from(FindingEventRow.__table__)
                                   .where(FindingEventRow.sync == sync_id)).scalar() or 0)


def timed_rematch(store: Store, **kwargs: Any) -> tuple[RematchReport, dict[str, Any]]:
    """The report (seconds: wall time around the call, commit included) and this process's CPU time and load."""
    load, cpu, t0 = loadavg(), time.process_time(), time.perf_counter()
    report = rematch(store, **kwargs)
    report.seconds = time.perf_counter() - t0
    return report, {"cpu": time.process_time() - cpu, "load": f"{load} → {loadavg()}"}


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def profiled(call: Callable[[], Any]) -> tuple[Any, pstats.Stats]:
    profile = cProfile.Profile()
    result = profile.runcall(call)
    return result, pstats.Stats(profile, stream=io.StringIO())


# Where a re-match spends its time: cumulative seconds of these calls (file suffix, function).
PHASES = (
    ("plan: journal → packages by the search-key index", "match/rematch.py", "_plan"),
    ("… read the journal", "store/advisories.py", "changes_since"),
    ("… index lookup (scanned_images_with_keys)", "store/findings.py", "scanned_images_with_keys"),
    ("match_image (per image)", "match/scan.py", "match_image"),
    ("… load the image's stored findings", "store/findings.py", "load_findings"),
    ("… match the packages (MatchSession.match)", "match/scan.py", "match"),
    ("…… advisories fetched (MemoLookup, once per name)", "match/scan.py", "advisories_for"),
    ("…… distinct searches decided (_decide)", "match/matcher.py", "_decide"),
    ("…… findings built per package (_finding)", "match/matcher.py", "_finding"),
    ("… plan_write (diff against stored)", "match/diff.py", "plan_write"),
    ("… read the catalog (full re-match)", "store/findings.py", "image_packages"),
    ("… key the packages (full re-match)", "match/scan.py", "key_packages"),
    ("is_noop", "match/diff.py", "is_noop"),
    ("_unknowns_moved (reads the image's unknowns)", "match/rematch.py", "_unknowns_moved"),
    ("apply_image_write (per written image)", "store/findings.py", "apply_image_write"),
    ("… refresh_counts", "store/findings.py", "refresh_counts"),
    ("finding rows encoded (finding_row, in writes and is_noop)", "store/findings.py", "finding_row"),
    ("stored findings decoded (_finding_model)", "store/findings.py", "_finding_model"),
    ("the scan's report read back (load_report)", "match/scan.py", "load_report"),
    ("touch_images (unchanged images)", "store/findings.py", "touch_images"),
    ("commit", "orm/session.py", "commit"),
    ("SQL executed (sqlite3/psycopg cursor execute*)", "", "<sql>"),
)


def phases(stats: pstats.Stats) -> list[tuple[str, float, int]]:
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    out = []
    for label, suffix, name in PHASES:
        if name == "<sql>":
            total = sum(v[3] for (f, _, fn), v in raw.items() if fn in (
                "<method 'execute' of 'sqlite3.Cursor' objects>", "<method 'executemany' of 'sqlite3.Cursor' objects>")
                or (f.endswith(("psycopg/cursor.py",)) and fn in ("execute", "executemany")))
            calls = sum(v[1] for (f, _, fn), v in raw.items() if fn in (
                "<method 'execute' of 'sqlite3.Cursor' objects>", "<method 'executemany' of 'sqlite3.Cursor' objects>")
                or (f.endswith(("psycopg/cursor.py",)) and fn in ("execute", "executemany")))
            out.append((label, total, calls))
            continue
        hits = [(v[3], v[1]) for (f, _, fn), v in raw.items() if fn == name and f.endswith(suffix)]
        if hits:
            out.append((label, sum(h[0] for h in hits), sum(h[1] for h in hits)))
    return out


def top_functions(stats: pstats.Stats, n: int) -> list[tuple[str, float, float, int]]:
    """(function, own seconds, cumulative seconds, calls) of the n functions with most own time."""
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    rows = sorted(raw.items(), key=lambda kv: -kv[1][2])[:n]
    out = []
    for (filename, line, name), (_, calls, own, cumulative, _) in rows:
        where = filename
        for marker in ("/site-packages/", "/src/", "/lib/python3"):
            if marker in where:
                where = where.split(marker, 1)[1]
                break
        label = name if filename == "~" else f"{where}:{line} {name}"
        out.append((label, own, cumulative, calls))
    return out


# --- databases -------------------------------------------------------------------------------------------------


class Database:
    """A fresh store: a temporary SQLite file, or a throwaway database on a PostgreSQL server; and copies."""

    def __init__(self, url: str | None, tmp: Path) -> None:
        self.tmp = tmp
        self.server = None
        self.created: list[str] = []
        if url and url.startswith(("postgres", "postgresql")):
            from sqlalchemy import make_url

            server = make_url(url)
            self.server = server.set(drivername="postgresql+psycopg")
            name = self._create()
            self.url = self.server.set(database=name).render_as_string(hide_password=False)
            self.kind = "postgresql"
        else:
            self.url = url or f"sqlite:///{tmp / 'bench.db'}"
            self.kind = "sqlite"

    def _admin(self) -> Any:
        import psycopg

        s = self.server
        assert s is not None
        return psycopg.connect(host=s.host or "127.0.0.1", port=s.port or 5432, user=s.username, password=s.password,
                               dbname=s.database or "postgres", autocommit=True)

    def _create(self, template: str | None = None) -> str:
        name = f"keelwatch_bench_{os.getpid()}_{secrets.token_hex(3)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self.created.append(name)
        return name

    def copy(self, store: Store) -> str:
        """A URL of a copy of the store as it is now (the store must be idle)."""
        if self.kind == "sqlite":
            source = sqlite3.connect(store.url.database or "")
            target_path = self.tmp / "copy.db"
            target = sqlite3.connect(target_path)
            with contextlib.closing(source), contextlib.closing(target):
                source.backup(target)
            return f"sqlite:///{target_path}"
        store.engine.dispose()  # CREATE DATABASE … TEMPLATE wants no other session on the template
        assert self.server is not None
        name = self._create(template=store.url.database)
        return self.server.set(database=name).render_as_string(hide_password=False)

    def size(self, store: Store) -> str:
        if self.kind == "sqlite":
            path = Path(store.url.database or "")
            total = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
            return f"{total / 1e9:.2f} GB file"
        from sqlalchemy import text

        with store.session(write=False) as session:
            size = session.execute(text("SELECT pg_database_size(current_database())")).scalar() or 0
            return f"{size / 1e9:.2f} GB"

    def drop(self) -> None:
        if self.server is not None:
            with self._admin() as conn:
                for name in self.created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the run ---------------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    info = {"cpu": "", "cores": str(os.cpu_count()), "ram": "", "load": ""}
    with contextlib.suppress(OSError, StopIteration):
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                           if line.startswith("model name"))
    with contextlib.suppress(OSError, StopIteration, ValueError):
        kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
        info["ram"] = f"{kib / 1024 / 1024:.1f} GiB"
    with contextlib.suppress(OSError):
        info["load"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000, help="images in the fleet (default 10,000)")
    parser.add_argument("--packages", type=int, default=300, help="packages per image, ±20%% (default 300)")
    parser.add_argument("--database-url", help="a PostgreSQL server URL (a throwaway database is created there "
                        "and dropped), or a sqlite:/// URL of a new file; default: a temporary SQLite file")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--save-sample", type=int, default=200,
                        help="images stored through Store.save_catalog (timed); the rest in bulk (default 200)")
    parser.add_argument("--debian-ecosystem", default="Debian:12",
                        help="ecosystem of the dpkg packages (default Debian:12, bookworm's own)")
    parser.add_argument("--big-image", type=int, default=500, help="packages of the single-image scans (default 500)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile runs (and the store copy)")
    parser.add_argument("--top", type=int, default=15, help="functions listed from the profile")
    parser.add_argument("--profile-full-images", type=int, default=1000,
                        help="images of the profiled full re-match (the timed one covers all; default 1,000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    parser.add_argument("--write-docs", action="store_true", help="write the results into docs/benchmarks.md")
    args = parser.parse_args()
    for zip_name in (*BEFORE.values(), *AFTER.values()):
        if not (OSV / zip_name).exists():
            raise SystemExit(f"missing {OSV / zip_name} (set KEELWATCH_SHARED)")

    host = machine()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"], capture_output=True,
                           text=True)
    started = datetime.now(UTC)
    r: dict[str, Any] = {"images": args.images, "packages": args.packages, "seed": args.seed, "machine": host,
                         "date": date.today().isoformat(), "debian_ecosystem": args.debian_ecosystem,
                         "source": f"commit {head.stdout.strip() or '?'}"
                                   + (" (src/ with uncommitted changes)" if dirty.stdout.strip() else "")}
    t0 = time.perf_counter()
    universe = Universe()
    advisory_counts = feed_universes(universe, random.Random(args.seed))
    if not debian_universe(universe, advisory_counts, random.Random(args.seed)):
        print(f"NOTE: no Debian bookworm package list under {APT_LISTS} (run `apt-get update`): the fleet has "
              "no Debian packages, and the Debian feeds are not synced", flush=True)
    r["universe"] = {"deb": len(universe.deb_required) + len(universe.deb_important) + len(universe.deb_extras),
                     "deb_required": len(universe.deb_required), "deb_important": len(universe.deb_important),
                     "deb_newer": sum(d.newer is not None for d in (*universe.deb_required, *universe.deb_important,
                                                                    *universe.deb_extras)),
                     **{e: len(v) for e, v in universe.lang.items()}, "lists": universe.deb_lists}
    has_deb = bool(universe.deb_lists)
    print(f"universes in {time.perf_counter() - t0:.1f} s: {r['universe']}", flush=True)
    fleet = Fleet(universe, args.packages, args.seed, args.debian_ecosystem)

    tmp = Path(tempfile.mkdtemp(prefix="kw-bench-rematch-"))
    db = Database(args.database_url, tmp)
    r["database"] = db.kind
    store = Store.open(db.url)
    try:
        run(args, store, db, fleet, has_deb, tmp, r)
    finally:
        store.close()
        if not args.keep:
            db.drop()
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {db.url}")
    r["wall"] = (datetime.now(UTC) - started).total_seconds()
    text = render(r)
    print()
    print(text)
    if args.write_docs:
        write(text)


def run(args: argparse.Namespace, store: Store, db: Database, fleet: Fleet, has_deb: bool, tmp: Path,
        r: dict[str, Any]) -> None:
    print(f"fleet: {args.images:,} images × ~{args.packages} packages into {db.kind} ...", flush=True)
    r["save"] = {}
    digests = save_fleet(store, fleet, args.images, args.save_sample, r["save"])
    s = r["save"]
    print(f"  save_catalog {s['save_catalog_per_image'] * 1000:.1f} ms/image (median of {s['save_catalog_sample']}), "
          f"bulk {s['bulk']:.1f} s, generating {s['generate']:.1f} s; {s['package_rows']:,} rows, "
          f"{s['distinct_packages']:,} distinct packages", flush=True)

    feeds = [n for n in BEFORE if n != "debian" or has_deb]
    r["sync_before"] = {}
    for name in feeds:
        elapsed, report = sync(store, name, BEFORE[name], tmp / "work")
        r["sync_before"][name] = elapsed
        print(f"  sync {BEFORE[name]}: {elapsed:.2f} s", flush=True)

    print(f"scanning {len(digests):,} images ...", flush=True)
    r["scan"] = scan_all(store, digests)
    sc = r["scan"]
    print(f"  scan_image: total {sc['total']:.1f} s, median {sc['median'] * 1000:.1f} ms, p95 {sc['p95'] * 1000:.1f} "
          f"ms; {sc['findings']:,} findings", flush=True)
    watermark = store.latest_sync_id()

    r["sync_after"] = {}
    for name in AFTER:
        if name in feeds:
            elapsed, report = sync(store, name, AFTER[name], tmp / "work")
            r["sync_after"][name] = elapsed
            print(f"  sync {AFTER[name]}: {elapsed:.2f} s", flush=True)
    r["journal"] = journal_summary(store, watermark)
    print(f"  journal: {r['journal']}", flush=True)
    r["size_before_rematch"] = db.size(store)

    copy_url = None if args.no_profile else db.copy(store)
    report, extra = timed_rematch(store)
    r["delta"] = report.as_dict() | extra | {"seconds": report.seconds,
                                             "events_stored": events_of_sync(store, report.until)}
    print(f"delta re-match: {report.seconds:.2f} s (CPU {extra['cpu']:.1f} s, load {extra['load']}) — "
          f"{report.as_dict()}", flush=True)
    report, extra = timed_rematch(store, full=True)
    r["full"] = report.as_dict() | extra | {"seconds": report.seconds}
    print(f"full re-match: {report.seconds:.2f} s (CPU {extra['cpu']:.1f} s, load {extra['load']}) — "
          f"{report.as_dict()}", flush=True)

    # Single images against the whole store: a new 500-package image saved, then scanned (the first scan
    # writes all its findings); and a re-scan of the same image (its findings unchanged).
    first, again, saves, found = [], [], [], []
    for j in range(5):
        result = fleet.image(args.images + 1 + j, count=args.big_image)
        t0 = time.perf_counter()
        store.save_catalog(result)
        saves.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        scan = scan_image(store, result.image.manifest_digest)
        first.append(time.perf_counter() - t0)
        found.append(scan.scan.total)
        t0 = time.perf_counter()
        scan_image(store, result.image.manifest_digest)
        again.append(time.perf_counter() - t0)
    r["big"] = {"scan": statistics.median(first), "rescan": statistics.median(again), "save": statistics.median(saves),
                "findings": statistics.median(found), "packages": args.big_image}
    print(f"{args.big_image}-package image: scan {r['big']['scan'] * 1000:.0f} ms (median of 5, "
          f"{r['big']['findings']:.0f} findings), re-scan {r['big']['rescan'] * 1000:.0f} ms, "
          f"save_catalog {r['big']['save'] * 1000:.0f} ms", flush=True)
    r["size"] = db.size(store)

    if copy_url is not None:
        with Store.open(copy_url) as copy:
            profiled_report, stats = profiled(lambda: rematch(copy))
            r["profile_delta"] = {"seconds": profiled_report.seconds, "phases": phases(stats),
                                  "top": top_functions(stats, args.top)}
            subset = digests[:args.profile_full_images]
            profiled_report, stats = profiled(lambda: rematch(copy, full=True, images=subset, advance=False))
            r["profile_full"] = {"seconds": profiled_report.seconds, "phases": phases(stats),
                                 "top": top_functions(stats, args.top), "images": len(subset)}
            big = fleet.image(args.images + 100, count=args.big_image)
            copy.save_catalog(big)
            _, stats = profiled(lambda: scan_image(copy, big.image.manifest_digest))
            r["profile_scan"] = {"phases": phases(stats), "top": top_functions(stats, args.top)}
        for key in ("profile_delta", "profile_full", "profile_scan"):
            print(f"{key}:", flush=True)
            for label, seconds, calls in r[key]["phases"]:
                print(f"  {seconds:8.3f} s {calls:9,}×  {label}")
            for label, own, cumulative, calls in r[key]["top"]:
                print(f"  own {own:7.3f} s  cum {cumulative:7.3f} s {calls:9,}×  {label}")


# --- the report ------------------------------------------------------------------------------------------------


def render(r: dict[str, Any]) -> str:
    m, s, sc, d, f, b, j = r["machine"], r["save"], r["scan"], r["delta"], r["full"], r["big"], r["journal"]
    n = r["images"]
    sqlite_version = sqlite3.sqlite_version if r["database"] == "sqlite" else ""
    db = f"SQLite {sqlite_version} (a temporary file, WAL)" if sqlite_version else "PostgreSQL (local server)"
    changed = ", ".join(f"{feed}: " + ", ".join(f"{v} {k}" for k, v in sorted(c.items()))
                        for feed, c in j["by_feed"].items())
    sync_after = sum(r["sync_after"].values())
    extrapolated = s["save_catalog_per_image"] * n
    options = "" if r["packages"] == 300 else f" --packages {r['packages']}"
    if r["debian_ecosystem"] != "Debian:12":
        options += f" --debian-ecosystem {r['debian_ecosystem']}"
    lines = [
        MARK_BEGIN,
        f"Measured {r['date']} on {platform.node()} ({m['cpu']}, {m['cores']} cores, {m['ram']} RAM; load average "
        f"{m['load']} at the start), Python {platform.python_version()}, {db}; one run, seed {r['seed']}, "
        f"{r['wall'] / 60:.0f} min in all. `bench/rematch.py --images {n}{options}` on {r['source']}. The machine "
        f"is shared: CPU times (this process's) are given beside wall times; the load average moved "
        f"{r['delta']['load']} during the delta re-match, {r['full']['load']} during the full one.",
        "",
        f"The fleet: {n:,} images, {s['package_rows']:,} package rows ({s['package_rows'] / n:.0f} a image), "
        f"{s['distinct_packages']:,} distinct packages. "
        f"Debian bookworm ({r['universe']['deb']:,} binary packages in the lists; every image has the "
        f"{r['universe']['deb_required']} `required`, 80 % the {r['universe']['deb_important']} `important`, the rest "
        f"Zipf-drawn; half the images carry the bookworm-security/-updates version where there is one) as "
        f"`{r['debian_ecosystem']}`, 70 % of each image; PyPI ({r['universe'].get('PyPI', 0)} names) 27 % and npm "
        f"({r['universe'].get('npm', 0)} names) 3 %, at versions the shared advisories list. "
        f"Store: {r['size']} at the end.",
        "",
        "| what | result |",
        "|---|---:|",
        f"| `save_catalog` per image (median of the first {s['save_catalog_sample']}) | "
        f"{s['save_catalog_per_image'] * 1000:.1f} ms (≈ {extrapolated:.0f} s for {n:,}) |",
        f"| the other {n - s['save_catalog_sample']:,} catalogs in bulk (executemany of the same rows) | "
        f"{s['bulk']:.1f} s |",
        f"| sync of the before-2023 snapshots ({', '.join(BEFORE[k] for k in r['sync_before'])}) | "
        f"{sum(r['sync_before'].values()):.1f} s |",
        f"| `scan_image` of every image: total (CPU) | {sc['total']:.0f} s ({sc['cpu']:.0f} s; "
        f"{sc['findings']:,} findings, {sc['findings'] / n:.0f} a image) |",
        f"| … per image: median / p95 / max | {sc['median'] * 1000:.1f} / {sc['p95'] * 1000:.1f} / "
        f"{sc['max'] * 1000:.0f} ms |",
        f"| sync of the newer snapshots ({', '.join(AFTER[k] for k in r['sync_after'])}): the delta applied | "
        f"{sync_after:.1f} s |",
        f"| journal after the scans | {j['entries']:,} entries, {j['advisories']:,} changed advisories "
        f"({changed}), {j['package_keys']:,} (ecosystem, name) keys |",
        f"| **delta re-match `rematch(store)`: delta applied → all finding events committed** | "
        f"**{d['seconds']:.1f} s** (CPU {d['cpu']:.1f} s; target < 2 s) |",
        f"| … images considered / written; packages re-judged | {d['images_considered']:,} / {d['images_written']:,}; "
        f"{d['packages_rejudged']:,} |",
        f"| … events opened / closed / changed | {d['opened']:,} / {d['closed']:,} / {d['changed']:,} "
        f"({d['events_stored']:,} stored) |",
        f"| full re-match `rematch(store, full=True)` | {f['seconds']:.1f} s (CPU {f['cpu']:.1f} s; "
        f"{f['images_considered']:,} images, "
        f"{f['packages_rejudged']:,} packages, {f['images_written']:,} written, "
        f"{f['opened'] + f['closed'] + f['changed']} events) |",
        f"| **full scan of one new {b['packages']}-package image against the whole store** (median of 5) | "
        f"**{b['scan'] * 1000:.0f} ms** (target < 100 ms; {b['findings']:.0f} findings written) |",
        f"| … re-scan of it (nothing changes) / its `save_catalog` | {b['rescan'] * 1000:.0f} ms / "
        f"{b['save'] * 1000:.0f} ms |",
    ]
    subset = r.get("profile_full", {}).get("images", 0)
    for key, title in (("profile_delta", "the delta re-match"),
                       ("profile_full", f"the full re-match of {subset:,} of the images"),
                       ("profile_scan", f"one {b['packages']}-package scan")):
        p = r.get(key)
        if not p:
            continue
        seconds = f" ({p['seconds']:.2f} s under the profiler)" if "seconds" in p else ""
        lines += ["", f"cProfile of {title}{seconds}, on a copy of the store: cumulative time of its parts",
                  "", "| part | s | calls |", "|---|---:|---:|"]
        lines += [f"| {label} | {seconds_:.3f} | {calls:,} |" for label, seconds_, calls in p["phases"]]
        if key != "profile_scan":
            lines += ["", "| top functions by own time | own s | cum s | calls |", "|---|---:|---:|---:|"]
            lines += [f"| `{label}` | {own:.3f} | {cum:.3f} | {calls:,} |" for label, own, cum, calls in p["top"][:10]]
    lines.append(MARK_END)
    return "\n".join(lines)


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
