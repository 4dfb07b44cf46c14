"""CRAN / Bioconductor: R's package_version ordering."""

from __future__ import annotations

import pytest

from keelwatch.errors import VersionError
from keelwatch.versions import sort_key

from .helpers import assert_equal, assert_increasing


def test_order() -> None:
    # R: package_version("1.0") < "1.0.0" and "1.9" < "1.10"; '-' is the same separator as '.'.
    assert_increasing("CRAN", ["0.9-1", "1.0", "1.0-0", "1.0.1", "1.0-2", "1.9", "1.10", "1.10.0.9000", "2.0"])
    assert_equal("CRAN", "1.0-3", "1.0.3")
    assert_equal("Bioconductor", "1.01", "1.1")


@pytest.mark.parametrize("version", ["1", "", "1.0a", "1..0", "1.0-", "v1.0", "1.0-rc1"])
def test_invalid(version: str) -> None:
    with pytest.raises(VersionError, match="cran"):
        sort_key("CRAN", version)
