"""NuGet ordering: the examples of NuGet's package-versioning documentation and NuGet.Versioning's rules."""

from __future__ import annotations

import pytest

from keelwatch.errors import VersionError
from keelwatch.versions import sort_key

from .helpers import assert_equal, assert_increasing


def test_prerelease_precedence_from_the_docs() -> None:
    # docs "Pre-release versions": no suffix first, then suffixes in reverse alphabetical order.
    assert_increasing("NuGet", ["1.0.1-aaa", "1.0.1-alpha10", "1.0.1-alpha2", "1.0.1-beta", "1.0.1-open", "1.0.1-rc",
                                "1.0.1-zzz", "1.0.1"])


@pytest.mark.parametrize(("a", "b"), [
    # docs "Normalized version numbers": leading zeros and a zero fourth part do not count.
    ("1.00", "1.0"), ("1.01.1", "1.1.1"), ("1.00.0.1", "1.0.0.1"), ("1.0.0.0", "1.0.0"), ("1", "1.0.0"),
    # Labels compare case-insensitively; metadata is ignored by the default comparer.
    ("1.0.0-ALPHA", "1.0.0-alpha"), ("1.0.0+git.abc", "1.0.0"), ("1.0.0-rc.1+build.5", "1.0.0-RC.1"),
    (" 1.0.0 ", "1.0.0"),
])
def test_equal(a: str, b: str) -> None:
    assert_equal("NuGet", a, b)


def test_order() -> None:
    assert_increasing("NuGet", ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11",
                                "1.0.0-rc.1", "1.0.0", "1.0.0.1", "1.0.1", "1.1", "2.0.0"])
    # Int32.TryParse decides what is numeric: 2147483648 does not fit, so it compares as text.
    assert_increasing("NuGet", ["1.0.0-2", "1.0.0-10", "1.0.0-2147483647", "1.0.0-2147483648", "1.0.0-a"])


@pytest.mark.parametrize("version", ["", "1.0.0.0.0", "1.0.0-", "1.0.0-a..b", "1.0.0-01", "1.0.0+", "a", "1.0-ä",
                                     "1.0.0-a_b", "2147483648.0", "-1.0"])
def test_invalid(version: str) -> None:
    with pytest.raises(VersionError, match="nuget"):
        sort_key("NuGet", version)
