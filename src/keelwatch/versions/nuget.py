"""NuGet: ``NuGetVersion`` parsing and ``VersionComparer.Default`` ordering (NuGet.Versioning).

- One to four numeric parts (``1``, ``1.2``, ``1.2.3``, ``1.2.3.4``); missing parts are 0, and
  leading zeros are allowed there (``System.Version`` reads them as ints).
- Release labels after ``-``: a version with labels sorts before the same version without.
  Labels compare one by one: both numeric (``Int32.TryParse``) → as numbers; one numeric → it
  sorts first; otherwise case-insensitively (``OrdinalIgnoreCase``). More labels win a tie.
- Metadata after ``+`` is ignored by the default comparer.
"""

from __future__ import annotations

import re

from keelwatch.versions.base import invalid, require_str

_NUGET = re.compile(r"([0-9]+(?:\.[0-9]+){0,3})(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-.]+))?")
_INT32 = re.compile(r"-?[0-9]+")
_INT32_MAX = 2**31 - 1


def _label_key(label: str) -> tuple[int, object]:
    # Int32.TryParse decides what is numeric: a number too big for an int is compared as text.
    if _INT32.fullmatch(label) and -_INT32_MAX - 1 <= int(label) <= _INT32_MAX:
        return (0, int(label))
    return (1, label.upper())  # OrdinalIgnoreCase compares upper-cased UTF-16 units


class NugetScheme:
    name = "nuget"

    def key(self, version: str) -> tuple[int, int, int, int, tuple[object, ...]]:
        text = require_str(self.name, version).strip()  # NuGetVersion.TryParse trims
        match = _NUGET.fullmatch(text)
        if match is None:
            raise invalid(self.name, version, "expected 1 to 4 numeric parts, then -labels and +metadata")
        numbers_text, labels, metadata = match.groups()
        numbers = [int(part) for part in numbers_text.split(".")]
        if any(n > _INT32_MAX for n in numbers):
            raise invalid(self.name, version, "a version part is larger than an Int32")
        if labels is not None:
            for label in labels.split("."):
                # NuGet refuses numeric labels with leading zeros, as SemVer 2.0.0 does.
                if len(label) > 1 and label[0] == "0" and label.isdigit():
                    raise invalid(self.name, version, f"numeric label {label!r} has a leading zero")
        if metadata is not None and "" in metadata.split("."):
            raise invalid(self.name, version, "empty metadata identifier")
        numbers += [0] * (4 - len(numbers))
        label_key: tuple[object, ...] = (1,) if labels is None else (0, tuple(map(_label_key, labels.split("."))))
        return numbers[0], numbers[1], numbers[2], numbers[3], label_key
