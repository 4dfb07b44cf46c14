"""Version semantics: how each ecosystem orders its versions, and OSV range evaluation.

Public API (other packages use nothing else from here):

- ``compare(ecosystem, a, b) -> -1 | 0 | 1``
- ``in_range(ecosystem, version, events) -> bool`` for one OSV ``ECOSYSTEM``/``SEMVER`` range
- ``sort_key(ecosystem, version)``: a cached, comparable key (parse once, compare many times)
- ``scheme_for(ecosystem)``: the ``VersionScheme`` behind an OSV ecosystem name

Ecosystems are OSV names. A name with a ``:suffix`` (``Debian:12``, ``Alpine:v3.19``,
``Ubuntu:22.04:LTS``, ``Red Hat:rhel_aus:8.4::appstream``, ``Maven:https://…``) resolves by the
part before the first colon. Unknown ecosystems and unparseable versions raise ``VersionError``.

Adding a scheme: one module with one class (``name`` + ``key``), one line in ``SCHEMES``, the
ecosystems that use it in ``ECOSYSTEMS``, and its tests in ``tests/versions/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from keelwatch.errors import VersionError
from keelwatch.versions.apk import ApkScheme
from keelwatch.versions.base import VersionScheme
from keelwatch.versions.composer import ComposerScheme
from keelwatch.versions.cran import CranScheme
from keelwatch.versions.dpkg import DpkgScheme
from keelwatch.versions.gem import GemScheme
from keelwatch.versions.maven import MavenScheme
from keelwatch.versions.nuget import NugetScheme
from keelwatch.versions.pep440 import Pep440Scheme
from keelwatch.versions.pub import PubScheme
from keelwatch.versions.ranges import evaluate
from keelwatch.versions.rpm import RpmScheme
from keelwatch.versions.semver import SemverScheme

__all__ = ["ECOSYSTEMS", "SCHEMES", "VersionScheme", "compare", "in_range", "scheme_for", "sort_key"]

# Explicit and sorted by name; one line per scheme.
SCHEMES: tuple[VersionScheme, ...] = (
    ApkScheme(),
    ComposerScheme(),
    CranScheme(),
    DpkgScheme(),
    GemScheme(),
    SemverScheme("go", v_prefix=True, go_shorthand=True),
    MavenScheme(),
    SemverScheme("npm", v_prefix=True, partial=True, trim=True),
    NugetScheme(),
    Pep440Scheme(),
    PubScheme(),
    RpmScheme(),
    SemverScheme("semver"),
)

# OSV ecosystem name (the part before any ':') → scheme name.
ECOSYSTEMS: tuple[tuple[str, str], ...] = (
    # dpkg
    ("Debian", "dpkg"),
    ("Ubuntu", "dpkg"),
    # apk
    ("Alpaquita", "apk"),
    ("Alpine", "apk"),
    ("BellSoft Hardened Containers", "apk"),
    ("Chainguard", "apk"),
    ("MinimOS", "apk"),
    ("Wolfi", "apk"),
    # rpm (OSV names, and the names keelwatch's catalogers give RPM distros without OSV feeds)
    ("AlmaLinux", "rpm"),
    ("Amazon Linux", "rpm"),
    ("Azure Linux", "rpm"),
    ("CentOS", "rpm"),
    ("Fedora", "rpm"),
    ("Mageia", "rpm"),
    ("Mariner", "rpm"),
    ("openEuler", "rpm"),
    ("openSUSE", "rpm"),
    ("Oracle Linux", "rpm"),
    ("Photon OS", "rpm"),
    ("Red Hat", "rpm"),
    ("Rocky Linux", "rpm"),
    ("SUSE", "rpm"),
    # languages
    ("Bioconductor", "cran"),
    ("CRAN", "cran"),
    ("crates.io", "semver"),
    ("Go", "go"),
    ("Hex", "semver"),
    ("Maven", "maven"),
    ("npm", "npm"),
    ("NuGet", "nuget"),
    ("Packagist", "composer"),
    ("Pub", "pub"),
    ("PyPI", "pep440"),
    ("RubyGems", "gem"),
    ("SwiftURL", "semver"),
)


def _index(schemes: Iterable[VersionScheme], ecosystems: Iterable[tuple[str, str]]) -> dict[str, VersionScheme]:
    """Ecosystem → scheme, refusing duplicates and dangling names at import (never at match time)."""
    by_name: dict[str, VersionScheme] = {}
    for scheme in schemes:
        if scheme.name in by_name:
            raise ValueError(f"version scheme {scheme.name!r} registered twice")
        by_name[scheme.name] = scheme
    index: dict[str, VersionScheme] = {}
    for ecosystem, scheme_name in ecosystems:
        if ecosystem in index:
            raise ValueError(f"ecosystem {ecosystem!r} registered twice")
        if scheme_name not in by_name:
            raise ValueError(f"ecosystem {ecosystem!r} names unknown version scheme {scheme_name!r}")
        index[ecosystem] = by_name[scheme_name]
    return index


_BY_ECOSYSTEM = _index(SCHEMES, ECOSYSTEMS)
_BY_NAME = {scheme.name: scheme for scheme in SCHEMES}


@lru_cache(maxsize=4096)
def scheme_for(ecosystem: str) -> VersionScheme:
    """The scheme ordering ``ecosystem``'s versions; ``Debian:12`` resolves as ``Debian``."""
    scheme = _BY_ECOSYSTEM.get(ecosystem)
    if scheme is None and isinstance(ecosystem, str):
        scheme = _BY_ECOSYSTEM.get(ecosystem.split(":", 1)[0])
    if scheme is None:
        raise VersionError(f"no version ordering known for ecosystem {ecosystem!r}",
                           hint="versions cannot be compared, so matches stay unknown")
    return scheme


# Matching compares the same few hundred thousand distinct versions millions of times: parse each
# (scheme, string) once. Keys are small tuples; 2**18 entries stay in the tens of megabytes.
@lru_cache(maxsize=1 << 18)
def _cached_key(scheme: str, version: str) -> Any:
    return _BY_NAME[scheme].key(version)


def sort_key(ecosystem: str, version: str) -> Any:
    """A key that orders ``version`` among ``ecosystem``'s versions with ``<``, ``==``, ``>``.

    Keys of different ecosystems must not be compared with each other.
    """
    return _cached_key(scheme_for(ecosystem).name, version)


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` sorts before, equal to, or after ``b`` in ``ecosystem``."""
    scheme = scheme_for(ecosystem).name
    key_a = _cached_key(scheme, a)
    key_b = _cached_key(scheme, b)
    if key_a == key_b:
        return 0
    return -1 if key_a < key_b else 1


def in_range(ecosystem: str, version: str, events: Iterable[Mapping[str, Any]]) -> bool:
    """Whether ``version`` lies in one OSV range, given that range's ``events`` list.

    Use it for ``ECOSYSTEM`` and ``SEMVER`` ranges (``GIT`` ranges need commit history). The
    ``affected[].versions`` list and combining several ranges are the caller's business.
    """
    scheme = scheme_for(ecosystem).name

    def key(text: str) -> Any:
        return _cached_key(scheme, text)

    return evaluate(key, version, events)
