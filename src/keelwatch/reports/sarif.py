"""SARIF 2.1.0 for code-scanning dashboards (GitHub, GitLab, Azure DevOps).

One rule per advisory (its id; ``help`` names the aliases and fixed versions), one result per
finding, at the level its severity calls for (critical/high: error, medium: warning, the rest:
note). GitHub ranks security results by ``properties.security-severity`` (the CVSS score, or the
label's usual score when there is none). Suppressed findings are kept, with a SARIF
``suppressions`` entry, so the dashboard shows them as dismissed rather than fixed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from keelwatch import __version__
from keelwatch.reports.findings import Suppression, ordered
from keelwatch.store.findings import StoredFinding

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "unknown": "note"}
_SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0", "unknown": "0.0"}


def to_sarif(image: dict[str, Any], findings: Sequence[StoredFinding],
             suppressions: dict[str, Suppression] | None = None) -> str:
    suppressions = suppressions or {}
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    artifact = image.get("reference") or image["digest"]
    for stored in ordered(findings):
        f = stored.finding
        score = f"{f.cvss_score:.1f}" if f.cvss_score is not None else _SCORE.get(f.severity, "0.0")
        if f.id not in rules:
            names = ", ".join(f.aliases) or f.id
            rules[f.id] = {
                "id": f.id, "name": f.id.replace("-", ""),
                "shortDescription": {"text": f.summary or f"{names} in {f.package.name}"},
                "fullDescription": {"text": f.summary or names},
                "helpUri": f"https://osv.dev/vulnerability/{f.id}",
                "help": {"text": f"Aliases: {names}. Fixed in: {', '.join(f.fixed_versions) or 'no fix yet'}."},
                "properties": {"security-severity": score, "tags": ["security", "vulnerability", f.severity]},
            }
        location = f.package.location or artifact
        result: dict[str, Any] = {
            "ruleId": f.id, "level": _LEVEL.get(f.severity, "note"),
            "message": {"text": f"{f.package.name} {f.installed_version} is affected by {f.id}"
                                f"{' (' + ', '.join(f.aliases) + ')' if f.aliases else ''}; "
                                f"fixed in {', '.join(f.fixed_versions) or 'no released version'}."},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": location}},
                           "message": {"text": f"{artifact} ({image['digest']})"}}],
            "partialFingerprints": {"keelwatchFinding/v1": stored.key},
            "properties": {"package": f.package.name, "ecosystem": f.package.ecosystem,
                           "installed_version": f.installed_version, "fixed_versions": list(f.fixed_versions),
                           "purl": f.package.purl, "kev": f.kev, "epss": f.epss, "severity": f.severity},
        }
        suppression = suppressions.get(stored.key)
        if suppression is not None:
            result["suppressions"] = [{"kind": "external", "status": "accepted",
                                       "justification": suppression.justification or suppression.reason
                                       or suppression.status}]
        results.append(result)
    document = {
        "$schema": SCHEMA, "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "keelwatch", "version": __version__,
                                      "informationUri": "https://github.com/keelwatch/keelwatch",
                                      "rules": [rules[k] for k in sorted(rules)]}},
                  "results": results}],
    }
    return json.dumps(document, indent=2)
