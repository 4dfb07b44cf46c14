"""CVSS base scores from vectors: v2 and v3.x computed here, v4 by the ``cvss`` library.

OSV records carry only vectors; a severity needs the number. v2 and v3.x base scores are short
formulas (CVSS v2 guide §3.2.1; CVSS v3.1 specification §7.1 and Appendix A's ``Roundup``, which
v3.0 shares in intent: "the smallest number, to one decimal place, equal to or higher than its
input" — 3.1 only made it immune to float noise). v4's score is a lookup over 270 "macro
vectors" plus interpolation: for that we use Red Hat's ``cvss`` package, which implements FIRST's
reference calculator and is tested against it. ``tests/feeds/test_cvss.py`` checks our v2/v3
formulas against that library over every possible base vector.

A vector that does not parse gives ``None``: the severity is kept, its number unknown.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

# CVSS v3.x base metric weights (specification §7.4).
_V3_AV = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
_V3_AC = {"L": 0.77, "H": 0.44}
_V3_PR_UNCHANGED = {"N": 0.85, "L": 0.62, "H": 0.27}
_V3_PR_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}
_V3_UI = {"N": 0.85, "R": 0.62}
_V3_CIA = {"H": 0.56, "L": 0.22, "N": 0.0}
_V3_BASE = ("AV", "AC", "PR", "UI", "S", "C", "I", "A")

# CVSS v2 base metric weights (guide §3.2.1).
_V2_AV = {"L": 0.395, "A": 0.646, "N": 1.0}
_V2_AC = {"H": 0.35, "M": 0.61, "L": 0.71}
_V2_AU = {"M": 0.45, "S": 0.56, "N": 0.704}
_V2_CIA = {"N": 0.0, "P": 0.275, "C": 0.660}
_V2_BASE = ("AV", "AC", "Au", "C", "I", "A")


def _metrics(parts: list[str]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for part in parts:
        name, sep, value = part.partition(":")
        if not sep or not name or not value or name in out:
            return None  # malformed, or a metric given twice (the spec forbids both)
        out[name] = value
    return out


def _roundup(value: float) -> float:
    """CVSS v3.1 Appendix A ``Roundup``: up to one decimal, robust to binary float noise."""
    scaled = round(value * 100000)
    if scaled % 10000 == 0:
        return scaled / 100000.0
    return (math.floor(scaled / 10000) + 1) / 10.0


@lru_cache(maxsize=8192)
def v3_base_score(vector: str) -> float | None:
    """Base score of a ``CVSS:3.0/…`` or ``CVSS:3.1/…`` vector; ``None`` if it is not one."""
    head, _, rest = vector.strip().partition("/")
    if head not in ("CVSS:3.0", "CVSS:3.1"):
        return None
    metrics = _metrics(rest.split("/"))
    if metrics is None or any(name not in metrics for name in _V3_BASE):
        return None
    try:
        scope_changed = {"U": False, "C": True}[metrics["S"]]
        av = _V3_AV[metrics["AV"]]
        ac = _V3_AC[metrics["AC"]]
        pr = (_V3_PR_CHANGED if scope_changed else _V3_PR_UNCHANGED)[metrics["PR"]]
        ui = _V3_UI[metrics["UI"]]
        c, i, a = (_V3_CIA[metrics[m]] for m in ("C", "I", "A"))
    except KeyError:
        return None
    iss = 1 - (1 - c) * (1 - i) * (1 - a)
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if scope_changed else 6.42 * iss
    exploitability = 8.22 * av * ac * pr * ui
    if impact <= 0:
        return 0.0
    total = 1.08 * (impact + exploitability) if scope_changed else impact + exploitability
    return _roundup(min(total, 10.0))


@lru_cache(maxsize=8192)
def v2_base_score(vector: str) -> float | None:
    """Base score of a CVSS v2 vector (``AV:N/AC:L/Au:N/C:P/I:P/A:P``, optionally in parentheses)."""
    text = vector.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    if text.startswith("CVSS:2.0/"):
        text = text[len("CVSS:2.0/"):]
    metrics = _metrics(text.split("/"))
    if metrics is None or any(name not in metrics for name in _V2_BASE):
        return None
    try:
        av = _V2_AV[metrics["AV"]]
        ac = _V2_AC[metrics["AC"]]
        au = _V2_AU[metrics["Au"]]
        c, i, a = (_V2_CIA[metrics[m]] for m in ("C", "I", "A"))
    except KeyError:
        return None
    impact = 10.41 * (1 - (1 - c) * (1 - i) * (1 - a))
    exploitability = 20 * av * ac * au
    f_impact = 0.0 if impact == 0 else 1.176
    score = ((0.6 * impact) + (0.4 * exploitability) - 1.5) * f_impact
    # "round_to_1_decimal": half up, on the decimal the float stands for.
    return float(Decimal(repr(score)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


@lru_cache(maxsize=8192)
def v4_base_score(vector: str) -> float | None:
    """CVSS v4.0 score (``CVSS-B``, or ``CVSS-BT``/``BE``/``BTE`` when the vector has those metrics)."""
    if not vector.strip().startswith("CVSS:4.0/"):
        return None
    from cvss import CVSS4  # imported on first use: most feeds never carry a v4 vector
    from cvss.exceptions import CVSSError

    try:
        return float(CVSS4(vector.strip()).base_score)
    except (CVSSError, ValueError, KeyError, IndexError):
        return None


def base_score(kind: str, vector: str) -> float | None:
    """The base score for an OSV severity ``type`` (CVSS_V2, CVSS_V3, CVSS_V4) and its vector."""
    if not isinstance(vector, str):
        return None
    if kind == "CVSS_V3":
        return v3_base_score(vector)
    if kind == "CVSS_V2":
        return v2_base_score(vector)
    if kind == "CVSS_V4":
        return v4_base_score(vector)
    return None
