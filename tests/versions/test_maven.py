"""Maven ordering: vectors from Maven's ComparableVersionTest, and the order's known oddities."""

from __future__ import annotations

import pytest

from keelwatch.errors import VersionError
from keelwatch.versions import compare, sort_key

from .helpers import assert_equal, assert_increasing

VERSIONS_QUALIFIER = [
    "1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123", "1-m2", "1-m11", "1-rc", "1-cr2",
    "1-rc123", "1-SNAPSHOT", "1", "1-sp", "1-sp2", "1-sp123", "1-abc", "1-def", "1-pom-1", "1-1-snapshot", "1-1", "1-2",
    "1-123",
]
VERSIONS_NUMBER = [
    "2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1", "2.1.0.1", "2.2", "2.123",
    "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11", "11.a", "11b", "11c", "11m",
]


def test_versions_qualifier() -> None:
    assert_increasing("Maven", VERSIONS_QUALIFIER)


def test_versions_number() -> None:
    assert_increasing("Maven", VERSIONS_NUMBER)


@pytest.mark.parametrize(("a", "b"), [
    ("1", "1"), ("1", "1.0"), ("1", "1.0.0"), ("1.0", "1.0.0"), ("1", "1-0"), ("1", "1.0-0"), ("1.0", "1.0-0"),
    ("1a", "1-a"), ("1a", "1.0-a"), ("1a", "1.0.0-a"), ("1.0a", "1-a"), ("1.0.0a", "1-a"),
    ("1x", "1-x"), ("1x", "1.0-x"), ("1x", "1.0.0-x"), ("1.0x", "1-x"), ("1.0.0x", "1-x"),
    ("1ga", "1"), ("1release", "1"), ("1final", "1"), ("1cr", "1rc"),
    ("1a1", "1-alpha-1"), ("1b2", "1-beta-2"), ("1m3", "1-milestone-3"),
    ("1X", "1x"), ("1A", "1a"), ("1B", "1b"), ("1M", "1m"), ("1Ga", "1"), ("1GA", "1"), ("1RELEASE", "1"),
    ("1release", "1"), ("1RELeaSE", "1"), ("1Final", "1"), ("1FinaL", "1"), ("1FINAL", "1"), ("1Cr", "1Rc"),
    ("1cR", "1rC"), ("1m3", "1Milestone3"), ("1m3", "1MileStone3"), ("1m3", "1MILESTONE3"),
    ("1-abcdefghijklmnopqrstuvwxyz", "1-ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    # MNG-7644: 2.0.X == 2-X == 2.0.0.X for any string X.
    *[(f"2-{x}", f"2.0.{x}") for x in ("abc", "alpha", "a", "beta", "b", "def", "milestone", "m", "RC")],
    *[(f"2.0.{x}", f"2.0.0.{x}") for x in ("abc", "alpha", "a", "beta", "b", "def", "milestone", "m", "RC")],
    # MNG-6572: leading zeros never matter, whatever the length.
    ("0000000000000000001", "1"), ("000000000000000000000000000000", "0"),
])
def test_equal(a: str, b: str) -> None:
    assert_equal("Maven", a, b)


@pytest.mark.parametrize(("low", "high"), [
    ("1", "2"), ("1.5", "2"), ("1", "2.5"), ("1.0", "1.1"), ("1.1", "1.2"), ("1.0.0", "1.1"), ("1.0.1", "1.1"),
    ("1.1", "1.2.0"), ("1.0-alpha-1", "1.0"), ("1.0-alpha-1", "1.0-alpha-2"), ("1.0-alpha-1", "1.0-beta-1"),
    ("1.0-beta-1", "1.0-SNAPSHOT"), ("1.0-SNAPSHOT", "1.0"), ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"),
    ("1.0", "1.0-1"), ("1.0-1", "1.0-2"), ("1.0.0", "1.0-1"), ("2.0-1", "2.0.1"), ("2.0.1-klm", "2.0.1-lmn"),
    ("2.0.1", "2.0.1-xyz"), ("2.0.1", "2.0.1-123"), ("2.0.1-xyz", "2.0.1-123"),
    # MNG-5568 (three edge cases that used to be intransitive), MNG-6572 (big numbers).
    ("6.1.0rc3", "6.1.0"), ("6.1.0", "6.1H.5-beta"), ("6.1.0rc3", "6.1H.5-beta"),
    ("20190126.230843", "1234567890.12345"), ("1234567890.12345", "123456789012345.1H.5-beta"),
    ("123456789012345.1H.5-beta", "12345678901234567890.1H.5-beta"),
    # MNG-6964: qualifiers starting with "-0.".
    ("1-0.alpha", "1"), ("1-0.beta", "1"), ("1-0.alpha", "1-0.beta"),
    # MNG-7644: 1.0.0.X1 < 1.0.0-X2 for any string X.
    *[(f"1.0.0.{x}1", f"1.0.0-{x}2") for x in ("abc", "alpha", "a", "beta", "b", "def", "milestone", "m", "RC")],
    # Leading zeros.
    ("0.7", "2"), ("0.2", "1.0.7"),
    # Real Maven advisory bounds.
    ("2.14.0-rc1", "2.14.0"), ("2.17.0", "2.17.1"), ("5.3.17", "5.3.18"), ("1.2.17", "2.0-beta9"),
    ("9.4.43.v20210629", "9.4.44.v20210927"), ("2.9.10.7", "2.9.10.8"), ("31.1-jre", "32.0.0-android"),
])
def test_order(low: str, high: str) -> None:
    assert compare("Maven", low, high) == -1, f"expected {low} < {high}"
    assert compare("Maven", high, low) == 1, f"expected {high} > {low}"


def test_maven_order_is_not_transitive_and_keelwatch_says_so() -> None:
    # Maven itself (checked with maven-artifact): a dotted qualifier meets a nested list. keelwatch
    # answers each pair as Maven does rather than inventing a total order.
    assert compare("Maven", "1.sp.1", "1-alpha") == -1
    assert compare("Maven", "1-alpha", "1") == -1
    assert compare("Maven", "1", "1.sp.1") == -1


@pytest.mark.parametrize("sp", ["1.0-sp1-redhat", "1.0-sp-1-redhat", "1.0-sp.1-redhat"])
def test_mng_7714_is_not_followed(sp: str) -> None:
    # Maven 3.9.2 made these "final" versions sort before the service packs; 3.8.7 up to 3.9.1 (and
    # keelwatch) read "final" as the release and compare "redhat" with "sp" (unknown words last).
    assert compare("Maven", "1.0.final-redhat", sp) == 1


def test_maven_repository_suffix_resolves() -> None:
    assert compare("Maven:https://maven.google.com", "1.0", "1.1") == -1


@pytest.mark.parametrize("version", ["", " ", "1.0 ", "1.0\t", "-", "..", "1.0\n"])
def test_invalid(version: str) -> None:
    with pytest.raises(VersionError, match="maven"):
        sort_key("Maven", version)
