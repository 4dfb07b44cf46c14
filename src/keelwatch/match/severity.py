"""One severity label per finding: the vendor's or distro's rating where there is one, else CVSS.

Rules (Trivy's order: a distro's own rating beats NVD's, because the distro knows how it built
the package — Debian marks CVE-2019-15052 "low" where NVD says critical):

1. A vendor rating — an OSV ``severity`` whose type is not ``CVSS_*`` (``Debian``, ``Ubuntu``,
   ``GHSA`` …: its ``score`` is the label), or a ``severity``/``urgency`` in the record's
   ``database_specific`` (GitHub writes ``"severity": "MODERATE"`` there) — on the affected entry
   that matched first (OSV's per-package severity), then on the advisory. Several advisories
   merged into one finding: the highest of their ratings (never understate).
2. Otherwise the highest CVSS base score of any version (v2, v3.x, v4) on the matched entries and
   their advisories, labelled by the CVSS qualitative scale (v3.1 specification §5: 0.1–3.9 low,
   4.0–6.9 medium, 7.0–8.9 high, 9.0–10.0 critical; 0.0 "none" is reported as low, since the
   record still calls it a vulnerability).
3. Neither: ``unknown`` (never a guess).

The highest CVSS score is recorded with its vector and source whichever rule set the label, so a
reader sees both "Debian says low" and "NVD scores it 9.8".
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from keelwatch.model import Advisory, Affected, Severity

LABELS = ("critical", "high", "medium", "low", "unknown")
_RANK = {label: rank for rank, label in enumerate(reversed(LABELS))}  # unknown 0 … critical 4

# Vendor scales → our labels. Red Hat says important/moderate; Debian's tracker unimportant;
# Ubuntu negligible; GitHub moderate.
_VENDOR = {
    "critical": "critical",
    "high": "high",
    "important": "high",
    "moderate": "medium",
    "medium": "medium",
    "low": "low",
    "negligible": "low",
    "unimportant": "low",
}


@dataclass(frozen=True, slots=True)
class SeverityPick:
    label: str = "unknown"
    source: str = ""  # the vendor scale or CVSS type that set the label
    cvss_score: float | None = None
    cvss_vector: str = ""
    cvss_source: str = ""


def cvss_label(score: float) -> str:
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low"


def vendor_label(text: str) -> str | None:
    return _VENDOR.get(text.strip().lower())


def rank(label: str) -> int:
    """Order labels: unknown < low < medium < high < critical."""
    return _RANK.get(label, 0)


@lru_cache(maxsize=1 << 14)
def _database_rating(text: str) -> str | None:
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    for key in ("severity", "urgency"):
        value = doc.get(key)
        if isinstance(value, str) and (label := vendor_label(value)):
            return label
    return None


def _vendor(severities: Iterable[Severity]) -> tuple[str, str] | None:
    best: tuple[str, str] | None = None
    for sev in severities:
        if sev.type.startswith("CVSS_"):
            continue
        label = vendor_label(sev.score)
        if label and (best is None or rank(label) > rank(best[0])):
            best = (label, sev.type)
    return best


def pick(matched: Iterable[tuple[Advisory, Iterable[Affected]]]) -> SeverityPick:
    """The label for a finding made of these advisories (each with the affected entries that matched)."""
    vendor: tuple[str, str] | None = None
    cvss: tuple[float, int, Severity, str] | None = None
    for advisory, affected_entries in matched:
        found: tuple[str, str] | None = None
        for aff in affected_entries:
            found = found or _vendor(aff.severity) or _db(aff.database_specific, advisory)
        found = found or _vendor(advisory.severity) or _db(advisory.database_specific, advisory)
        if found and (vendor is None or rank(found[0]) > rank(vendor[0])):
            vendor = found
        for sev in [s for aff in affected_entries for s in aff.severity] + list(advisory.severity):
            if not sev.type.startswith("CVSS_") or sev.base_score is None:
                continue
            # Ties go to the newer CVSS version (its vector says more), then to the first seen.
            candidate = (sev.base_score, _version(sev.type), sev, advisory.source)
            if cvss is None or candidate[:2] > cvss[:2]:
                cvss = candidate
    score, vector, source = (None, "", "") if cvss is None else (cvss[0], cvss[2].score, cvss[2].source or cvss[3])
    if vendor is not None:
        return SeverityPick(vendor[0], vendor[1], score, vector, source)
    if cvss is not None:
        return SeverityPick(cvss_label(cvss[0]), cvss[2].type, score, vector, source)
    return SeverityPick()


def _db(text: str, advisory: Advisory) -> tuple[str, str] | None:
    label = _database_rating(text)
    if label is None:
        return None
    # GitHub's rating sits in database_specific; name the scale after the record's database.
    return label, advisory.id.split("-", 1)[0] if "-" in advisory.id else advisory.source


def _version(kind: str) -> int:
    return {"CVSS_V2": 2, "CVSS_V3": 3, "CVSS_V4": 4}.get(kind, 0)
