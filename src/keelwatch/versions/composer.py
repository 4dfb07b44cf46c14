"""Packagist: Composer's ``VersionParser::normalize`` followed by PHP's ``version_compare``.

Composer first normalizes a version (``v1.2`` → ``1.2.0.0``, ``1.0.0-beta.2`` → ``1.0.0.0-beta2``,
``2.1.0-rc1`` → ``2.1.0.0-RC1``, ``1.0-p1`` → ``1.0.0.0-patch1``, dates ``2010.01.02``), then orders
the normalized strings with PHP's ``version_compare``. Numeric branches (``1.x-dev`` →
``1.9999999.9999999.9999999-dev``) order like versions, as in Composer; named branches (``dev-main``,
``master``) are not orderable — Composer never lets them satisfy a range — so they are a
``VersionError`` here rather than a guess.

``version_compare`` canonicalizes (``-``, ``_``, ``+`` become ``.``; a ``.`` goes between letters
and digits), then compares part by part: numbers as numbers; words by their special rank
``dev < alpha = a < beta = b < RC = rc < # (a number) < pl = p`` (matched as prefixes, so
``patch`` is ``p``; any other word ranks below ``dev``); a number against a word as ``#``. When
one side runs out, a number left on the other side makes it greater, a word is weighed against
``#``. Each part becomes ``(rank, number)`` with numbers at rank 4, and the end of the version is
``(4, -1)``: just below every number, above every pre-release word, below ``p``.
"""

from __future__ import annotations

import re

from keelwatch.versions.base import invalid, require_str

_MODIFIER = r"[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?\d+)*+)?)?([.-]?dev)?"
_CLASSICAL = re.compile(r"v?(\d{1,5}+)(\.\d++)?(\.\d++)?(\.\d++)?" + _MODIFIER, re.IGNORECASE)
_DATE = re.compile(r"v?(\d{4}(?:[.:-]?\d{2}){1,6}(?:[.:-]?\d{1,3}){0,2})" + _MODIFIER, re.IGNORECASE)
_ALIAS = re.compile(r"([^,\s]++) ++as ++([^,\s]++)")
_STABILITY_FLAG = re.compile(r"@(?:stable|RC|beta|alpha|dev)$", re.IGNORECASE)
_BUILD = re.compile(r"([^,\s+]++)\+[^\s]++")
_DEV_SUFFIX = re.compile(r"(.*?)[.-]?dev", re.IGNORECASE)
_NUMERIC_BRANCH = re.compile(r"v?(\d++)(\.(?:\d++|[xX*]))?(\.(?:\d++|[xX*]))?(\.(?:\d++|[xX*]))?", re.IGNORECASE)
_EXPAND = {"a": "alpha", "b": "beta", "p": "patch", "pl": "patch", "rc": "RC"}

# version_compare's special forms, checked in this order as prefixes (php-src versioning.c).
_SPECIAL_FORMS = (("dev", 0), ("alpha", 1), ("a", 1), ("beta", 2), ("b", 2), ("RC", 3), ("rc", 3),
                  ("#", 4), ("pl", 5), ("p", 5))
_NUMBER_RANK = 4
_END = (_NUMBER_RANK, -1)
_PARTS = re.compile(r"[0-9]+|[^0-9]+")


def normalize(version: str) -> str:
    """Composer's ``VersionParser::normalize`` for versions (branches raise ``ValueError``)."""
    text = version.strip()
    alias = _ALIAS.fullmatch(text)
    if alias:
        text = alias.group(1)
    flag = _STABILITY_FLAG.search(text)
    if flag:
        text = text[: flag.start()]
    if text in ("master", "trunk", "default") or text.lower().startswith("dev-"):
        raise ValueError("a branch name, not a version")
    build = _BUILD.fullmatch(text)
    if build:
        text = build.group(1)
    match = _CLASSICAL.fullmatch(text)
    if match:
        normalized = "".join(part if part else ".0" for part in match.group(2, 3, 4))
        normalized = match.group(1) + normalized
        modifier, number, dev = match.group(5, 6, 7)
    else:
        match = _DATE.fullmatch(text)
        if not match:
            return _numeric_branch(text)
        normalized = re.sub(r"\D", ".", match.group(1))
        modifier, number, dev = match.group(2, 3, 4)
    if modifier:
        if modifier.lower() == "stable":
            return normalized
        normalized += "-" + _EXPAND.get(modifier.lower(), modifier.lower()) + (number or "").lstrip(".-")
    if dev:
        normalized += "-dev"
    return normalized


def _numeric_branch(text: str) -> str:
    """``1.x-dev`` → ``1.9999999.9999999.9999999-dev``: the one kind of branch Composer orders."""
    dev = _DEV_SUFFIX.fullmatch(text)
    branch = _NUMERIC_BRANCH.fullmatch(dev.group(1).strip()) if dev else None
    if branch is None:
        raise ValueError("not a version Composer can normalize")
    parts = [part if part else ".x" for part in branch.groups()]
    return "".join(parts).replace("*", "x").replace("X", "x").replace("x", "9999999") + "-dev"


def _rank(word: str) -> int:
    for form, rank in _SPECIAL_FORMS:
        if word.startswith(form):
            return rank
    return -1


def version_compare_key(normalized: str) -> tuple[tuple[int, int], ...]:
    """A tuple ordering like PHP's ``version_compare`` on a Composer-normalized version."""
    # Composer's normalized output only holds digits, letters, '.' and '-', so canonicalizing is
    # splitting on separators and on letter/digit boundaries.
    out: list[tuple[int, int]] = []
    for chunk in re.split(r"[-_+.]", normalized):
        for part in _PARTS.findall(chunk):
            out.append((_NUMBER_RANK, int(part)) if part.isdigit() else (_rank(part), 0))
    out.append(_END)
    return tuple(out)


class ComposerScheme:
    name = "composer"

    def key(self, version: str) -> tuple[tuple[int, int], ...]:
        text = require_str(self.name, version)
        try:
            normalized = normalize(text)
        except ValueError as error:
            raise invalid(self.name, version, str(error)) from None
        return version_compare_key(normalized)
