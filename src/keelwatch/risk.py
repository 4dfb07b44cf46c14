"""The risk score: one number per finding that ranks what to fix first (pure; posture sums it).

    weight(severity) × (3 if KEV-listed) × (1 + 4 × EPSS) × (1.25 if a fixed version exists)

with weight critical 10, high 5, medium 2, low 0.5, unknown 3 (unrated is not harmless). Known
exploitation and exploit likelihood rank first; an available fix ranks what can be done today.
The store keeps each image's sum (``image_scans.risk``) current with its findings.
"""

from __future__ import annotations

WEIGHT = {"critical": 10.0, "high": 5.0, "medium": 2.0, "low": 0.5, "unknown": 3.0}
#: EPSS at or above this counts as "likely exploited" in posture rows.
EPSS_THRESHOLD = 0.1


def finding_risk(severity: str, kev: bool, epss: float | None, fix_available: bool) -> float:
    return (WEIGHT.get(severity, 3.0) * (3.0 if kev else 1.0) * (1.0 + 4.0 * (epss or 0.0))
            * (1.25 if fix_available else 1.0))
