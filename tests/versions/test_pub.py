"""Pub ordering: pub_semver's Version.compareTo, where build metadata orders too."""

from __future__ import annotations

import pytest

from keelwatch.errors import VersionError
from keelwatch.versions import sort_key

from .helpers import assert_equal, assert_increasing


def test_order() -> None:
    # pub_semver's own version_test.dart ordering example.
    assert_increasing("Pub", ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",
                              "1.0.0-rc.1+build.1", "1.0.0", "1.0.0+0.3.7", "1.3.7+build", "1.3.7+build.2.b8f12d7",
                              "1.3.7+build.11.e0f985a", "2.0.0", "2.1.0", "2.2.0", "2.11.0", "2.11.1"])
    assert_equal("Pub", "01.0.0", "1.0.0")


@pytest.mark.parametrize("version", ["1.0", "1.0.0.0", "", "v1.0.0", "1.0.0-", "1.0.0+"])
def test_invalid(version: str) -> None:
    with pytest.raises(VersionError, match="pub"):
        sort_key("Pub", version)
