"""CRAN and Bioconductor: R's ``package_version``.

A package version is at least two non-negative integers separated by ``.`` or ``-`` (the two
separators are the same thing). R compares the integer lists element by element, and when one is
a prefix of the other the longer one is greater (``1.0 < 1.0.0``), which is Python's tuple order.
"""

from __future__ import annotations

import re

from keelwatch.versions.base import invalid, require_str

_PACKAGE_VERSION = re.compile(r"[0-9]+(?:[.-][0-9]+)+")  # R's valid_package_version regexp
_SEPARATOR = re.compile(r"[.-]")


class CranScheme:
    name = "cran"

    def key(self, version: str) -> tuple[int, ...]:
        text = require_str(self.name, version).strip()
        if not _PACKAGE_VERSION.fullmatch(text):
            raise invalid(self.name, version, "expected at least two integers separated by '.' or '-'")
        return tuple(int(part) for part in _SEPARATOR.split(text))
