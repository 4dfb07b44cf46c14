"""keelwatch's JSON for an image's findings: ``keelwatch scan --format json`` and the API.

Stable keys (other tools rely on them): ``image`` (``digest``, ``reference``, …), ``findings`` —
each with ``id``, ``aliases``, ``package`` (``name``, ``ecosystem``, ``version``, …),
``fixed_versions``, ``severity``, ``kev``, ``epss``, ``suppressed`` — ``unknowns`` and ``summary``.
Findings are ordered most severe first, then by package and id, so two runs diff cleanly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from keelwatch.model import Finding, Package, Suppression, Unknown
from keelwatch.store.findings import SEVERITIES, ImageScan, StoredFinding

#: Severity labels from most to least severe; ``--fail-on X`` means X or anything before it.
SEVERITY_ORDER = ("critical", "high", "medium", "low", "unknown")


def severity_rank(label: str) -> int:
    """0 for critical … 4 for unknown (an unrecognised label counts as unknown)."""
    return SEVERITY_ORDER.index(label) if label in SEVERITY_ORDER else len(SEVERITY_ORDER) - 1


def ordered(findings: Iterable[StoredFinding]) -> list[StoredFinding]:
    return sorted(findings, key=lambda s: (severity_rank(s.finding.severity), s.finding.package.name.lower(),
                                           s.finding.package.version, s.finding.id))


def package_to_json(p: Package) -> dict[str, Any]:
    return {"name": p.name, "ecosystem": p.ecosystem, "version": p.version, "purl": p.purl, "kind": p.kind,
            "source_name": p.source_name, "source_version": p.source_version, "arch": p.arch,
            "location": p.location, "uid": p.id}


def finding_to_json(stored: StoredFinding, suppression: Suppression | None = None) -> dict[str, Any]:
    f: Finding = stored.finding
    return {
        "id": f.id, "aliases": list(f.aliases), "advisory_ids": list(f.advisory_ids), "upstream": list(f.upstream),
        "summary": f.summary, "package": package_to_json(f.package), "installed_version": f.installed_version,
        "fixed_versions": list(f.fixed_versions), "fix_available": f.fix_available,
        "severity": f.severity, "severity_source": f.severity_source,
        "cvss": {"score": f.cvss_score, "vector": f.cvss_vector, "source": f.cvss_source}
        if f.cvss_score is not None else None,
        "kev": f.kev, "kev_date_added": f.kev_date_added or None,
        "epss": f.epss, "epss_percentile": f.epss_percentile,
        "layer_digest": f.layer_digest, "suppressed": suppression is not None,
        "suppression": suppression.as_dict() if suppression else None,
        "key": stored.key, "first_seen": stored.first_seen.isoformat(), "last_seen": stored.last_seen.isoformat(),
    }


def unknown_to_json(u: Unknown) -> dict[str, Any]:
    return {"kind": u.kind, "ecosystem": u.ecosystem, "reason": u.reason,
            "package": package_to_json(u.package) if u.package else None, "advisory_ids": list(u.advisory_ids),
            "package_count": u.package_count}


def summary(findings: Sequence[StoredFinding], suppressions: dict[str, Suppression]) -> dict[str, Any]:
    counting = [s for s in findings if s.key not in suppressions]
    return {"total": len(counting), "suppressed": len(findings) - len(counting),
            **{label: sum(1 for s in counting if s.finding.severity == label) for label in SEVERITIES},
            "kev": sum(1 for s in counting if s.finding.kev),
            "fixable": sum(1 for s in counting if s.finding.fix_available)}


def scan_to_json(image: dict[str, Any], findings: Sequence[StoredFinding], unknowns: Sequence[Unknown],
                 scan: ImageScan | None, suppressions: dict[str, Suppression] | None = None) -> dict[str, Any]:
    suppressions = suppressions or {}
    return {
        "image": image,
        "scan": {"scanned_at": scan.scanned_at.isoformat(), "sync": scan.sync, "no_data": list(scan.no_data)}
        if scan else None,
        "summary": summary(findings, suppressions),
        "findings": [finding_to_json(s, suppressions.get(s.key)) for s in ordered(findings)],
        "unknowns": [unknown_to_json(u) for u in unknowns],
    }


def breaches(findings: Iterable[StoredFinding], suppressions: dict[str, Suppression],
             fail_on: str) -> list[StoredFinding]:
    """The unsuppressed findings at ``fail_on`` or more severe: what makes a CI gate fail."""
    limit = severity_rank(fail_on)
    return [s for s in findings if s.key not in suppressions and severity_rank(s.finding.severity) <= limit]
