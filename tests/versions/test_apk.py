"""apk ordering: rows from apk-tools' test/version.data, plus the commit-hash and validity rules."""

from __future__ import annotations

import pytest

from keelwatch.errors import VersionError
from keelwatch.versions import sort_key

from .helpers import assert_increasing, assert_relation

# A selection of apk-tools test/version.data rows covering every rule (leading zeros, letters,
# suffixes and their numbers, revisions, dates).
VERSION_DATA = """
2.34 > 0.1.0_alpha | 0.1.0_alpha = 0.1.0_alpha | 0.1.0_alpha < 0.1.3_alpha | 0.1.0_alpha2 > 0.1.0_alpha
0.1.0_alpha < 2.2.39-r1 | 1.0.4-r3 < 1.0.4-r4 | 1.0.4-r4 < 1.6 | 1.1 > 1.1_alpha1 | 1.2.1 > 1.2
1.2 < 1.3_alpha | 1.3_alpha < 1.3_alpha2 | 0.7.0 < 0.8_beta1 | 0.8_beta4 < 4.8-r1 | 3.10.18-r1 > 2.3.0b-r1
2.3.0b-r1 < 2.3.0b-r2 | 0.12.3 > 0.12 | 0.12 < 0.13_beta1 | 1.2.11 < 1.2.12.1 | 3.1_p16 < 3.1_p17
3.1_p17 > 1.06-r6 | 1.06-r6 < 006 | 006 > 1.0.0 | 1.2.2-r1 > 1.2.2 | 20050718-r2 > 3.9.8-r5
3.9.8-r5 > 2.01.01_alpha10 | 1.0 > 0.99.3.20040818 | 1.39 > 1.00_beta2 | 1.02 < 1.03-r1
4.2.52_p2-r1 < 4.2.52_p4-r2 | 4.2.52_p4-r2 > 1.02.07 | 1.02.07 < 1.02.10-r1 | 2.11-r1 > 2.11
20060720 > 3.0.20060720 | 3.0.20060720 < 20060720 | 2.5.1-r8 < 2.5.1a-r1 | 1.3.5-r10 > 1.3.5-r8
20040401 > 2.0.0_rc3-r1 | 3.0.0-r2 < 021109-r3 | 021109-r3 < 20060512 | 0.9.16-r1 < 3.9_pre20060124
3.9_pre20060124 > 0.01 | 1.1.7 < 6b-r7 | 0.10.0 < 0.10.1_rc1 | 1.1a < 1.3a | 1.0-r1 > 0.15.1b
0.15.1b-r2 > 0.15.1b | 22.7-r1 < 22.7.3-r1 | 22.7.3-r1 > 22.7 | 22.7 > 2.1_pre20 | 2.10.1 > 02.08.01b
02.08.01b < 4.77 | 3.81 > 1.6d | 1.6d > 1.2.07.8 | 1.2.07.8 < 1.2.12.04 | 1.2.12.04 < 1.2.12.05
1.07-r1 < 1.07.5 | 1.07.5 > 1.07 | 0.1_pre20060810 < 0.1_pre20060817 | 0.59s-r11 < 0.65
4.20 > 0.20070118 | 0.20070118 < 0.20070207_rc1 | 4.5_p1-r1 > 4.5_p1 | 0.9.8c-r1 < 0.9.8d | 013 < 014-r1
1.7 < 1.7b | 1.8.5 < 1.8.5_p2 | 2.9.11_pre20051101-r3 > 2.9.11_pre20051101 | 1.6.8_p12-r1 > 1.6.8_p9-r2
0.9.28-r2 < 0.9.28.1 | 0.9.28.1 < 087-r1 | 087-r1 < 103 | 104-r11 > 104-r9 | 20040406-r1 > 2.12r-r4
7.0.17 < 7.0.174 | 1.3-r0 < 1.3.1-r0 | 1.3_pre1-r1 < 1.3.2 | 1.0_p10-r0 > 1.0_p9-r0
0.1.0_alpha_pre2 < 0.1.0_alpha | 1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0
"""
ROWS = [tuple(row.split()) for line in VERSION_DATA.strip().splitlines() for row in line.split("|")]


@pytest.mark.parametrize(("a", "op", "b"), ROWS)
def test_version_data(a: str, op: str, b: str) -> None:
    assert_relation("Alpine:v3.19", a, op, b)


@pytest.mark.parametrize(("a", "op", "b"), [
    # Gentoo's leading-zero rule: a later number with a leading 0 compares as a string.
    ("1.01", "<", "1.1"), ("1.001", "<", "1.01"), ("1.0", "<", "1.00"), ("1.010", "<", "1.02"),
    ("01.0", "=", "1.0"),  # the first number is always numeric
    # Suffix ranks: alpha < beta < pre < rc < (none) < cvs < svn < git < hg < p.
    ("1_alpha", "<", "1_beta"), ("1_beta", "<", "1_pre"), ("1_pre", "<", "1_rc"), ("1_rc", "<", "1"),
    ("1", "<", "1_cvs"), ("1_cvs", "<", "1_svn"), ("1_svn", "<", "1_git"), ("1_git", "<", "1_hg"),
    ("1_hg", "<", "1_p"), ("1_rc", "<", "1_rc0"), ("1_p", "<", "1_p1"),  # a number, even 0, beats none
    # Commit hashes (apk-tools 2.14+): ordered as strings, after the suffixes, before the revision.
    ("1.0~abc", ">", "1.0"), ("1.0~abc", "<", "1.0~abd"), ("1.0~abc", ">", "1.0-r1"), ("1.0_p1", ">", "1.0~ff"),
    ("1.0~abc-r1", ">", "1.0~abc-r0"),
    # Revisions.
    ("1.2.3-r0", "<", "1.2.3-r1"), ("1.2.3-r9", "<", "1.2.3-r10"), ("1.2.3", "<", "1.2.3-r0"),
])
def test_rules(a: str, op: str, b: str) -> None:
    assert_relation("Wolfi", a, op, b)


def test_chain() -> None:
    assert_increasing("Chainguard", ["1.2.3_alpha", "1.2.3_beta2", "1.2.3_rc1", "1.2.3", "1.2.3-r1", "1.2.3_p1",
                                     "1.2.3a", "1.2.3.1", "1.2.4_pre1", "1.2.4"])


@pytest.mark.parametrize("version", [
    # version.data's own invalid rows ("23_foo", "1.0bc"), and what apk_version_validate refuses.
    "23_foo", "1.0bc", "", "a1", ".1", "1.", "1..2", "1.0-1", "1.0-r", "1.0_", "1.0_rc1_", "1.0~", "1.0~xyz",
    "1.0-r1~abc", "1.0-r1-r2", "1.0-r1_p1", "1.0a.1", "1.0a1", "1.0A", "1.0 ", " 1.0", "1.0_RC1", "v1.0",
    # Typos found in the real alpine-secdb.
    "0.12.5.-r0", "1.11-20-r0", "6.6.2p1-r0", "2.15.r-r1",
])
def test_invalid(version: str) -> None:
    with pytest.raises(VersionError, match="apk"):
        sort_key("Alpine", version)
