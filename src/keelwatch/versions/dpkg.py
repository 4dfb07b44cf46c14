"""Debian and Ubuntu: dpkg's version ordering (``[epoch:]upstream[-revision]``).

The comparison is dpkg's ``verrevcmp`` (lib/dpkg/version.c), applied to the upstream version and
then to the revision, after the epoch. ``verrevcmp`` walks a string as alternating runs of
non-digits and digits: non-digit runs compare character by character with ``~`` before
everything (even the end of the string), then the end, then letters, then every other character;
digit runs compare as numbers (so leading zeros do not count).

That walk is turned into one flat tuple so a comparison is a single C-level tuple comparison:
each non-digit run becomes its character weights followed by a 0 terminator (no character weighs
0, so the terminator is where "this run ended" meets the other string's next character, exactly as
dpkg compares the end of a string as 0), each digit run becomes an int, and the whole key ends in
a 0 that stands for "the rest of the string is empty". Validation follows dpkg's ``parseversion``
plus the two checks it only warns about (a digit first, no stray characters), as Trivy and Grype
(go-deb-version) reject those too.
"""

from __future__ import annotations

import re

from keelwatch.versions.base import invalid, require_str

# dpkg's order(): ~ < end-of-string (0) < letters (their ASCII code) < anything else (code + 256).
_WEIGHT = {chr(c): c for c in range(128) if chr(c).isalpha()}
_WEIGHT.update({c: ord(c) + 256 for c in ".+-:"})
_WEIGHT["~"] = -1

_RUNS = re.compile(r"([^0-9]*)([0-9]*)")
_UPSTREAM = re.compile(r"[0-9][A-Za-z0-9.+~:-]*")
_REVISION = re.compile(r"[A-Za-z0-9.+~]+")
_EPOCH = re.compile(r"[0-9]+")
_INT_MAX = 2**31 - 1  # dpkg refuses epochs that do not fit an int


def verrevcmp_key(text: str) -> tuple[int, ...]:
    """A tuple that orders like dpkg's ``verrevcmp`` on ``text`` (one upstream or revision part)."""
    out: list[int] = []
    for letters, digits in _RUNS.findall(text):
        if not letters and not digits:
            continue  # findall's empty match at the end of the string
        out.extend(_WEIGHT[c] for c in letters)
        out.append(0)
        out.append(int(digits) if digits else 0)
    if not out:
        # "" orders like "0" in dpkg (a missing revision equals "0"): give both the same key.
        out = [0, 0]
    out.append(0)
    return tuple(out)


class DpkgScheme:
    name = "dpkg"

    def key(self, version: str) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        text = require_str(self.name, version).strip()  # dpkg skips surrounding blanks
        if not text:
            raise invalid(self.name, version, "version string is empty")
        if any(c.isspace() for c in text):
            raise invalid(self.name, version, "version string has embedded spaces")
        epoch = 0
        if ":" in text:
            epoch_text, text = text.split(":", 1)
            if not epoch_text:
                raise invalid(self.name, version, "epoch in version is empty")
            if not _EPOCH.fullmatch(epoch_text):
                raise invalid(self.name, version, "epoch in version is not a number")
            epoch = int(epoch_text)
            if epoch > _INT_MAX:
                raise invalid(self.name, version, "epoch in version is too big")
            if not text:
                raise invalid(self.name, version, "nothing after colon in version number")
        upstream, revision = text, ""
        if "-" in text:
            upstream, revision = text.rsplit("-", 1)
            if not revision:
                raise invalid(self.name, version, "revision number is empty")
            if not _REVISION.fullmatch(revision):
                raise invalid(self.name, version, "invalid character in revision number")
        if not upstream:
            raise invalid(self.name, version, "version number is empty")
        if not _UPSTREAM.fullmatch(upstream):
            reason = "version number does not start with digit" if not upstream[0].isdigit() else (
                "invalid character in version number")
            raise invalid(self.name, version, reason)
        return epoch, verrevcmp_key(upstream), verrevcmp_key(revision)
