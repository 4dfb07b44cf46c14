"""Packagist ordering: Composer's normalization (its VersionParserTest cases) and PHP's version_compare."""

from __future__ import annotations

import pytest

from keelwatch.errors import VersionError
from keelwatch.versions import sort_key
from keelwatch.versions.composer import normalize

from .helpers import assert_equal, assert_increasing


@pytest.mark.parametrize(("raw", "normalized"), [
    # Cases from Composer's VersionParserTest::successfulNormalizedVersions.
    ("1.0.0", "1.0.0.0"), ("1.2.3.4", "1.2.3.4"), ("1.0.0RC1dev", "1.0.0.0-RC1-dev"),
    ("1.0.0-rC15-dev", "1.0.0.0-RC15-dev"), ("1.0.0.RC.15-dev", "1.0.0.0-RC15-dev"), ("1.0.0-rc1", "1.0.0.0-RC1"),
    ("1.0.0.pl3-dev", "1.0.0.0-patch3-dev"), ("1.0-dev", "1.0.0.0-dev"), ("0", "0.0.0.0"),
    ("10.4.13-beta", "10.4.13.0-beta"), ("10.4.13beta2", "10.4.13.0-beta2"), ("10.4.13beta.2", "10.4.13.0-beta2"),
    ("v1.13.11-beta.0", "1.13.11.0-beta0"), ("10.4.13-b", "10.4.13.0-beta"), ("10.4.13-b5", "10.4.13.0-beta5"),
    ("v1.0.0", "1.0.0.0"), ("v20100102", "20100102"), ("2010.01", "2010.01.0.0"), ("2010.01.02", "2010.01.02.0"),
    ("2010-01-02", "2010.01.02"), ("2010-01-02.5", "2010.01.02.5"), ("20100102-203040", "20100102.203040"),
    ("20100102203040-10", "20100102203040.10"), ("20100102-203040-p1", "20100102.203040-patch1"),
    ("1.0.0-beta.5+foo", "1.0.0.0-beta5"), ("1.0.0+foo", "1.0.0.0"), ("1.0.0-alpha.3.1+foo", "1.0.0.0-alpha3.1"),
    ("1.0.0-alpha2.1+foo", "1.0.0.0-alpha2.1"), ("1.0.0+foo as 2.0", "1.0.0.0"), ("00.01.03.04", "00.01.03.04"),
    ("000.001.003.004", "000.001.003.004"), ("0.000.103.204", "0.000.103.204"),
    ("1.x-dev", "1.9999999.9999999.9999999-dev"), ("1.0.0@beta", "1.0.0.0"), ("1.0.0-stable", "1.0.0.0"),
    ("100000.0", "100000.0"),  # too long for a major version, so Composer reads it as a date
])
def test_normalize(raw: str, normalized: str) -> None:
    assert normalize(raw) == normalized


def test_version_compare_order() -> None:
    # dev < alpha < beta < RC < release < patch, as version_compare ranks the special forms.
    assert_increasing("Packagist", ["1.0.0-dev", "1.0.0-alpha1", "1.0.0-beta", "1.0.0-beta2", "1.0.0-RC1", "1.0.0",
                                    "1.0.0-p1", "1.0.0.1", "1.0.1", "1.x-dev", "2.0"])


@pytest.mark.parametrize(("a", "b"), [("1.0", "1.0.0.0"), ("v2.1.3", "2.1.3"), ("1.0.0-a1", "1.0.0-alpha1"),
                                      ("1.0.0-pl2", "1.0.0-patch2"), ("1.0.0-b1", "1.0.0.beta1")])
def test_equal(a: str, b: str) -> None:
    assert_equal("Packagist", a, b)


@pytest.mark.parametrize("version", ["dev-master", "dev-feature/x", "master", "1.0.0-foo", "1.0.0.0.0", "", "foo",
                                     "1.0.0-dev-master", "1.0.0-beta-rc"])
def test_not_orderable(version: str) -> None:
    with pytest.raises(VersionError, match="composer"):
        sort_key("Packagist", version)
