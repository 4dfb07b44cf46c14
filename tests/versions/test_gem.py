"""RubyGems ordering: Gem::Version's documented examples (checked against Ruby's own Gem::Version)."""

from __future__ import annotations

import pytest

from keelwatch.errors import VersionError
from keelwatch.versions import sort_key

from .helpers import assert_equal, assert_increasing


def test_documented_order() -> None:
    # Gem::Version docs: pre-releases (any letter) sort before the release.
    assert_increasing("RubyGems", ["1.0.a", "1.0.a.1", "1.0.b", "1.0.rc1", "1.0", "1.0.0.1", "1.0.1", "1.1", "2"])
    assert_increasing("RubyGems", ["1.0.0.pre1", "1.0.0.pre2", "1.0.0.pre10", "1.0.0"])
    # "-" means ".pre.": 1.0.0-1 is a pre-release of 1.0.0.
    assert_increasing("RubyGems", ["1.0.0-1", "1.0.0.pre.2", "1.0.0"])


@pytest.mark.parametrize(("a", "b"), [
    ("1.0", "1"), ("1.0.0", "1"), ("1.0.a", "1.a"), ("1.0.0.a", "1.a"), ("1.a0", "1.a"), (" 1.0 ", "1"),
    ("1.0.0-alpha", "1.0.0.pre.alpha"), ("01.2", "1.2"),
])
def test_equal(a: str, b: str) -> None:
    assert_equal("RubyGems", a, b)


def test_zero_runs_before_strings_and_numbers() -> None:
    # Missing segments read as 0: a string after zeros sorts below, a number above.
    assert_increasing("RubyGems", ["1.a.0.b", "1.a", "1.a.0.1", "1.a.1"])
    assert_increasing("RubyGems", ["1.A", "1.B", "1.a"])  # strings compare as bytes


@pytest.mark.parametrize("version", ["", "  ", "a", "1..0", "1.0-", "1.0_1", "-1", "1.0 1", "1.0.ä"])
def test_invalid(version: str) -> None:
    with pytest.raises(VersionError, match="gem"):
        sort_key("RubyGems", version)
