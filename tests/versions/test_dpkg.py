"""dpkg ordering: vectors from dpkg's own lib/dpkg/t/t-version.c and Debian policy §5.6.12."""

from __future__ import annotations

import pytest

from keelwatch.errors import VersionError
from keelwatch.versions import sort_key

from .helpers import assert_equal, assert_increasing, assert_relation


@pytest.mark.parametrize(("a", "b"), [
    # t-version.c: equality, including leading zeros and the empty / "0" revision.
    ("0", "0:0"), ("0:0-0", "0:0-0"), ("0:0-00", "0:00-0"), ("1:2-3", "1:2-3"),
    ("0:0.0-0.0", "0.0-0.0"), ("1:0", "1:0"), ("5:1", "5:1"),
    # t-version.c: multiple hyphens and colons go to upstream; leading/trailing blanks are skipped.
    ("0:0-0-0", "0:0-0-0"), ("0:0:0-0", "0:0:0-0"), ("0:0-0:0-0", "0:0-0:0-0"),
    ("  \t0:0-1", "0:0-1"), ("0:0-1\t  ", "0:0-1"),
    # A missing revision equals an empty one and "0".
    ("1.0", "1.0-0"),
])
def test_equal(a: str, b: str) -> None:
    assert_equal("Debian", a, b)


@pytest.mark.parametrize(("a", "op", "b"), [
    # t-version.c: epoch, upstream and revision differences.
    ("0:0-0", "<", "1:0-0"), ("0:1a-0", "<", "0:1b-0"), ("0:0-a", "<", "0:0-b"),
    ("1.0-1", "<", "2.0-1"), ("1.0-1", "<", "1.0-2"),
    # Policy: ~ sorts before everything, even the end; letters before other characters.
    ("1.0~rc1", "<", "1.0"), ("1.0~~", "<", "1.0~~a"), ("1.0~~a", "<", "1.0~"), ("1.0~", "<", "1.0"),
    ("1.0", "<", "1.0a"), ("1.0a", "<", "1.0+"), ("1.0a", "<", "1.0."), ("1.0+", "<", "1.0.1"),
    ("1.0-1~bpo1", "<", "1.0-1"), ("2.30-1+deb12u1", ">", "2.30-1"), ("1:1.0", ">", "9.9"),
    ("1.10", ">", "1.9"), ("1.001", "=", "1.1"), ("1.0.0", ">", "1.0"),
    # Real Debian-security fixed versions.
    ("1.2.11.dfsg-2+deb11u2", ">", "1.2.11.dfsg-2+deb11u1"), ("2.36-9+deb12u4", "<", "2.36-9+deb12u10"),
    ("7.88.1-10+deb12u5", "<", "7.88.1-10+deb12u12"), ("3.0.11-1~deb12u2", "<", "3.0.11-1"),
])
def test_relation(a: str, op: str, b: str) -> None:
    assert_relation("Debian", a, op, b)


def test_policy_chain() -> None:
    assert_increasing("Debian:12", ["1.0~~", "1.0~~a", "1.0~", "1.0", "1.0a", "1.0+", "1.0.0", "1.0.1", "1:0.1"])


@pytest.mark.parametrize("version", [
    # t-version.c: parse errors.
    "", "  ", "0:", "0:0 0-1", "-1:0-1", "999999999999999999999999:0-1", "a:0-0", "A:0-0", "-0", "0:-0",
    # t-version.c: warnings dpkg still parses; Trivy and Grype refuse them, so does keelwatch.
    "0:abc3-0", "0:0-0:0",
    *[f"0:0{c}-0" for c in "!#@$%&/|\\<>()[]{};,_=*^'"],
    *[f"0:0-0{c}" for c in "!#@$%&/|\\<>()[]{}:;,_=*^'"],
    # An empty revision: dpkg 1.21 says "revision number is empty" (older t-version.c took "0:0-").
    "0:0-", "1.0-",
    "latest",
])
def test_invalid(version: str) -> None:
    with pytest.raises(VersionError, match="dpkg"):
        sort_key("Debian", version)
