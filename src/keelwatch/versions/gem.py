"""RubyGems: ``Gem::Version#<=>``.

Ruby splits a version into segments (runs of digits → integers, runs of letters → strings, after
turning ``-`` into ``.pre.``), drops trailing zeros from the numeric part and from the part after
the first string (``canonical_segments``), then compares segment by segment, reading a missing
segment as 0: numbers numerically, strings as bytes, and any string below any number (so
``1.0.a < 1.0 < 1.0.1``).

Because a missing segment is 0, a run of zeros only matters through what follows it. The key
therefore groups each run of zeros with the segment after it: a string after ``z`` zeros becomes
``(0, z, s)`` and a number ``(2, -z, n)``, and the end of the version is ``(1,)``. Comparing two
such groups is exactly Ruby's walk: more zeros before a string means the other side's string came
first (smaller); more zeros before a number means the other side's number came first (greater); a
string below the end below a number.
"""

from __future__ import annotations

import re

from keelwatch.versions.base import invalid, require_str

# Gem::Version::ANCHORED_VERSION_PATTERN, less the empty version (which Ruby reads as "0").
_GEM = re.compile(r"[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?")
_SEGMENT = re.compile(r"[0-9]+|[a-zA-Z]+")
_END = (1,)


def canonical_segments(text: str) -> list[int | str]:
    """Ruby's ``canonical_segments`` for an already validated version string."""
    segments: list[int | str] = [int(s) if s.isdigit() else s for s in _SEGMENT.findall(text.replace("-", ".pre."))]
    first_string = next((i for i, s in enumerate(segments) if isinstance(s, str)), len(segments))
    numeric, strings = segments[:first_string], segments[first_string:]
    while numeric and numeric[-1] == 0:
        numeric.pop()
    while strings and strings[-1] == 0:
        strings.pop()
    return numeric + strings


class GemScheme:
    name = "gem"

    def key(self, version: str) -> tuple[tuple[object, ...], ...]:
        text = require_str(self.name, version).strip()  # Gem::Version strips surrounding blanks
        if not _GEM.fullmatch(text):
            raise invalid(self.name, version, "malformed version number string (Gem::Version.correct? is false)")
        out: list[tuple[object, ...]] = []
        zeros = 0
        for segment in canonical_segments(text):
            if segment == 0:
                zeros += 1
            elif isinstance(segment, str):
                out.append((0, zeros, segment))
                zeros = 0
            else:
                out.append((2, -zeros, segment))
                zeros = 0
        out.append(_END)
        return tuple(out)
