"""rpm ordering: vectors from rpm's tests/rpmvercmp.at (checked with rpm 4.18's rpm.vercmp)."""

from __future__ import annotations

import pytest

from keelwatch.errors import VersionError
from keelwatch.versions import sort_key

from .helpers import assert_increasing, assert_relation

RPMVERCMP_AT = """
1.0 1.0 0 | 1.0 2.0 -1 | 2.0.1 2.0.1 0 | 2.0 2.0.1 -1 | 2.0.1a 2.0.1a 0 | 2.0.1a 2.0.1 1 | 5.5p1 5.5p2 -1
5.5p10 5.5p10 0 | 5.5p1 5.5p10 -1 | 10xyz 10.1xyz -1 | xyz10 xyz10 0 | xyz10 xyz10.1 -1 | xyz.4 xyz.4 0
xyz.4 8 -1 | xyz.4 2 -1 | 5.5p2 5.6p1 -1 | 5.6p1 6.5p1 -1 | 6.0.rc1 6.0 1 | 10b2 10a1 1 | 10a2 10b2 -1
1.0aa 1.0aa 0 | 1.0a 1.0aa -1 | 10.0001 10.0001 0 | 10.0001 10.1 0 | 10.0001 10.0039 -1 | 4.999.9 5.0 -1
20101121 20101122 -1 | 2_0 2_0 0 | 2.0 2_0 0 | a a 0 | a+ a+ 0 | a+ a_ 0 | +a _a 0 | +_ +_ 0 | _+ +_ 0 | + _ 0
1.0~rc1 1.0~rc1 0 | 1.0~rc1 1.0 -1 | 1.0~rc1 1.0~rc2 -1 | 1.0~rc1~git123 1.0~rc1~git123 0
1.0~rc1~git123 1.0~rc1 -1 | 1.0^ 1.0^ 0 | 1.0^ 1.0 1 | 1.0^git1 1.0^git1 0 | 1.0^git1 1.0 1
1.0^git1 1.0^git2 -1 | 1.0^git1 1.01 -1 | 1.0^20160101 1.0^20160101 0 | 1.0^20160101 1.0.1 -1
1.0^20160101^git1 1.0^20160101^git1 0 | 1.0^20160102 1.0^20160101^git1 1 | 1.0~rc1^git1 1.0~rc1^git1 0
1.0~rc1^git1 1.0~rc1 1 | 1.0^git1~pre 1.0^git1~pre 0 | 1.0^git1 1.0^git1~pre 1
"""
VECTORS = [tuple(case.split()) for line in RPMVERCMP_AT.strip().splitlines() for case in line.split("|")]


@pytest.mark.parametrize(("a", "b", "expected"), VECTORS)
def test_rpmvercmp_at(a: str, b: str, expected: str) -> None:
    assert_relation("Red Hat", a, {"-1": "<", "0": "=", "1": ">"}[expected], b)


@pytest.mark.parametrize(("a", "op", "b"), [
    # Epochs: a missing epoch is 0, and an epoch outweighs everything after it.
    ("0:1.0-1", "=", "1.0-1"), ("1:1.0-1", ">", "2.0-1"), (":1.0-1", "=", "1.0-1"),
    # Releases (real RHEL / Rocky / SUSE fixed versions).
    ("2.28-225.el8_8.6", "<", "2.28-225.el8_8.11"), ("1:1.1.1k-12.el8_9", ">", "1:1.1.1k-9.el8_7"),
    ("3.0.7-25.el9_3", ">", "3.0.7-24.el9"), ("1.2.11-lp152.6.3.1", "<", "1.2.11-150000.3.53.1"),
    ("7.61.1-34.el8_10.2", "<", "7.61.1-34.el8_10.3"),
    # A missing release sorts before any release, as rpm.vercmp says ("1.0" < "1.0-~").
    ("1.0", "<", "1.0-0"), ("1.0", "<", "1.0-~"), ("1.0-+", "=", "1.0-_"),
])
def test_evr(a: str, op: str, b: str) -> None:
    assert_relation("Rocky Linux:9", a, op, b)


def test_chain() -> None:
    assert_increasing("AlmaLinux", ["1.0~rc1", "1.0", "1.0-1", "1.0^git1-1", "1.0a-1", "1.0.1-1", "1:0.1-1"])


@pytest.mark.parametrize("version", ["", "-1", "1.0-", "1.0 -1", "1.0-1 ", "1.0-1-", "a:1.0", "1.0@2", "1:", "1.0-é"])
def test_invalid(version: str) -> None:
    with pytest.raises(VersionError, match="rpm"):
        sort_key("Red Hat", version)
