"""Dart's Pub: pub_semver's ``Version.compareTo``.

Like SemVer, except that build metadata *does* order: a version without a build sorts before the
same version with one, and builds compare identifier by identifier like pre-releases. pub_semver
also reads any identifier that parses as an integer as a number (``01`` is 1), so leading zeros
are accepted where SemVer 2.0.0 refuses them.
"""

from __future__ import annotations

import re

from keelwatch.versions.base import invalid, require_str

_IDS = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_PUB = re.compile(rf"([0-9]+)\.([0-9]+)\.([0-9]+)(?:-({_IDS}))?(?:\+({_IDS}))?")
_NUMERIC = re.compile(r"-?[0-9]+")


def _identifiers(text: str) -> tuple[tuple[int, object], ...]:
    # Numbers before strings, and a missing identifier before a present one (tuple order).
    return tuple((0, int(part)) if _NUMERIC.fullmatch(part) else (1, part) for part in text.split("."))


class PubScheme:
    name = "pub"

    def key(self, version: str) -> tuple[object, ...]:
        text = require_str(self.name, version)
        match = _PUB.fullmatch(text)
        if match is None:
            raise invalid(self.name, version, "expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]")
        major, minor, patch, pre, build = match.groups()
        pre_key = (1,) if pre is None else (0, _identifiers(pre))  # pre-releases first
        build_key = (0,) if build is None else (1, _identifiers(build))  # builds last
        return int(major), int(minor), int(patch), pre_key, build_key
