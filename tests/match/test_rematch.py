"""Stored findings and re-evaluation without rescans, on SQLite and PostgreSQL, with real data.

The replay: the PyPA database as it stood on 2022-12-30, a scan of the shared Python image, then
the current database. The re-match must open exactly what the pinned expectations
(tests/match/data/*.tsv, written from the advisories' ranges) say became affected, and must not
read the image again. Synthetic records (through the sync engine's ``ListFeed``) cover what the
real snapshots do not exercise on this image: withdrawal, a fix that closes a finding, KEV.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from keelwatch.config import FeedSettings
from keelwatch.feeds.base import Withdrawn
from keelwatch.match.matcher import match_packages
from keelwatch.match.rematch import rematch
from keelwatch.match.scan import load_report, scan_image
from keelwatch.model import Advisory, Affected, AffectedRange, Exploitability
from keelwatch.store import Store
from keelwatch.store import findings as stored_findings
from keelwatch.sync.engine import sync_feed
from sync.feeds import ListFeed  # tests/ is on sys.path (no __init__.py there)

from . import scenarios

pytestmark = pytest.mark.datasets

BEFORE, AFTER = "PyPI.before-2023-01-01.zip", "PyPI.zip"


def sync_zip(store: Store, feeds_dir: Path, zip_name: str, tmp_path: Path) -> None:
    report = sync_feed(store, FeedSettings(name="pypi", kind="osv", url=str(feeds_dir / "osv" / zip_name)),
                       workdir=tmp_path / "work")
    assert report.status == "ok", report


def store_image(store: Store, images_dir: Path, image: str = "debian12-python") -> str:
    result = scenarios.catalog(images_dir, image)
    store.save_catalog(result)
    return result.image.manifest_digest


def expected_ids(name: str) -> set[str]:
    return {row[0] for row in scenarios.read_expected(scenarios.SCENARIOS[name].data_file) if row[3] == "affected"}


def pairs(findings: Any) -> set[tuple[str, str]]:
    return {(s.finding.id, s.finding.package.id) for s in findings}


def test_a_scan_stores_what_the_matcher_finds(store: Store, feeds_dir: Path, images_dir: Path,
                                              tmp_path: Path) -> None:
    sync_zip(store, feeds_dir, AFTER, tmp_path)
    digest = store_image(store, images_dir)
    report = scan_image(store, digest)

    direct = match_packages(scenarios.catalog(images_dir, "debian12-python").packages,
                            scenarios.index(feeds_dir, AFTER))
    assert {(f.id, f.package.id) for f in direct.findings} == pairs(report.findings)
    assert {i for s in report.findings for i in s.finding.advisory_ids} == expected_ids("debian12-python.PyPI")
    # The image's counts are its findings', by severity.
    assert report.scan.total == len(report.findings) == report.opened
    for severity, n in report.scan.counts.items():
        assert n == sum(1 for s in report.findings if s.finding.severity == severity)
    # No Debian data is loaded: the OS packages are a visible "no data", never silently clean.
    assert "Debian:12" in report.scan.no_data
    assert any(u.kind == "no-data" and u.ecosystem == "Debian:12" for u in report.unknowns)

    # Scanning again changes nothing and opens nothing.
    again = scan_image(store, digest)
    assert (again.opened, again.closed, again.changed) == (0, 0, 0)
    assert pairs(again.findings) == pairs(report.findings)
    assert {s.key: s.first_seen for s in again.findings} == {s.key: s.first_seen for s in report.findings}


def test_replay_opens_exactly_the_new_findings_without_a_rescan(store: Store, feeds_dir: Path, images_dir: Path,
                                                                tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    sync_zip(store, feeds_dir, BEFORE, tmp_path)
    digest = store_image(store, images_dir)
    first = scan_image(store, digest)
    assert {i for s in first.findings for i in s.finding.advisory_ids} == \
        expected_ids("debian12-python.PyPI-before-2023")
    before_sync = store.latest_sync_id()

    # From here on, any image read or cataloging is a failure: the re-match works from the store.
    def no_catalog_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the re-match read an image")

    for target in ("keelwatch.images.open_image", "keelwatch.catalog.walker.catalog_image",
                   "keelwatch.pipeline.catalog_image", "keelwatch.pipeline.open_image"):
        monkeypatch.setattr(target, no_catalog_work)

    sync_zip(store, feeds_dir, AFTER, tmp_path)
    report = rematch(store)
    assert report.since == before_sync and report.until == store.latest_sync_id()
    assert report.images_considered == 1 and report.images_written == 1

    events = stored_findings_events(store, before_sync)
    new_ids = expected_ids("debian12-python.PyPI") - expected_ids("debian12-python.PyPI-before-2023")
    opened = [e for e in events if e.event == "opened"]
    assert opened and all(e.sync == report.until and e.image_digest == digest for e in events)
    # Every advisory that became affected is in an opened (or, renamed under the same CVE, a
    # changed) finding; every opened finding is for such an advisory.
    after = {s.key: s for s in load_report(store, digest).findings}  # type: ignore[union-attr]
    touched = {e.finding_key for e in events if e.event in ("opened", "changed")}
    assert new_ids <= {i for k in touched for i in after[k].finding.advisory_ids}
    for e in opened:
        assert set(after[e.finding_key].finding.advisory_ids) & new_ids, e
    # PyPA renamed PYSEC-0000-CVE-2022-40897 to PYSEC-2022-43012: one finding, changed, not closed.
    renamed = [e for e in events if e.event == "changed" and "advisory_ids" in e.changes]
    assert [e.changes["advisory_ids"] for e in renamed] == [[["PYSEC-0000-CVE-2022-40897"], ["PYSEC-2022-43012"]]]
    assert not [e for e in events if e.event == "closed"]

    # What the re-match left is what a fresh scan against the new data finds.
    direct = match_packages(scenarios.catalog(images_dir, "debian12-python").packages,
                            scenarios.index(feeds_dir, AFTER))
    assert {(f.id, f.package.id) for f in direct.findings} == pairs(after.values())
    assert load_report(store, digest).scan.total == len(after)  # type: ignore[union-attr]

    # Nothing new: nothing to do. A full re-match of an up-to-date store writes nothing either.
    assert rematch(store).events == 0
    full = rematch(store, full=True)
    assert (full.images_considered, full.events, full.images_written) == (1, 0, 0)
    assert len(stored_findings_events(store, before_sync)) == len(events)


def stored_findings_events(store: Store, since: int | None) -> list[stored_findings.FindingEvent]:
    with store.session(write=False) as session:
        return stored_findings.finding_events(session, since)


def listed(advisory_id: str, name: str, fixed: str, *, aliases: tuple[str, ...] = ()) -> Advisory:
    return Advisory(id=advisory_id, source="list", modified=datetime(2024, 1, 1, tzinfo=UTC), aliases=aliases,
                    affected=(Affected(ecosystem="PyPI", name=name, ranges=(
                        AffectedRange("ECOSYSTEM", (("introduced", "0"), ("fixed", fixed))),)),))


def test_fixes_withdrawals_and_kev_move_findings(store: Store, images_dir: Path, tmp_path: Path) -> None:
    settings = FeedSettings(name="list", kind="osv", url="test://list")
    digest = store_image(store, images_dir)
    installed = {p.name.lower(): p.version for p in scenarios.catalog(images_dir, "debian12-python").packages
                 if p.ecosystem == "PyPI"}
    assert installed["requests"] == "2.25.1" and installed["urllib3"] == "1.26.4"

    records = [listed("TEST-REQ", "requests", "99.0", aliases=("CVE-2099-0001",)),
               listed("TEST-URL", "urllib3", "99.0", aliases=("CVE-2099-0002",)),
               listed("TEST-OTHER", "not-installed-anywhere", "1.0")]
    sync_feed(store, settings, workdir=tmp_path / "w", feed=ListFeed(records))
    scan = scan_image(store, digest)
    assert {s.finding.id for s in scan.findings} == {"TEST-REQ", "TEST-URL"}
    start = store.latest_sync_id()

    # requests gets fixed below the installed version (no longer affected), urllib3's advisory is
    # withdrawn, and CVE-2099-0001 ... joins KEV: only the first two close; KEV is added later.
    delta = ListFeed([listed("TEST-REQ", "requests", "2.0", aliases=("CVE-2099-0001",)), Withdrawn("TEST-URL")],
                     fingerprint="v2", complete=False)
    sync_feed(store, settings, workdir=tmp_path / "w", feed=delta)
    report = rematch(store)
    assert (report.opened, report.closed, report.changed) == (0, 2, 0)
    events = stored_findings_events(store, start)
    assert sorted((e.event, e.advisory_id) for e in events) == [("closed", "TEST-REQ"), ("closed", "TEST-URL")]
    assert load_report(store, digest).findings == []  # type: ignore[union-attr]
    assert load_report(store, digest).scan.total == 0  # type: ignore[union-attr]

    # Reopen requests' advisory, then KEV lists its CVE: one "changed" event with the KEV fields.
    mid = store.latest_sync_id()
    sync_feed(store, settings, workdir=tmp_path / "w", feed=ListFeed(
        [listed("TEST-REQ", "requests", "99.0", aliases=("CVE-2099-0001",))], fingerprint="v3", complete=False))
    assert rematch(store).opened == 1
    kev = FeedSettings(name="kev-list", kind="kev", url="test://kev")
    sync_feed(store, kev, workdir=tmp_path / "k", feed=ListFeed(
        [Exploitability(cve="CVE-2099-0001", kev_date_added="2026-12-01")], fingerprint="k1"))
    report = rematch(store)
    assert (report.cves, report.opened, report.closed, report.changed) == (1, 0, 0, 1)
    changed = [e for e in stored_findings_events(store, mid) if e.event == "changed"]
    assert [e.changes.get("kev") for e in changed] == [[False, True]]
    finding = load_report(store, digest).findings[0].finding  # type: ignore[union-attr]
    assert (finding.kev, finding.kev_date_added) == (True, "2026-12-01")
    assert load_report(store, digest).scan.kev == 1  # type: ignore[union-attr]


def test_events_since_a_time_and_only_for_scanned_images(store: Store, images_dir: Path, tmp_path: Path) -> None:
    settings = FeedSettings(name="list", kind="osv", url="test://list")
    scanned = store_image(store, images_dir)
    never_scanned = store_image(store, images_dir, "debian12-python-v2")
    sync_feed(store, settings, workdir=tmp_path / "w", feed=ListFeed([listed("TEST-A", "requests", "99.0")]))
    scan_image(store, scanned)
    t0 = datetime.now(UTC)
    sync_feed(store, settings, workdir=tmp_path / "w", feed=ListFeed(
        [listed("TEST-B", "requests", "99.0")], fingerprint="v2", complete=False))
    report = rematch(store)
    assert report.images_considered == 1  # the cataloged-but-never-scanned image waits for its scan
    with store.session(write=False) as session:
        events = stored_findings.finding_events(session, t0)
        assert [(e.event, e.advisory_id, e.image_digest) for e in events] == [("opened", "TEST-B", scanned)]
        assert stored_findings.image_scan(session, never_scanned) is None
    # Its first scan sees everything at once.
    assert {s.finding.id for s in scan_image(store, never_scanned).findings} >= {"TEST-A", "TEST-B"}


def test_nvd_scores_findings_whose_advisories_give_no_cvss(store: Store, feeds_dir: Path, images_dir: Path,
                                                           tmp_path: Path) -> None:
    """PyPA's PYSEC-2023-74 (requests, CVE-2023-32681) carries no severity; NVD scores it 6.1 (medium)."""
    sync_zip(store, feeds_dir, AFTER, tmp_path)
    digest = store_image(store, images_dir)

    def requests_finding() -> Any:
        [s] = [s for s in load_report(store, digest).findings  # type: ignore[union-attr]
               if "CVE-2023-32681" in s.finding.aliases]
        return s.finding

    scan_image(store, digest)
    assert (requests_finding().severity, requests_finding().cvss_score) == ("unknown", None)
    start = store.latest_sync_id()

    # NVD arrives after the scan: the re-match scores the findings naming its CVEs, nothing else.
    report = sync_feed(store, FeedSettings(name="nvd", kind="nvd", url=str(feeds_dir / "nvd" / "records")),
                       workdir=tmp_path / "nvd")
    assert report.status == "ok", report
    done = rematch(store)
    assert done.opened == done.closed == 0 and done.changed > 0
    finding = requests_finding()
    assert (finding.severity, finding.cvss_score, finding.severity_source) == ("medium", 6.1, "CVSS_V3")
    assert finding.cvss_vector == "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"
    assert "nvd@nist.gov" in finding.cvss_source
    changed = {e.advisory_id: e.changes for e in stored_findings_events(store, start)}
    assert changed["PYSEC-2023-74"]["severity"] == ["unknown", "medium"]
    # A record's own rating is never overridden: only findings without CVSS were touched.
    assert all(set(c) <= {"severity", "cvss_score"} for c in changed.values())
    # The same result as scanning with NVD already there.
    assert scan_image(store, digest).changed == 0


def test_an_advisory_fetched_in_two_lookups_is_one_advisory(store: Store, tmp_path: Path) -> None:
    """One record naming two packages (as GHSA does for lodash and lodash-es), asked for one name at a
    time and then both: returned once, so a finding never carries its details twice."""
    from keelwatch.match.scan import MemoLookup

    both = Advisory(id="TEST-BOTH", source="list", modified=datetime(2024, 1, 1, tzinfo=UTC), affected=tuple(
        Affected(ecosystem="PyPI", name=name, ranges=(AffectedRange("ECOSYSTEM", (("introduced", "0"),
                                                                                   ("fixed", "9"))),))
        for name in ("alpha", "beta")))
    sync_feed(store, FeedSettings(name="list", kind="osv", url="test://list"), workdir=tmp_path / "w",
              feed=ListFeed([both]))
    with store.session(write=False) as session:
        lookup = MemoLookup(session)
        assert [a.id for a in lookup.advisories_for("PyPI", ["alpha"])] == ["TEST-BOTH"]
        assert [a.id for a in lookup.advisories_for("PyPI", ["beta"])] == ["TEST-BOTH"]
        assert [a.id for a in lookup.advisories_for("PyPI", ["alpha", "beta"])] == ["TEST-BOTH"]
