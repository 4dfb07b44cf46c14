"""SemVer 2.0.0 precedence, with the two dialects that differ only in what they accept.

- ``semver``: strict SemVer 2.0.0 (crates.io, Hex, SwiftURL; OSV ``SEMVER`` ranges).
- ``npm``: node-semver's strict parse, which also accepts one leading ``v`` and surrounding blanks; and, as npm's range
  grammar reads them, partial versions ``1`` / ``1.2`` as ``1.0.0`` / ``1.2.0`` — GitHub's
  advisories carry such bounds (``introduced: "1.0"`` in GHSA-r683-j2x4-v87g).
- ``go``: golang.org/x/mod/semver, where versions carry a ``v`` (OSV's Go records drop it, so it
  is optional here) and ``v1`` / ``v1.2`` are shorthands for ``v1.0.0`` / ``v1.2.0``. Go
  pseudo-versions (``v0.0.0-20191109021931-daa7c04131f5``, ``v1.2.4-0.2019…``) are ordinary
  pre-releases and need no special case: their 14-digit timestamps compare as strings in time
  order, and they sort before the release they precede, as ``go`` sorts them.

Precedence (semver.org §11): major, minor, patch numerically; a version with a pre-release sorts
before the same version without one; pre-release identifiers compare numerically when both are
numeric, numeric before alphanumeric, alphanumerics by ASCII, and a longer list wins when all
earlier identifiers are equal. Build metadata never affects precedence (``+incompatible`` in Go).
"""

from __future__ import annotations

import re

from keelwatch.versions.base import invalid, require_str

_NUM = r"(?:0|[1-9][0-9]*)"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
_SEMVER = re.compile(
    rf"(?P<v>v)?(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_PRE_ID}(?:\.{_PRE_ID})*))?"
    rf"(?:\+(?P<build>{_BUILD_ID}(?:\.{_BUILD_ID})*))?"
)
_GO_SHORTHAND = re.compile(rf"v(?P<major>{_NUM})(?:\.(?P<minor>{_NUM}))?")
_PARTIAL = re.compile(rf"v?(?P<major>{_NUM})(?:\.(?P<minor>{_NUM}))?")

_RELEASE = (1,)  # no pre-release: after every pre-release of the same major.minor.patch

SemverKey = tuple[int, int, int, tuple[object, ...]]


def prerelease_key(pre: str | None) -> tuple[object, ...]:
    if pre is None:
        return _RELEASE
    return (0, tuple((0, int(part)) if part.isdigit() else (1, part) for part in pre.split(".")))


class SemverScheme:
    """One class, configured per dialect, so the three registered schemes cannot drift apart."""

    def __init__(self, name: str = "semver", *, v_prefix: bool = False, go_shorthand: bool = False,
                 partial: bool = False, trim: bool = False):
        self.name = name
        self.v_prefix = v_prefix
        self.go_shorthand = go_shorthand
        self.partial = partial
        self.trim = trim

    def __repr__(self) -> str:
        return f"SemverScheme({self.name!r})"

    def key(self, version: str) -> SemverKey:
        text = require_str(self.name, version)
        if self.trim:
            text = text.strip()
        match = _SEMVER.fullmatch(text)
        if match is not None and (self.v_prefix or not match.group("v")):
            return (int(match.group("major")), int(match.group("minor")), int(match.group("patch")),
                    prerelease_key(match.group("pre")))
        if self.go_shorthand or self.partial:
            short = (_PARTIAL if self.partial else _GO_SHORTHAND).fullmatch(text)
            if short is not None:
                return int(short.group("major")), int(short.group("minor") or 0), 0, _RELEASE
        hint = "expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] without leading zeros"
        if match is not None:
            hint = "a leading 'v' is not part of SemVer"
        raise invalid(self.name, version, hint)
