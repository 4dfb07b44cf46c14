"""Every version string in the real feeds parses in its ecosystem, or is a listed, explained exception.

Reads, in place, the OSV zips under ``$KEELWATCH_SHARED/data/feeds/osv`` (``affected[].ranges[].events``
of ECOSYSTEM and SEMVER ranges, and ``affected[].versions`` of the entries that have such ranges)
and the ``secfixes`` of every alpine-secdb YAML file.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from keelwatch.errors import VersionError
from keelwatch.versions import scheme_for, sort_key

REPO_ROOT = Path(__file__).resolve().parents[2]
OSV_ZIPS = ("PyPI.zip", "Go.zip", "Debian.zip", "npm-ghsa-subset.zip", "Maven-ghsa-subset.zip")
EXCEPTIONS_FILE = Path(__file__).with_name("unparseable_feed_versions.txt")
REASONS = {"pypi-legacy", "pypi-bound", "secdb-typo"}


def missing_dataset(reason: str) -> None:
    """Skip with the reason; under ``KEELWATCH_REQUIRE_DATASETS=1`` (CI) fail instead."""
    if os.environ.get("KEELWATCH_REQUIRE_DATASETS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def feeds_dir() -> Path:
    """``$KEELWATCH_SHARED/data/feeds`` (default: ``shared/`` beside the repository)."""
    shared = Path(os.environ.get("KEELWATCH_SHARED", REPO_ROOT.parent / "shared"))
    path = shared / "data" / "feeds"
    if not path.is_dir():
        missing_dataset(f"shared feeds missing: {path} (set KEELWATCH_SHARED to the shared directory)")
    return path


def osv_versions(path: Path) -> Iterator[tuple[str, str]]:
    """(ecosystem, version) for every orderable version string in one OSV zip."""
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if not name.endswith(".json"):
                continue
            record = json.loads(archive.read(name))
            for affected in record.get("affected", []):
                ecosystem = affected["package"]["ecosystem"]
                ranges = [r for r in affected.get("ranges", []) if r["type"] in ("ECOSYSTEM", "SEMVER")]
                for event in (e for r in ranges for e in r["events"]):
                    for kind, value in event.items():
                        if (kind == "introduced" and value == "0") or (kind == "limit" and "*" in value):
                            continue  # the schema's special values, not versions
                        yield ecosystem, value
                if ranges:
                    for value in affected.get("versions", []):
                        yield ecosystem, value


def secdb_versions(root: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(root.glob("*/*.yaml")):
        # BaseLoader keeps every scalar a string, as a feed parser must: "1.10" is not the float 1.1.
        document = yaml.load(path.read_text(), Loader=yaml.BaseLoader) or {}
        for package in document.get("packages") or []:
            for version in (package.get("pkg") or {}).get("secfixes") or {}:
                yield f"Alpine:{path.parent.name}", version


def expected_exceptions() -> dict[tuple[str, str], str]:
    out = {}
    for line in EXCEPTIONS_FILE.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        ecosystem, version, reason = line.split("\t")
        assert reason in REASONS, line
        out[(ecosystem, version)] = reason
    return out


def test_every_feed_version_parses_or_is_an_explained_exception() -> None:
    feeds = feeds_dir()
    seen: set[tuple[str, str]] = set()
    for name in OSV_ZIPS:
        path = feeds / "osv" / name
        if not path.exists():
            missing_dataset(f"shared OSV feed missing: {path}")
        seen.update((scheme_for(ecosystem).name, version) for ecosystem, version in osv_versions(path))
    secdb = list(secdb_versions(feeds / "alpine-secdb"))
    assert len(secdb) > 1000, "alpine-secdb yielded almost nothing: did its layout change?"
    seen.update((scheme_for(ecosystem).name, version) for ecosystem, version in secdb)
    assert len(seen) > 10_000, "far fewer distinct versions than the feeds hold: did a format change?"

    ecosystem_of = {"pep440": "PyPI", "apk": "Alpine", "dpkg": "Debian", "go": "Go", "npm": "npm", "maven": "Maven"}
    failed = {}
    for scheme, version in seen:
        try:
            sort_key(ecosystem_of[scheme], version)
        except VersionError as error:
            failed[(ecosystem_of[scheme], version)] = str(error)

    expected = expected_exceptions()
    unexplained = sorted(set(failed) - set(expected))
    assert not unexplained, "real versions that do not parse, not in unparseable_feed_versions.txt:\n" + "\n".join(
        f"{eco}\t{version}\t{failed[(eco, version)]}" for eco, version in unexplained)
    stale = sorted(set(expected) - set(failed))
    assert not stale, f"listed as unparseable but parse now (or left the feeds): {stale}"
