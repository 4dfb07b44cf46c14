"""SemVer 2.0.0 (semver.org §11), npm's dialect, and Go's (v prefix, shorthands, pseudo-versions)."""

from __future__ import annotations

import pytest

from keelwatch.errors import VersionError
from keelwatch.versions import sort_key

from .helpers import assert_equal, assert_increasing, assert_relation


@pytest.mark.parametrize("ecosystem", ["crates.io", "Hex", "npm", "Go", "SwiftURL"])
def test_semver_org_precedence(ecosystem: str) -> None:
    # The two examples of semver.org §11, verbatim.
    assert_increasing(ecosystem, ["1.0.0", "2.0.0", "2.1.0", "2.1.1"])
    assert_increasing(ecosystem, ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
                                  "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"])


@pytest.mark.parametrize(("a", "b"), [("1.0.0+build.1", "1.0.0"), ("1.0.0-rc.1+a", "1.0.0-rc.1+b")])
def test_build_metadata_is_ignored(a: str, b: str) -> None:
    assert_equal("crates.io", a, b)


def test_numeric_identifiers() -> None:
    assert_increasing("npm", ["1.0.0-2", "1.0.0-10", "1.0.0-10a", "1.0.0-2a", "1.0.0-a"])
    assert_increasing("npm", ["9.0.0", "10.0.0", "10.0.10", "10.10.0"])


@pytest.mark.parametrize("version", [
    "1", "1.0", "1.0.0.0", "01.0.0", "1.00.0", "1.0.0-01", "1.0.0-", "1.0.0+", "1.0.0-a..b", "1.0.0-a_b",
    "v1.0.0", " 1.0.0", "1.0.0\n", "", "latest",
])
def test_strict_semver_refuses(version: str) -> None:
    with pytest.raises(VersionError, match="semver"):
        sort_key("crates.io", version)


def test_npm_dialect() -> None:
    # node-semver's strict parse takes one 'v' and surrounding blanks; advisories use partials.
    assert_equal("npm", "v1.2.3", "1.2.3")
    assert_equal("npm", " 1.2.3 ", "1.2.3")
    assert_equal("npm", "1.0", "1.0.0")  # GHSA-r683-j2x4-v87g: introduced "1.0"
    assert_equal("npm", "2", "2.0.0")
    for bad in ("=1.2.3", "vv1.2.3", "1.2.3.4", "01.2.3", "1.0-rc1"):
        with pytest.raises(VersionError, match="npm"):
            sort_key("npm", bad)


def test_go_v_prefix_and_shorthands() -> None:
    # OSV's Go records drop the 'v'; binaries and go.mod keep it.
    assert_equal("Go", "v1.2.3", "1.2.3")
    assert_equal("Go", "v1.22", "v1.22.0")  # golang.org/x/mod/semver: v1.22 is shorthand
    assert_equal("Go", "v2", "v2.0.0")
    assert_equal("Go", "v2.0.0+incompatible", "2.0.0")
    for bad in ("1.22", "v1.2-pre", "v01.2.3", "go1.22.5", "1.2.3.4"):
        with pytest.raises(VersionError, match="go"):
            sort_key("Go", bad)


def test_go_pseudo_versions() -> None:
    # The three pseudo-version forms (go.dev/ref/mod#pseudo-versions), each after the version it
    # derives from and before the next release, and ordered by commit time.
    assert_increasing("Go", [
        "v0.0.0-20191109021931-daa7c04131f5",
        "v0.0.0-20200101000000-000000000000",
        "v1.2.3",
        "v1.2.4-0.20191109021931-daa7c04131f5",
        "v1.2.4-0.20200101000000-ffffffffffff",
        "v1.2.4-pre",
        "v1.2.4-pre.0.20191109021931-daa7c04131f5",
        "v1.2.4",
    ])
    # One second apart, one with the 'v' a binary reports and one without as OSV writes it.
    assert_relation("Go", "v0.0.0-20200220183623-bac4c82f6975", ">", "0.0.0-20200220183622-bac4c82f6975")
