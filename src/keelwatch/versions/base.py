"""The one small protocol every version scheme implements.

A scheme turns a version string into a *sort key*: a value that compares with ``<``/``==``/``>``
exactly as the ecosystem's own tool orders the strings. Keys are built once per distinct string
(``keelwatch.versions.sort_key`` caches them), so every later comparison is a cheap comparison of
plain Python values (tuples of ints and strings) instead of re-running a parser.

Unparseable input raises ``VersionError``: a version keelwatch cannot order is unknown, never
"not affected".
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from keelwatch.errors import VersionError


@runtime_checkable
class VersionScheme(Protocol):
    """How one family of ecosystems orders versions (dpkg, rpm, apk, PEP 440, SemVer …)."""

    #: Registry name; also the module name (``versions/dpkg.py`` → ``"dpkg"``) unless a module
    #: configures one class several ways (``semver.py``: ``semver``, ``go``, ``npm``).
    name: str

    def key(self, version: str) -> Any:
        """A sort key for ``version``; raises ``VersionError`` when the string is not a version here."""
        ...


def invalid(scheme: str, version: object, reason: str) -> VersionError:
    """The one error every scheme raises, so messages read the same everywhere."""
    return VersionError(f"not a valid {scheme} version: {version!r}", hint=reason)


def require_str(scheme: str, version: object) -> str:
    # Feeds are JSON/YAML: a bare 1.10 in YAML arrives as the float 1.1. Refuse anything but a
    # string instead of guessing what the author meant.
    if not isinstance(version, str):
        raise invalid(scheme, version, f"expected a string, got {type(version).__name__}")
    return version
