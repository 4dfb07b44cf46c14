"""The matcher's rules, one at a time, on small records (real ones from the shared feeds where they exist)."""

from __future__ import annotations

import json
import random
import zipfile
from datetime import UTC, datetime

import pytest

from keelwatch.feeds.osv import advisory_from_osv
from keelwatch.match import AdvisoryIndex, match_packages
from keelwatch.model import Advisory, Affected, AffectedRange, Exploitability, Package, Severity

WITHDRAWN = datetime(2023, 7, 25, tzinfo=UTC)


def rng(*events: tuple[str, str], type: str = "ECOSYSTEM", repo: str = "") -> AffectedRange:
    return AffectedRange(type=type, events=tuple(events), repo=repo)


def adv(id: str, *affected: Affected, aliases: tuple[str, ...] = (), upstream: tuple[str, ...] = (),
        withdrawn: datetime | None = None, severity: tuple[Severity, ...] = (), database_specific: str = "",
        source: str = "test") -> Advisory:
    return Advisory(id=id, source=source, aliases=aliases, upstream=upstream, withdrawn=withdrawn,
                    severity=severity, affected=affected, database_specific=database_specific)


def pypi(name: str, *ranges: AffectedRange, versions: tuple[str, ...] = (), **kw) -> Affected:
    return Affected(ecosystem="PyPI", name=name, ranges=ranges, versions=versions, **kw)


def lang(name: str, version: str, ecosystem: str = "PyPI", **kw) -> Package:
    return Package(ecosystem=ecosystem, name=name, version=version, kind="lang", purl=f"pkg:x/{name}@{version}",
                   layer_digest="sha256:aa", **kw)


def deb(name: str, version: str, source: str = "", source_version: str = "", ecosystem: str = "Debian:11") -> Package:
    return Package(ecosystem=ecosystem, name=name, version=version, kind="os", source_name=source or name,
                   source_version=source_version or version, layer_digest="sha256:bb")


def match(packages, *advisories, **kw):
    return match_packages(packages, AdvisoryIndex(advisories), **kw)


def ids(result) -> list[tuple[str, str]]:
    return [(f.package.name, f.id) for f in result.findings]


def shared_record(feeds_dir, zip_name: str, record: str) -> Advisory:
    with zipfile.ZipFile(feeds_dir / "osv" / zip_name) as archive:
        return advisory_from_osv(json.loads(archive.read(f"{record}.json")), source=zip_name.removesuffix(".zip"))


# --- ranges, versions lists, withdrawn ---------------------------------------------------------------------


def test_introduced_zero_without_fix_is_affected_with_no_fix():
    result = match([lang("foo", "9.9")], adv("A-1", pypi("foo", rng(("introduced", "0")))))
    (finding,) = result.findings
    assert finding.fixed_versions == () and not finding.fix_available


def test_fixed_is_the_first_safe_version():
    record = adv("A-1", pypi("foo", rng(("introduced", "1.0"), ("fixed", "1.2"))))
    assert ids(match([lang("foo", "1.1.9")], record)) == [("foo", "A-1")]
    assert ids(match([lang("foo", "1.2")], record)) == []
    assert ids(match([lang("foo", "0.9")], record)) == []


def test_last_affected_is_the_last_vulnerable_version(feeds_dir):
    record = shared_record(feeds_dir, "PyPI.zip", "PYSEC-2022-42969")  # py: introduced 0, last_affected 1.11.0
    assert ids(match([lang("py", "1.11.0")], record)) == [("py", "PYSEC-2022-42969")]
    assert ids(match([lang("py", "1.11.1")], record)) == []


def test_versions_list_alone_decides(feeds_dir):
    record = shared_record(feeds_dir, "PyPI.zip", "PYSEC-2024-1")  # gratient: versions ["0.5"], no ranges
    assert ids(match([lang("gratient", "0.5")], record)) == [("gratient", "PYSEC-2024-1")]
    assert ids(match([lang("gratient", "0.5.0")], record)) == [("gratient", "PYSEC-2024-1")]  # PEP 440: same
    assert ids(match([lang("gratient", "0.6")], record)) == []
    (detail,) = match([lang("gratient", "0.5")], record).findings[0].details
    assert detail.listed and detail.ranges == ()


def test_versions_list_or_ranges_either_is_enough():
    record = adv("A-1", pypi("foo", rng(("introduced", "2.0"), ("fixed", "2.1")), versions=("1.0",)))
    assert ids(match([lang("foo", "1.0")], record)) == [("foo", "A-1")]
    assert ids(match([lang("foo", "2.0.5")], record)) == [("foo", "A-1")]
    assert ids(match([lang("foo", "1.5")], record)) == []


def test_a_legacy_version_listed_verbatim_matches_although_it_cannot_be_ordered():
    record = adv("A-1", pypi("foo", rng(("introduced", "0"), ("fixed", "1.0")), versions=("0.3m1",)))
    result = match([lang("foo", "0.3m1")], record)
    assert ids(result) == [("foo", "A-1")] and result.unknowns == []


def test_withdrawn_advisories_never_match(feeds_dir):
    record = shared_record(feeds_dir, "PyPI.zip", "PYSEC-2021-13")  # flask-caching, withdrawn 2023-07-25
    assert record.withdrawn is not None
    result = match([lang("Flask-Caching", "2.0.0")], record)
    assert result.findings == [] and result.unknowns == []
    live = adv("A-1", pypi("foo", rng(("introduced", "0"))), withdrawn=WITHDRAWN)
    assert match([lang("foo", "1.0")], live).findings == []


def test_fixed_versions_are_those_above_the_installed_one_in_version_order():
    record = adv("A-1", pypi("foo", rng(("introduced", "0"), ("fixed", "1.9.5"), ("introduced", "1.10.0"),
                                        ("fixed", "1.10.3")),
                             rng(("introduced", "1.9.6"), ("fixed", "1.9.10"))))
    (finding,) = match([lang("foo", "1.9.7")], record).findings
    assert finding.fixed_versions == ("1.9.10",)  # 1.9.5 fixes an older branch; 1.10.3 is another range
    (finding,) = match([lang("foo", "1.9.0")], record).findings
    assert finding.fixed_versions == ("1.9.5", "1.10.3")  # by version, not by string ("1.10.3" < "1.9.5")


def test_semver_ranges_and_go_stdlib():
    go_range = rng(("introduced", "0"), ("fixed", "1.23.8"), ("introduced", "1.24.0-0"), ("fixed", "1.24.2"),
                   type="SEMVER")
    record = adv("GO-1", Affected(ecosystem="Go", name="stdlib", ranges=(go_range,)))
    (finding,) = match([lang("stdlib", "v1.24.1", ecosystem="Go")], record).findings
    assert finding.fixed_versions == ("1.24.2",)
    assert match([lang("stdlib", "v1.24.2", ecosystem="Go")], record).findings == []


# --- unknowns: never silence ----------------------------------------------------------------------------


def test_git_only_affected_entry_is_an_unknown():
    record = adv("A-1", pypi("foo", rng(("introduced", "abc123"), ("fixed", "def456"), type="GIT",
                                        repo="https://example.org/foo")))
    result = match([lang("foo", "1.0")], record)
    assert result.findings == []
    (unknown,) = result.unknowns
    assert (unknown.kind, unknown.advisory_ids, unknown.package.name) == ("unevaluable", ("A-1",), "foo")
    assert "only GIT ranges" in unknown.reason


def test_git_ranges_beside_ecosystem_ranges_are_skipped():
    record = adv("A-1", pypi("foo", rng(("introduced", "abc"), type="GIT", repo="r"),
                             rng(("introduced", "0"), ("fixed", "2.0"))))
    assert ids(match([lang("foo", "1.0")], record)) == [("foo", "A-1")]
    result = match([lang("foo", "2.0")], record)
    assert result.findings == [] and result.unknowns == []


def test_entry_without_ranges_or_versions_is_an_unknown():
    result = match([lang("foo", "1.0")], adv("A-1", pypi("foo")))
    assert [u.kind for u in result.unknowns] == ["unevaluable"]
    assert "no ranges and no versions" in result.unknowns[0].reason


def test_unparseable_installed_version_is_an_unknown_never_clean():
    records = [adv("A-1", pypi("foo", rng(("introduced", "0"), ("fixed", "2.0")))),
               adv("A-2", pypi("foo", rng(("introduced", "3.0"))))]
    result = match([lang("foo", "not a version!")], *records)
    assert result.findings == []
    (unknown,) = result.unknowns
    assert unknown.kind == "bad-version" and unknown.advisory_ids == ("A-1", "A-2")
    assert "not a version!" in unknown.reason
    # No version at all (a Go module replaced by a local directory): the same.
    assert [u.kind for u in match([lang("foo", "")], *records).unknowns] == ["bad-version"]
    # A package no advisory names needs no version to be judged: nothing to report.
    assert match([lang("bar", "not a version!")], *records).unknowns == []


def test_unparseable_range_bound_is_an_unknown_unless_another_entry_decides():
    bad = pypi("foo", rng(("introduced", "0"), ("fixed", "2019-01-01 (a date)")))
    result = match([lang("foo", "1.0")], adv("A-1", bad))
    assert [(u.kind, u.advisory_ids) for u in result.unknowns] == [("unevaluable", ("A-1",))]
    good = pypi("foo", rng(("introduced", "0"), ("fixed", "2.0")))
    result = match([lang("foo", "1.0")], adv("A-1", bad, good))
    assert ids(result) == [("foo", "A-1")] and result.unknowns == []


def test_ecosystem_without_data_is_one_visible_unknown():
    packages = [deb("libc6", "2.36-9", "glibc", ecosystem="Debian:12"), deb("zlib1g", "1:1.2.13.dfsg-1", "zlib",
                                                                           ecosystem="Debian:12")]
    record = adv("DSA-1", Affected(ecosystem="Debian:11", name="glibc", ranges=(rng(("introduced", "0")),)))
    result = match(packages, record)
    (unknown,) = result.unknowns
    assert (unknown.kind, unknown.ecosystem, unknown.package_count) == ("no-data", "Debian:12", 2)
    assert unknown.reason == "no advisory data for Debian:12 (2 packages not judged)"


def test_a_lookup_that_cannot_tell_its_coverage_still_reports_an_empty_ecosystem():
    result = match_packages([lang("foo", "1.0")], lambda ecosystem, names: [])
    assert [(u.kind, u.ecosystem) for u in result.unknowns] == [("no-data", "PyPI")]
    covered = match_packages([lang("foo", "1.0")], lambda ecosystem, names: [], covered_ecosystems={"PyPI"})
    assert covered.unknowns == []


def test_distro_package_without_release_is_unknown_unless_the_image_tells_it():
    package = deb("libc6", "2.36-9", "glibc", ecosystem="Debian")
    record = adv("DSA-1", Affected(ecosystem="Debian:12", name="glibc", ranges=(rng(("introduced", "0")),)))
    result = match([package], record)
    assert [(u.kind, u.package_count) for u in result.unknowns] == [("no-release", 1)]
    assert ids(match([package], record, image_ecosystem="Debian:12")) == [("libc6", "DSA-1")]


# --- distro packages: source packages, source versions, epochs --------------------------------------------


def test_binary_packages_are_judged_through_their_source(feeds_dir):
    record = shared_record(feeds_dir, "Debian.zip", "DSA-5343-1")  # openssl, fixed 1.1.1n-0+deb11u4
    packages = [deb("libssl1.1", "1.1.1n-0+deb11u3", "openssl"), deb("openssl", "1.1.1n-0+deb11u3")]
    result = match(packages, record)
    assert ids(result) == [("libssl1.1", "DSA-5343-1"), ("openssl", "DSA-5343-1")]
    via_source, direct = result.findings
    assert [(d.kind, d.name, d.version) for d in via_source.details] == [("source", "openssl", "1.1.1n-0+deb11u3")]
    assert [d.kind for d in direct.details] == ["direct"]
    # A DSA's CVEs are its upstream, not aliases.
    assert via_source.aliases == () and "CVE-2023-0286" in via_source.upstream
    assert via_source.fixed_versions == ("1.1.1n-0+deb11u4",)
    assert match([deb("libssl1.1", "1.1.1n-0+deb11u4", "openssl")], record).findings == []


def test_the_source_version_is_compared_not_the_binary_version():
    # libgcc1 carried an epoch its source gcc-10 does not: the binary's "1:10.2.1-6" would be > any fix.
    record = adv("DSA-1", Affected(ecosystem="Debian:11", name="gcc-10",
                                   ranges=(rng(("introduced", "0"), ("fixed", "10.2.1-7")),)))
    package = deb("libgcc1", "1:10.2.1-6", "gcc-10", source_version="10.2.1-6")
    (finding,) = match([package], record).findings
    assert finding.installed_version == "1:10.2.1-6" and finding.details[0].version == "10.2.1-6"
    # binNMU: libbz2-1.0 1.0.8-5+b1 is bzip2 1.0.8-5; no source version recorded → the binary's.
    assert deb("x", "1.0-1+b1", "y", source_version="").source_version == "1.0-1+b1"


def test_epochs_order_before_everything(feeds_dir):
    record = shared_record(feeds_dir, "Debian.zip", "DSA-5218-1")  # zlib, fixed 1:1.2.11.dfsg-2+deb11u2
    assert ids(match([deb("zlib1g", "1:1.2.11.dfsg-2+deb11u1", "zlib")], record)) == [("zlib1g", "DSA-5218-1")]
    assert match([deb("zlib1g", "1:1.2.11.dfsg-2+deb11u2", "zlib")], record).findings == []
    # Without its epoch the same upstream version is older than any 1: version.
    assert ids(match([deb("zlib1g", "1.2.13.dfsg-9", "zlib")], record)) == [("zlib1g", "DSA-5218-1")]
    assert match([deb("zlib1g", "2:1.0-1", "zlib")], record).findings == []


def test_rpm_packages_are_searched_by_binary_and_source_name():
    record = adv("RHSA-1", Affected(ecosystem="Red Hat:9", name="openssl-libs",
                                    ranges=(rng(("introduced", "0"), ("fixed", "1:3.0.7-25.el9")),)),
                 Affected(ecosystem="Red Hat:9", name="openssl",
                          ranges=(rng(("introduced", "0"), ("fixed", "1:3.0.7-25.el9")),)))
    package = Package(ecosystem="Red Hat:9", name="openssl-libs", version="1:3.0.7-24.el9", kind="os",
                      source_name="openssl", source_version="1:3.0.7-24.el9")
    (finding,) = match([package], record).findings
    assert [(d.kind, d.name) for d in finding.details] == [("direct", "openssl-libs"), ("source", "openssl")]


# --- one finding per alias group ---------------------------------------------------------------------------


def test_one_advisory_with_several_aliases_is_one_finding():
    record = adv("PYSEC-2021-1", pypi("foo", rng(("introduced", "0"))),
                 aliases=("GHSA-aaaa", "CVE-2021-10", "CVE-2021-9"))
    (finding,) = match([lang("foo", "1.0")], record).findings
    assert finding.aliases == ("CVE-2021-9", "CVE-2021-10", "GHSA-aaaa")  # CVEs first, natural order


def test_advisories_that_are_aliases_of_each_other_are_one_finding_with_every_id():
    pysec = adv("PYSEC-2022-5", pypi("foo", rng(("introduced", "0"), ("fixed", "1.5"))),
                aliases=("CVE-2022-1", "GHSA-bbbb"))
    # The two databases disagree on the fix (it happens): the finding keeps both.
    ghsa = adv("GHSA-bbbb", pypi("foo", rng(("introduced", "0"), ("fixed", "1.5.1")),
                                 rng(("introduced", "2.0"), ("fixed", "2.1"))),
               aliases=("CVE-2022-1",), database_specific='{"severity": "HIGH"}')
    (finding,) = match([lang("foo", "1.0")], ghsa, pysec).findings
    assert finding.id == "PYSEC-2022-5"  # the ecosystem's own database first
    assert finding.advisory_ids == ("PYSEC-2022-5", "GHSA-bbbb")
    assert finding.aliases == ("CVE-2022-1", "GHSA-bbbb")
    assert [d.advisory_id for d in finding.details] == ["GHSA-bbbb", "PYSEC-2022-5"]
    # Fixes of the ranges that hold 1.0 only: 2.1 fixes a branch the package is not on.
    assert finding.fixed_versions == ("1.5", "1.5.1") and finding.severity == "high"


def test_aliases_join_transitively_through_a_shared_cve():
    a = adv("PYSEC-1", pypi("foo", rng(("introduced", "0"))), aliases=("CVE-1",))
    b = adv("GHSA-x", pypi("foo", rng(("introduced", "0"))), aliases=("CVE-1",))
    c = adv("OSV-2", pypi("foo", rng(("introduced", "0"))), aliases=("CVE-2",))
    result = match([lang("foo", "1.0")], a, b, c)
    assert [(f.id, f.advisory_ids) for f in result.findings] == [("OSV-2", ("OSV-2",)),
                                                                  ("PYSEC-1", ("PYSEC-1", "GHSA-x"))]


def test_upstream_ids_do_not_merge_findings():
    a = adv("DSA-1", Affected(ecosystem="Debian:11", name="openssl", ranges=(rng(("introduced", "0")),)),
            upstream=("CVE-1", "CVE-2"))
    b = adv("DLA-2", Affected(ecosystem="Debian:11", name="openssl", ranges=(rng(("introduced", "0")),)),
            upstream=("CVE-2",))
    result = match([deb("openssl", "1.0-1")], a, b)
    assert [f.id for f in result.findings] == ["DLA-2", "DSA-1"]


def test_alias_groups_are_per_package():
    a = adv("PYSEC-1", pypi("foo", rng(("introduced", "0"))), aliases=("CVE-1",))
    b = adv("GHSA-x", pypi("bar", rng(("introduced", "0"))), aliases=("CVE-1",))
    result = match([lang("foo", "1.0"), lang("bar", "1.0")], a, b)
    assert ids(result) == [("bar", "GHSA-x"), ("foo", "PYSEC-1")]


# --- severity ---------------------------------------------------------------------------------------------

V3_CRITICAL = Severity("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "nvd")
V3_HIGH = Severity("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, "ghsa")
V4_MEDIUM = Severity("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N", 6.9, "ghsa")


def _finding(record: Advisory, version: str = "1.0"):
    (finding,) = match([lang("foo", version)], record).findings
    return finding


def test_vendor_rating_wins_and_the_highest_cvss_is_still_recorded():
    record = adv("GHSA-1", pypi("foo", rng(("introduced", "0"))), severity=(V3_CRITICAL,),
                 database_specific='{"severity": "MODERATE"}')
    finding = _finding(record)
    assert (finding.severity, finding.severity_source) == ("medium", "GHSA")
    assert (finding.cvss_score, finding.cvss_vector, finding.cvss_source) == (9.8, V3_CRITICAL.score, "nvd")


def test_vendor_scale_in_severity_list_and_per_package_rating_first():
    debian_low = Severity("Debian", "unimportant", None, "debian")
    record = adv("DSA-1", pypi("foo", rng(("introduced", "0")), severity=(Severity("Ubuntu", "high"),)),
                 severity=(debian_low, V3_CRITICAL))
    assert (_finding(record).severity, _finding(record).severity_source) == ("high", "Ubuntu")
    record = adv("DSA-1", pypi("foo", rng(("introduced", "0"))), severity=(debian_low, V3_CRITICAL))
    assert (_finding(record).severity, _finding(record).severity_source) == ("low", "Debian")


def test_without_vendor_rating_the_highest_cvss_score_sets_the_label():
    record = adv("A-1", pypi("foo", rng(("introduced", "0"))), severity=(V4_MEDIUM, V3_HIGH))
    finding = _finding(record)
    assert (finding.severity, finding.severity_source, finding.cvss_score) == ("high", "CVSS_V3", 7.5)


@pytest.mark.parametrize(("score", "label"), [(10.0, "critical"), (9.0, "critical"), (8.9, "high"), (7.0, "high"),
                                              (6.9, "medium"), (4.0, "medium"), (3.9, "low"), (0.1, "low"),
                                              (0.0, "low")])
def test_cvss_qualitative_scale(score, label):
    record = adv("A-1", pypi("foo", rng(("introduced", "0"))), severity=(Severity("CVSS_V3", "CVSS:3.1/…", score),))
    assert _finding(record).severity == label


def test_no_rating_at_all_is_unknown():
    unscored = Severity("CVSS_V4", "CVSS:4.0/garbage", None)
    finding = _finding(adv("A-1", pypi("foo", rng(("introduced", "0"))), severity=(unscored,)))
    assert (finding.severity, finding.cvss_score) == ("unknown", None)


# --- KEV and EPSS -------------------------------------------------------------------------------------------


def test_kev_and_epss_by_cve_alias_and_upstream():
    facts = {
        "CVE-1": Exploitability("CVE-1", kev_date_added="2023-05-01", epss=0.2, epss_percentile=0.9),
        "CVE-2": Exploitability("CVE-2", kev_date_added="2022-01-10", epss=0.5, epss_percentile=0.97),
        "CVE-9": Exploitability("CVE-9", epss=0.9, epss_percentile=0.99),
    }
    pysec = adv("PYSEC-1", pypi("foo", rng(("introduced", "0"))), aliases=("CVE-1", "CVE-2"))
    dsa = adv("DSA-1", Affected(ecosystem="Debian:11", name="bar", ranges=(rng(("introduced", "0")),)),
              upstream=("CVE-9",))
    asked = []

    def lookup(cves):
        asked.append(list(cves))
        return {c: facts[c] for c in cves if c in facts}

    result = match([lang("foo", "1.0"), deb("bar", "1-1")], pysec, dsa, exploitability_lookup=lookup)
    by_id = {f.id: f for f in result.findings}
    assert (by_id["PYSEC-1"].kev, by_id["PYSEC-1"].kev_date_added) == (True, "2022-01-10")
    assert (by_id["PYSEC-1"].epss, by_id["PYSEC-1"].epss_percentile) == (0.5, 0.97)
    assert (by_id["DSA-1"].kev, by_id["DSA-1"].epss) == (False, 0.9)
    assert asked == [["CVE-1", "CVE-2", "CVE-9"]]  # one batch per run
    # A plain mapping works as well.
    mapped = match([lang("foo", "1.0")], pysec, exploitability_lookup=facts)
    assert mapped.findings[0].kev


# --- speed-minded behaviour and determinism -------------------------------------------------------------


def test_one_lookup_per_ecosystem_and_one_decision_per_distinct_search():
    calls = []
    index = AdvisoryIndex([adv("DSA-1", Affected(ecosystem="Debian:11", name="openssl",
                                                 ranges=(rng(("introduced", "0"), ("fixed", "9")),)))])

    def lookup(ecosystem, names):
        calls.append((ecosystem, list(names)))
        return index(ecosystem, names)

    packages = [deb("libssl1.1", "1.1-1", "openssl"), deb("openssl", "1.1-1"), deb("libc6", "2.31-1", "glibc"),
                lang("foo", "1.0"), lang("Foo", "1.0")]
    result = match_packages(packages, lookup, covered_ecosystems={"Debian:11", "PyPI"})
    assert calls == [("Debian:11", ["glibc", "openssl"]), ("PyPI", ["foo"])]
    assert len(result.findings) == 2


def test_order_is_deterministic():
    records = [adv(f"A-{i}", pypi(f"p{i % 7}", rng(("introduced", "0")))) for i in range(40)]
    packages = [lang(f"p{i}", f"1.{i}") for i in range(7)]
    first = match(packages, *records)
    shuffled = packages[:]
    random.Random(4).shuffle(shuffled)
    again = match(shuffled, *reversed(records))
    assert first.findings == again.findings
    assert [f.id for f in first.findings][:3] == ["A-0", "A-7", "A-14"]  # natural id order per package
