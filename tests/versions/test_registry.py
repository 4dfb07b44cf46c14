"""The scheme registry: explicit, complete, duplicate-free, and resolving OSV ecosystem names."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import keelwatch.versions as versions
from keelwatch.errors import VersionError
from keelwatch.versions import ECOSYSTEMS, SCHEMES, VersionScheme, compare, scheme_for, sort_key

# The ecosystems the knowledge-base issue names, plus the distros keelwatch's catalogers report.
REQUIRED = {
    "Debian": "dpkg", "Debian:12": "dpkg", "Ubuntu:22.04": "dpkg", "Ubuntu:Pro:18.04:LTS": "dpkg",
    "Alpine": "apk", "Alpine:v3.19": "apk", "Wolfi": "apk", "Chainguard": "apk",
    "Red Hat": "rpm", "Red Hat:rhel_aus:8.4::appstream": "rpm", "AlmaLinux": "rpm", "AlmaLinux:9": "rpm",
    "Rocky Linux": "rpm", "openSUSE": "rpm", "SUSE": "rpm", "Fedora": "rpm", "CentOS": "rpm", "Amazon Linux": "rpm",
    "Oracle Linux": "rpm", "Photon OS": "rpm", "Mariner": "rpm", "Azure Linux": "rpm",
    "PyPI": "pep440", "npm": "npm", "Go": "go", "Maven": "maven", "Maven:https://maven.google.com": "maven",
    "NuGet": "nuget", "RubyGems": "gem", "crates.io": "semver", "Packagist": "composer", "Hex": "semver",
    "Pub": "pub", "CRAN": "cran",
}


@pytest.mark.parametrize(("ecosystem", "scheme"), sorted(REQUIRED.items()))
def test_required_ecosystems_resolve(ecosystem: str, scheme: str) -> None:
    assert scheme_for(ecosystem).name == scheme


def test_every_scheme_module_is_registered() -> None:
    registered = {type(scheme) for scheme in SCHEMES}
    found = set()
    for info in pkgutil.iter_modules(versions.__path__):
        module = importlib.import_module(f"keelwatch.versions.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and cls.__name__.endswith("Scheme") and cls is not VersionScheme:
                found.add(cls)
    assert found, "no scheme classes found: did the naming convention change?"
    assert found <= registered, f"scheme classes not in SCHEMES: {sorted(c.__name__ for c in found - registered)}"


def test_schemes_follow_the_protocol_and_are_all_used() -> None:
    used = {scheme for _, scheme in ECOSYSTEMS}
    for scheme in SCHEMES:
        assert isinstance(scheme, VersionScheme)
        assert scheme.name in used, f"scheme {scheme.name} serves no ecosystem"
    assert [s.name for s in SCHEMES] == sorted(s.name for s in SCHEMES), "keep SCHEMES sorted by name"


def test_duplicates_fail_at_import() -> None:
    from keelwatch.versions.dpkg import DpkgScheme

    with pytest.raises(ValueError, match="registered twice"):
        versions._index([DpkgScheme(), DpkgScheme()], [])
    with pytest.raises(ValueError, match="registered twice"):
        versions._index([DpkgScheme()], [("Debian", "dpkg"), ("Debian", "dpkg")])
    with pytest.raises(ValueError, match="unknown version scheme"):
        versions._index([DpkgScheme()], [("Ubuntu", "deb")])


@pytest.mark.parametrize("ecosystem", ["", "debian", "Debian ", "GIT", "Linux", ":12", "OSS-Fuzz"])
def test_unknown_ecosystem_is_an_error(ecosystem: str) -> None:
    with pytest.raises(VersionError, match="ecosystem"):
        compare(ecosystem, "1.0", "1.0")


def test_compare_returns_exactly_minus_one_zero_one() -> None:
    assert compare("Debian:11", "1.0-1", "1.0-2") == -1
    assert compare("Debian:11", "1.0-2", "1.0-1") == 1
    assert compare("Debian:11", "1.0-01", "1.0-1") == 0
    assert all(type(compare("PyPI", a, b)) is int for a, b in [("1", "2"), ("2", "1"), ("1", "1.0")])


def test_sort_key_is_parsed_once() -> None:
    versions._cached_key.cache_clear()
    keys = [sort_key("Alpine:v3.18", "1.2.3-r4") for _ in range(5)]
    info = versions._cached_key.cache_info()
    assert info.misses == 1 and info.hits == 4
    assert all(k is keys[0] for k in keys)
    # Releases of one distro share the parsed key.
    assert sort_key("Alpine:v3.19", "1.2.3-r4") is keys[0]


def test_keys_sort_versions() -> None:
    found = ["1.10.0", "1.2.0", "1.2.0rc1", "1.9.post1", "1!0.1"]
    assert sorted(found, key=lambda v: sort_key("PyPI", v)) == ["1.2.0rc1", "1.2.0", "1.9.post1", "1.10.0", "1!0.1"]


def test_non_string_versions_are_refused() -> None:
    with pytest.raises(VersionError, match="expected a string"):
        sort_key("PyPI", 1.1)  # type: ignore[arg-type]
