"""Red Hat, AlmaLinux, Rocky, SUSE, openSUSE, Fedora, Amazon Linux …: rpm's ``[epoch:]version[-release]``.

The comparison is rpm's ``rpmvercmp`` (rpmio/rpmvercmp.c) on the version, then on the release,
after the epoch (a missing epoch is 0). ``rpmvercmp`` skips separator characters and compares
maximal runs of digits (as numbers) or letters (as bytes), with two special markers: ``~`` sorts
before everything, even the end of the string (``1.0~rc1 < 1.0``), and ``^`` sorts after the end
but before any further run (``1.0 < 1.0^git1 < 1.0.1``). A digit run beats a letter run.

So the walk is a sequence of tokens with a total order — ``~`` < end < ``^`` < letters < digits —
and the key is that token sequence ending in the end token: a plain tuple comparison.

A missing release sorts before every release, even an empty one or ``~`` (``1.0 < 1.0-~``), which
is what rpm's own EVR comparison returns (``rpm.vercmp`` in rpm 4.18). rpm's *dependency* check
instead treats a missing release as "any release"; that is not an order, and advisories always
carry the release they fixed in. Epoch splitting follows rpm's ``parseEVR``: only leading digits
followed by ``:`` are an epoch, and the release starts after the last ``-``.
"""

from __future__ import annotations

import re

from keelwatch.versions.base import invalid, require_str

_TILDE, _END, _CARET, _ALPHA, _DIGITS = 0, 1, 2, 3, 4
_TOKENS = re.compile(r"(~)|(\^)|([0-9]+)|([A-Za-z]+)")
# What rpmbuild lets into Version and Release (its macro characters %{} never survive expansion).
_FIELD = re.compile(r"[A-Za-z0-9._+~^]+")
_EVR = re.compile(r"(?:([0-9]*):)?(.*)", re.DOTALL)

_END_TOKEN = (_END,)
_NO_RELEASE = ((-1,),)  # below the key of any release, "" and "~" included
_TILDE_TOKEN = (_TILDE,)
_CARET_TOKEN = (_CARET,)


def rpmvercmp_key(text: str) -> tuple[tuple[object, ...], ...]:
    """A tuple that orders like ``rpmvercmp`` on ``text`` (a version or a release)."""
    out: list[tuple[object, ...]] = []
    for tilde, caret, digits, letters in _TOKENS.findall(text):
        if tilde:
            out.append(_TILDE_TOKEN)
        elif caret:
            out.append(_CARET_TOKEN)
        elif digits:
            out.append((_DIGITS, int(digits)))
        else:
            out.append((_ALPHA, letters))
    out.append(_END_TOKEN)
    return tuple(out)


class RpmScheme:
    name = "rpm"

    def key(self, version: str) -> tuple[int, tuple[tuple[object, ...], ...], tuple[tuple[object, ...], ...]]:
        text = require_str(self.name, version)
        match = _EVR.fullmatch(text)
        assert match is not None  # the pattern matches every string
        epoch_text, rest = match.groups()
        epoch = int(epoch_text) if epoch_text else 0  # rpm reads an empty epoch (":1.0") as 0
        ver, _, release = rest.rpartition("-") if "-" in rest else (rest, "", "")
        if not ver:
            raise invalid(self.name, version, "version is empty")
        if not _FIELD.fullmatch(ver):
            raise invalid(self.name, version, "version may hold only letters, digits and . _ + ~ ^")
        if "-" in rest and not _FIELD.fullmatch(release):
            raise invalid(self.name, version, "release is empty or holds other than letters, digits and . _ + ~ ^")
        return epoch, rpmvercmp_key(ver), rpmvercmp_key(release) if "-" in rest else _NO_RELEASE
