"""CycloneDX 1.6 with ``vulnerabilities``: the image's findings as a VEX document.

The components are the affected packages (``bom-ref`` = the package id, as in keelwatch's SBOM,
so the VEX can be joined with it), each vulnerability ``affects`` them, and ``analysis.state``
says what keelwatch knows: ``exploitable`` for a finding that counts, ``not_affected`` /
``resolved`` for one a VEX statement suppressed (with its justification), and an accepted risk as
``exploitable`` with ``response: ["will_not_fix"]`` and the acceptance in ``detail``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from keelwatch import __version__
from keelwatch.reports.findings import Suppression, ordered
from keelwatch.store.findings import StoredFinding

# OpenVEX / CSAF justifications → CycloneDX's analysis.justification values.
_JUSTIFICATION = {
    "component_not_present": "code_not_present",
    "vulnerable_code_not_present": "code_not_present",
    "vulnerable_code_not_in_execute_path": "code_not_reachable",
    "vulnerable_code_cannot_be_controlled_by_adversary": "requires_environment",
    "inline_mitigations_already_exist": "protected_by_mitigating_control",
}
_CYCLONEDX_JUSTIFICATIONS = {"code_not_present", "code_not_reachable", "requires_configuration",
                             "requires_dependency", "requires_environment", "protected_by_compiler",
                             "protected_at_runtime", "protected_at_perimeter", "protected_by_mitigating_control"}


def _cvss_method(vector: str) -> str:
    if vector.startswith("CVSS:4"):
        return "CVSSv4"
    if vector.startswith("CVSS:3.0"):
        return "CVSSv3"
    if vector.startswith("CVSS:3"):
        return "CVSSv31"
    return "CVSSv2" if vector else "other"


def _analysis(suppression: Suppression | None) -> dict[str, Any]:
    if suppression is None:
        return {"state": "exploitable"}
    if suppression.kind == "acceptance":
        until = f" until {suppression.until.date().isoformat()}" if suppression.until else ""
        return {"state": "exploitable", "response": ["will_not_fix"],
                "detail": f"risk accepted{until}: {suppression.reason}".strip()}
    out: dict[str, Any] = {"state": "resolved" if suppression.status == "fixed" else "not_affected"}
    justification = _JUSTIFICATION.get(suppression.justification, suppression.justification)
    if justification in _CYCLONEDX_JUSTIFICATIONS:
        out["justification"] = justification
    if suppression.reason or suppression.source:
        out["detail"] = " — ".join(x for x in (suppression.reason, suppression.source) if x)
    return out


def to_cyclonedx_vex(image: dict[str, Any], findings: Sequence[StoredFinding],
                     suppressions: dict[str, Suppression] | None = None, *, serial_number: uuid.UUID | None = None,
                     timestamp: datetime | None = None) -> str:
    suppressions = suppressions or {}
    components: dict[str, dict[str, Any]] = {}
    vulnerabilities: list[dict[str, Any]] = []
    for stored in ordered(findings):
        f, p = stored.finding, stored.finding.package
        components.setdefault(p.id, {k: v for k, v in {
            "type": "library", "bom-ref": p.id, "name": p.name, "version": p.version, "purl": p.purl}.items() if v})
        ratings: list[dict[str, Any]] = []
        if f.severity_source and not f.severity_source.startswith("CVSS"):
            ratings.append({"source": {"name": f.severity_source}, "severity": f.severity, "method": "other"})
        if f.cvss_score is not None:
            rating: dict[str, Any] = {"score": f.cvss_score, "method": _cvss_method(f.cvss_vector)}
            if f.cvss_vector:
                rating["vector"] = f.cvss_vector
            if f.cvss_source:
                rating["source"] = {"name": f.cvss_source}
            if not ratings:
                rating["severity"] = f.severity if f.severity != "unknown" else "unknown"
            ratings.append(rating)
        if not ratings:
            ratings.append({"severity": f.severity, "method": "other"})
        vulnerability: dict[str, Any] = {
            "bom-ref": stored.key, "id": f.id, "source": {"name": "OSV", "url": f"https://osv.dev/vulnerability/{f.id}"},
            "references": [{"id": alias, "source": {"name": "NVD" if alias.startswith("CVE-") else "OSV"}}
                           for alias in f.aliases],
            "ratings": ratings,
            "affects": [{"ref": p.id, "versions": [{"version": f.installed_version, "status": "affected"}]}],
            "analysis": _analysis(suppressions.get(stored.key)),
        }
        if f.summary:
            vulnerability["description"] = f.summary
        if f.fixed_versions:
            vulnerability["recommendation"] = f"Upgrade {p.name} to {', '.join(f.fixed_versions)}"
        if f.kev:
            vulnerability["properties"] = [{"name": "keelwatch:kev_date_added", "value": f.kev_date_added}]
        vulnerabilities.append(vulnerability)
    document = {
        "bomFormat": "CycloneDX", "specVersion": "1.6", "serialNumber": (serial_number or uuid.uuid4()).urn,
        "version": 1,
        "metadata": {"timestamp": (timestamp or datetime.now(UTC)).isoformat(),
                     "tools": {"components": [{"type": "application", "name": "keelwatch", "version": __version__}]},
                     "component": {"type": "container", "bom-ref": image["digest"],
                                   "name": image.get("name") or image.get("reference") or image["digest"],
                                   "version": image["digest"]}},
        "components": [components[k] for k in sorted(components)],
        "vulnerabilities": vulnerabilities,
    }
    return json.dumps(document, indent=2)
