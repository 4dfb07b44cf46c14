"""Debian tracker feed: the sample written from the tracker's JSON shape (see samples/debian-tracker)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from keelwatch.errors import ConfigError, FeedError
from keelwatch.feeds.base import Problem, Spool
from keelwatch.feeds.debian_tracker import DebianTrackerFeed
from keelwatch.model import Advisory, AffectedRange, Severity

from .httpserver import Route, TestServer

SAMPLE = Path(__file__).parent / "samples" / "debian-tracker" / "tracker.json"


def parse(path: Path, **options: object) -> list[Any]:
    return list(DebianTrackerFeed(options).parse(Spool(path, ""), source="debian"))


@pytest.fixture(scope="module")
def sample() -> dict[str, Advisory]:
    records = parse(SAMPLE)
    assert not [r for r in records if isinstance(r, Problem)]
    return {r.id: r for r in records}


def test_ids_and_what_is_left_out(sample: dict[str, Advisory]) -> None:
    # chromium-browser's CVE-2022-0358 has "releases": [] and says nothing: no advisory.
    assert sorted(sample) == ["DEBIAN-CVE-2008-7220", "DEBIAN-CVE-2022-3602", "DEBIAN-CVE-2022-37434",
                              "DEBIAN-CVE-2023-0286", "DEBIAN-CVE-2023-23916", "DEBIAN-CVE-2023-45853"]


def test_resolved_per_release(sample: dict[str, Advisory]) -> None:
    adv = sample["DEBIAN-CVE-2023-0286"]
    assert adv.upstream == ("CVE-2023-0286",) and adv.source == "debian"
    assert adv.references == ("https://security-tracker.debian.org/tracker/CVE-2023-0286",)
    assert json.loads(adv.database_specific) == {"scope": "remote"}
    assert [(a.ecosystem, a.name, a.ranges) for a in adv.affected] == [
        ("Debian:10", "openssl", (AffectedRange("ECOSYSTEM", (("introduced", "0"), ("fixed", "1.1.1n-0+deb10u4"))),)),
        ("Debian:11", "openssl", (AffectedRange("ECOSYSTEM", (("introduced", "0"), ("fixed", "1.1.1n-0+deb11u4"))),)),
        ("Debian:12", "openssl", (AffectedRange("ECOSYSTEM", (("introduced", "0"), ("fixed", "3.0.8-1"))),)),
    ]
    bullseye = adv.affected[1]
    assert bullseye.purl == "pkg:deb/debian/openssl?arch=source"
    assert json.loads(bullseye.database_specific) == {"status": "resolved", "urgency": "not yet assigned"}
    assert bullseye.severity == ()  # "not yet assigned" is no severity


def test_not_affected_is_recorded_not_matched(sample: dict[str, Advisory]) -> None:
    adv = sample["DEBIAN-CVE-2022-3602"]
    assert [(a.ecosystem, a.name) for a in adv.affected] == [("Debian:12", "openssl")]
    assert json.loads(adv.database_specific)["not_affected"] == [
        {"ecosystem": "Debian:11", "name": "openssl"}, {"ecosystem": "Debian:10", "name": "openssl"}]


def test_open_is_affected_without_a_fix(sample: dict[str, Advisory]) -> None:
    adv = sample["DEBIAN-CVE-2023-45853"]
    bookworm = next(a for a in adv.affected if a.ecosystem == "Debian:12")
    assert (bookworm.name, bookworm.ranges) == ("zlib", (AffectedRange("ECOSYSTEM", (("introduced", "0"),)),))
    assert json.loads(bookworm.database_specific)["nodsa_reason"] == "ignored"


def test_urgency_sid_and_bugs(sample: dict[str, Advisory]) -> None:
    adv = sample["DEBIAN-CVE-2008-7220"]
    (buster,) = adv.affected  # sid skipped
    assert buster.ecosystem == "Debian:10"
    assert buster.severity == (Severity("Debian", "high", None, "debian"),)  # "high**": a guessed urgency
    assert adv.references[1] == "https://bugs.debian.org/555217"
    assert sample["DEBIAN-CVE-2022-37434"].references[1] == "https://bugs.debian.org/1016710"


def test_one_cve_of_two_packages_is_one_advisory(tmp_path: Path) -> None:
    release = {"status": "resolved", "fixed_version": "1.0-1", "urgency": "low"}
    doc = {"openssl": {"CVE-2024-0001": {"releases": {"bookworm": release}}},
           "openssl1.0": {"CVE-2024-0001": {"releases": {"stretch": release}}}}
    path = tmp_path / "json"
    path.write_text(json.dumps(doc))
    (adv,) = parse(path)
    assert [(a.ecosystem, a.name) for a in adv.affected] == [("Debian:12", "openssl"), ("Debian:9", "openssl1.0")]


def test_undetermined_unknown_codenames_and_bad_entries(tmp_path: Path) -> None:
    doc = {"pkg": {"CVE-2024-0001": {"releases": {
        "bookworm": {"status": "undetermined"},
        "duke2": {"status": "open"},
        "trixie": {"status": "resolved"},
        "bullseye": {"status": "weird"}}}},
        "bad": ["not", "an", "object"]}
    path = tmp_path / "json.gz"
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    records = parse(path)
    problems = [r for r in records if isinstance(r, Problem)]
    assert sorted(p.where for p in problems) == ["bad", "pkg/CVE-2024-0001/bullseye", "pkg/CVE-2024-0001/trixie",
                                                  "release duke2"]
    (adv,) = [r for r in records if isinstance(r, Advisory)]
    (bookworm,) = adv.affected
    assert json.loads(bookworm.database_specific) == {"status": "undetermined"}
    assert bookworm.ranges == (AffectedRange("ECOSYSTEM", (("introduced", "0"),)),)
    (adv,) = [r for r in parse(path, codenames={"duke2": "16"}) if isinstance(r, Advisory)]
    assert [a.ecosystem for a in adv.affected] == ["Debian:12", "Debian:16"]
    with pytest.raises(ConfigError):
        DebianTrackerFeed({"codenames": ["x"]})


def test_truncated_or_foreign_files_abort(tmp_path: Path) -> None:
    path = tmp_path / "json"
    path.write_text(SAMPLE.read_text()[:3000])
    with pytest.raises(FeedError, match="not the tracker's JSON"):
        parse(path)
    path.write_text("[]")
    with pytest.raises(FeedError, match="not the tracker's JSON"):
        parse(path)


def test_served_over_http(server: TestServer, tmp_path: Path) -> None:
    server.routes["/tracker/data/json"] = Route(SAMPLE.read_bytes(), etag='"t1"')
    feed = DebianTrackerFeed()
    spool = feed.fetch(server.url("/tracker/data/json"), None, tmp_path)
    assert isinstance(spool, Spool)
    assert len([r for r in feed.parse(spool, source="debian") if isinstance(r, Advisory)]) == 6
