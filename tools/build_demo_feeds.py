#!/usr/bin/env python3
"""Cut the demo's advisory snapshots out of the shared OSV feeds: small, real, two points in time.

Usage: .venv/bin/python tools/build_demo_feeds.py [--shared DIR] [--out DIR]
       (DIR defaults: $KEELWATCH_SHARED or ../shared; src/keelwatch/demo/feeds)

`make run` must work without ../shared, so the demo carries the OSV records that concern its
two images, unchanged, as two OSV zips per ecosystem:

  PyPI.2022-12-31.zip   the records of PyPA's database as it stood then (PyPI.before-2023-01-01.zip)
  PyPI.current.zip      the same advisories and the newer ones, from PyPI.zip
  npm.2022-12-31.zip    GHSA records of the npm subset published by 2022-12-31 (there is no older
                        snapshot of the subset: the records are today's text, cut by publication)
  npm.current.zip       every record of the subset that names a demo package
  nvd/CVE-*.json        the shared NVD records (verbatim `cve` objects) of the CVEs those records
                        name: the CVSS for advisories that carry none

A record is kept when an affected entry names a package of either demo image (PEP 503 / npm
names), whether or not its ranges reach the installed version: the matcher decides that, as it
would against the whole feed. Entries are written in name order with a fixed time, so the output
is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from keelwatch.catalog import CATALOGERS  # noqa: E402
from keelwatch.catalog.walker import catalog_image  # noqa: E402
from keelwatch.images import open_image  # noqa: E402
from keelwatch.names import normalise_name  # noqa: E402

CUTOFF = "2022-12-31T23:59:59Z"
FIXED_TIME = (2023, 1, 1, 0, 0, 0)


def demo_packages(images: Path) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {"PyPI": set(), "npm": set()}
    for path in sorted(images.glob("*.oci.tar")):
        opened = open_image(f"oci-archive:{path}")
        try:
            result = catalog_image(opened, CATALOGERS)
        finally:
            opened.close()
        for p in result.packages:
            if p.ecosystem in names:
                names[p.ecosystem].add(normalise_name(p.ecosystem, p.name))
    return names


def records(path: Path) -> dict[str, tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return {name: (json.loads(archive.read(name))["id"], archive.read(name))
                for name in sorted(archive.namelist()) if name.endswith(".json")}


def concerns(data: bytes, ecosystem: str, wanted: set[str]) -> bool:
    doc = json.loads(data)
    return any(a.get("package", {}).get("ecosystem") == ecosystem
               and normalise_name(ecosystem, a["package"].get("name", "")) in wanted for a in doc.get("affected", []))


def write(path: Path, chosen: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(chosen):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, chosen[name])
    print(f"{path.name}: {len(chosen)} records", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("KEELWATCH_SHARED", ROOT.parent / "shared")))
    ap.add_argument("--out", type=Path, default=ROOT / "src/keelwatch/demo/feeds")
    args = ap.parse_args()
    feeds = args.shared / "data" / "feeds" / "osv"
    names = demo_packages(ROOT / "src/keelwatch/demo/images")
    args.out.mkdir(parents=True, exist_ok=True)

    for label, source in (("2022-12-31", "PyPI.before-2023-01-01.zip"), ("current", "PyPI.zip")):
        chosen = {n: d for n, (_, d) in records(feeds / source).items() if concerns(d, "PyPI", names["PyPI"])}
        write(args.out / f"PyPI.{label}.zip", chosen)
    npm = {n: d for n, (_, d) in records(feeds / "npm-ghsa-subset.zip").items() if concerns(d, "npm", names["npm"])}
    write(args.out / "npm.current.zip", npm)
    write(args.out / "npm.2022-12-31.zip",
          {n: d for n, d in npm.items() if (json.loads(d).get("published") or "9999") <= CUTOFF})

    cves: set[str] = set()
    for zipped in sorted(args.out.glob("*.zip")):
        for _, data in records(zipped).values():
            doc = json.loads(data)
            cves.update(a for a in (doc["id"], *doc.get("aliases", ())) if a.startswith("CVE-"))
    nvd = args.out / "nvd"
    nvd.mkdir(exist_ok=True)
    for old in nvd.glob("*.json"):
        old.unlink()
    copied = 0
    for cve in sorted(cves):
        source = args.shared / "data" / "feeds" / "nvd" / "records" / f"{cve}.json"
        if source.is_file():
            (nvd / source.name).write_bytes(source.read_bytes())
            copied += 1
    print(f"nvd: {copied} of {len(cves)} CVEs have a shared NVD record", file=sys.stderr)


if __name__ == "__main__":
    main()
