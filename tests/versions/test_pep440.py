"""PEP 440 ordering through ``packaging``: the PEP's own examples and the strings it refuses."""

from __future__ import annotations

import pytest

from keelwatch.errors import VersionError
from keelwatch.versions import sort_key

from .helpers import assert_equal, assert_increasing


def test_pep440_summary_of_ordering() -> None:
    # PEP 440, "Summary of permitted suffixes and relative ordering", verbatim.
    assert_increasing("PyPI", [
        "1.dev0", "1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12", "1.0b1.dev456", "1.0b2",
        "1.0b2.post345.dev456", "1.0b2.post345", "1.0rc1.dev456", "1.0rc1", "1.0", "1.0+abc.5", "1.0+abc.7",
        "1.0+5", "1.0.post456.dev34", "1.0.post456", "1.0.15", "1.1.dev1",
    ])


def test_epochs_and_normalization() -> None:
    assert_increasing("PyPI", ["2024.1", "1!0.1", "1!1.0"])
    assert_equal("PyPI", "1.0", "1.0.0")
    assert_equal("PyPI", "1.0-alpha1", "1.0a1")
    assert_equal("PyPI", "v1.0", "1.0")
    assert_equal("PyPI", "1.0.post1", "1.0-1")
    assert_equal("PyPI", "1.0c1", "1.0rc1")


@pytest.mark.parametrize("version", ["", "1.0-bulbasaur", "0.3m1", "2019-09-12", "trunk", "1.0.0-final", "a3"])
def test_legacy_versions_are_refused(version: str) -> None:
    # Strings found in real PyPI advisories that PEP 440 (and so pip) cannot order.
    with pytest.raises(VersionError, match="pep440"):
        sort_key("PyPI", version)
