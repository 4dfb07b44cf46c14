"""Accuracy on real data: the shared images against the shared OSV feeds, held to the oracle's pinned truth.

For each scenario the matcher's (advisory, package, version) set must equal the one in
``tests/match/data/<scenario>.tsv`` exactly — every advisory found, and no other — and that file
must still be what the independent oracle derives from the raw feed (so nobody hand-edits it into
agreement). Counts are asserted too, so a silently shrinking image or feed cannot pass.
"""

from __future__ import annotations

import pytest

from keelwatch.match import match_packages, normalise_name
from keelwatch.model import Finding, Unknown

from . import oracle
from .scenarios import SCENARIOS, Row, advisories, catalog, index, oracle_packages, read_expected, rows_of

# Scenario → (findings, distinct advisory ids, unknowns) the pinned data holds; see the data files.
COUNTS = {
    "debian12-python.PyPI": (31, 31, 0),
    "debian12-python.PyPI-before-2023": (11, 11, 0),
    "go-tools.Go": (103, 73, 0),  # stdlib twice (go1.24.1 and go1.26.1), golang.org/x/sys twice
    "node-app.npm": (33, 33, 0),
    "java-app.Maven": (7, 7, 0),
    "debian11-openssl.Debian": (0, 0, 0),
}


def _matched(scenario_name: str, images_dir, feeds_dir):
    scenario = SCENARIOS[scenario_name]
    result = catalog(images_dir, scenario.image)
    packages = [p for p in result.packages if p.ecosystem == scenario.ecosystem]
    assert packages, f"{scenario.image} has no {scenario.ecosystem} packages"
    image_ecosystem = result.image.os.ecosystem if result.image.os else None
    return match_packages(packages, index(feeds_dir, scenario.feed), image_ecosystem=image_ecosystem)


def _search_name(ecosystem: str, name: str) -> str:
    return oracle.canonical(ecosystem.split(":")[0], name)


def finding_rows(findings: list[Finding]) -> set[Row]:
    """(advisory, searched name, compared version, "affected") for every advisory of every finding."""
    return {(d.advisory_id, d.name, d.version, "affected") for f in findings for d in f.details}


def unknown_rows(unknowns: list[Unknown]) -> set[Row]:
    rows = set()
    for u in unknowns:
        assert u.package is not None, f"ecosystem-wide unknown where the data has records: {u.reason}"
        p = u.package
        name = p.source_name or p.name if p.kind == "os" else p.name
        version = (p.source_version or p.version) if p.kind == "os" else p.version
        rows.update((a, _search_name(p.ecosystem, name), version, "unknown") for a in u.advisory_ids)
    return rows


@pytest.mark.datasets
@pytest.mark.parametrize("scenario_name", sorted(SCENARIOS))
def test_pinned_expectations_are_the_oracles(scenario_name, images_dir, feeds_dir):
    scenario = SCENARIOS[scenario_name]
    packages = oracle_packages(catalog(images_dir, scenario.image), scenario.ecosystem)
    derived = rows_of(oracle.expectations(packages, oracle.raw_records(feeds_dir / "osv" / scenario.feed)))
    assert read_expected(scenario.data_file) == derived, (
        f"{scenario.data_file.name} is not what the oracle derives: re-run tests/match/make_expected.py and review")


@pytest.mark.datasets
@pytest.mark.parametrize("scenario_name", sorted(SCENARIOS))
def test_matcher_finds_exactly_the_expected_advisories(scenario_name, images_dir, feeds_dir):
    expected = read_expected(SCENARIOS[scenario_name].data_file)
    result = _matched(scenario_name, images_dir, feeds_dir)
    got = finding_rows(result.findings) | unknown_rows(result.unknowns)
    missing = {row: expected[row] for row in set(expected) - got}
    extra = got - set(expected)
    assert not missing and not extra, f"missing (with the oracle's why): {missing}\nunexpected: {sorted(extra)}"
    ids = {i for f in result.findings for i in f.advisory_ids}
    assert (len(result.findings), len(ids), len(result.unknowns)) == COUNTS[scenario_name]


@pytest.mark.datasets
def test_each_finding_names_its_advisory_package_and_fix(images_dir, feeds_dir):
    result = _matched("debian12-python.PyPI", images_dir, feeds_dir)
    by_id = {(f.id, f.package.name): f for f in result.findings}
    django = by_id[("PYSEC-2022-190", "Django")]
    assert django.aliases == ("CVE-2022-28346", "GHSA-2gwj-7jmv-h26r")  # CVE first
    assert django.installed_version == "3.2.12"
    assert django.package.purl == "pkg:pypi/django@3.2.12"
    # Fixes above the installed version, in version order (2.2.28 fixes an older branch: left out).
    assert django.fixed_versions == ("3.2.13", "4.0.4") and django.fix_available
    assert django.layer_digest == django.package.layer_digest != ""
    (detail,) = django.details
    assert (detail.kind, detail.ecosystem, detail.name, detail.version, detail.source) == (
        "direct", "PyPI", "django", "3.2.12", "PyPI")
    # The whole range that holds 3.2.12 (one range, three release branches), and the versions list.
    assert detail.listed and [r.events for r in detail.ranges] == [(
        ("introduced", "4.0"), ("fixed", "4.0.4"), ("introduced", "3.2"), ("fixed", "3.2.13"),
        ("introduced", "2.2"), ("fixed", "2.2.28"))]


@pytest.mark.datasets
def test_debian_images_without_release_data_are_unknown_not_clean(images_dir, feeds_dir):
    result = catalog(images_dir, "debian12-python")
    matched = match_packages(result.packages, index(feeds_dir, "Debian.zip", "PyPI.zip"),
                             image_ecosystem=result.image.os.ecosystem)
    (unknown,) = [u for u in matched.unknowns if u.ecosystem == "Debian:12"]
    assert unknown.kind == "no-data" and unknown.package is None
    assert unknown.reason == "no advisory data for Debian:12 (39 packages not judged)"
    assert unknown.package_count == 39
    assert not [f for f in matched.findings if f.package.kind == "os"]
    assert len(matched.findings) == 31  # the PyPI half is judged as usual


@pytest.mark.datasets
def test_debian11_binaries_are_looked_up_by_source_package(images_dir, feeds_dir):
    result = catalog(images_dir, "debian11-openssl")
    asked: list[tuple[str, tuple[str, ...]]] = []
    lookup = index(feeds_dir, "Debian.zip")

    class Spy:
        def __call__(self, ecosystem, names):
            asked.append((ecosystem, tuple(names)))
            return lookup(ecosystem, names)

        def ecosystems(self):
            return lookup.ecosystems()

    matched = match_packages(result.packages, Spy(), image_ecosystem="Debian:11")
    ((ecosystem, names),) = asked
    assert ecosystem == "Debian:11"
    assert {"openssl", "curl", "krb5", "gnutls28", "zlib"} <= set(names)
    assert not {"libssl1.1", "libcurl4", "libgnutls30"} & set(names)
    # Every DSA/DLA for these sources is fixed at or below the installed source version (the image
    # carries Debian 11's security updates up to 2026); the release has data, so nothing is unknown.
    assert matched.findings == [] and matched.unknowns == []


# --- replay: the pure-matching half of the re-match check ------------------------------------------------


@pytest.mark.datasets
def test_replay_difference_is_exactly_the_post_cutoff_advisories(images_dir, feeds_dir):
    """Match one image against the 2022-12-30 snapshot and the 2024-10 one: what changes is the feed's delta.

    Opened: every record added to the database after the cutoff whose ranges hold an installed
    version — 21, all absent from the old snapshot (two, for certifi and setuptools, carry a
    December 2022 CVE date but were added in 2023). Closed: one record the new snapshot deleted,
    PYSEC-0000-CVE-2022-40897 (setuptools): its CVE lives on as PYSEC-2022-43012, which opens.
    """
    before = _matched("debian12-python.PyPI-before-2023", images_dir, feeds_dir)
    after = _matched("debian12-python.PyPI", images_dir, feeds_dir)
    opened = {row[0] for row in finding_rows(after.findings) - finding_rows(before.findings)}
    closed = {row[0] for row in finding_rows(before.findings) - finding_rows(after.findings)}

    old_ids = {a.id for a in advisories(feeds_dir, "PyPI.before-2023-01-01.zip")}
    new_ids = {a.id for a in advisories(feeds_dir, "PyPI.zip")}
    affecting_old = {row[0] for row in read_expected(SCENARIOS["debian12-python.PyPI-before-2023"].data_file)}
    affecting_new = {row[0] for row in read_expected(SCENARIOS["debian12-python.PyPI"].data_file)}
    assert opened == {i for i in affecting_new if i not in old_ids}
    assert closed == {i for i in affecting_old if i not in new_ids}
    assert len(opened) == 21 and closed == {"PYSEC-0000-CVE-2022-40897"}
    assert "PYSEC-2022-43012" in opened
    # The 19 records changed in place between the snapshots change no verdict on this image.
    assert affecting_old & affecting_new == {i for i in affecting_old if i in new_ids}


def test_normalised_names_meet_the_oracles():
    for ecosystem, name in (("PyPI", "Jinja2"), ("PyPI", "PyYAML"), ("PyPI", "zope.interface")):
        assert normalise_name(ecosystem, name) == oracle.canonical(ecosystem, name)
