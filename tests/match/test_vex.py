"""VEX statements and risk acceptances suppress findings without hiding them, on SQLite and PostgreSQL.

The documents are written the way OpenVEX (github.com/openvex/spec, v0.2.0) and CycloneDX 1.6
VEX (cyclonedx.org/capabilities/vex) shape them, for real findings of the shared Python image
against the real PyPA database: urllib3 1.26.4 / CVE-2021-33503 and requests 2.25.1 / CVE-2023-32681.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from keelwatch.errors import KeelwatchError
from keelwatch.match import vex
from keelwatch.match.scan import ScanReport, scan_image
from keelwatch.reports.cyclonedx_vex import to_cyclonedx_vex
from keelwatch.reports.findings import breaches
from keelwatch.store import Store

from .test_rematch import AFTER, store_image, sync_zip

pytestmark = pytest.mark.datasets

URLLIB3_CVE, REQUESTS_CVE = "CVE-2021-33503", "CVE-2023-32681"


@pytest.fixture
def scanned(store: Store, feeds_dir: Path, images_dir: Path, tmp_path: Path) -> ScanReport:
    sync_zip(store, feeds_dir, AFTER, tmp_path)
    return scan_image(store, store_image(store, images_dir))


def by_cve(report: ScanReport, cve: str) -> str:
    [key] = [s.key for s in report.findings if cve in s.finding.aliases]
    return key


def openvex(path: Path, statements: list[dict[str, Any]], *, doc_id: str, when: str) -> Path:
    path.write_text(json.dumps({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": doc_id, "author": "Platform Security <sec@example.com>",
        "timestamp": when, "version": 1, "statements": statements}))
    return path


def test_openvex_suppresses_and_a_later_statement_supersedes(store: Store, scanned: ScanReport,
                                                             tmp_path: Path) -> None:
    digest = scanned.image_digest
    doc = openvex(tmp_path / "app.openvex.json", [{
        "vulnerability": {"name": URLLIB3_CVE},
        "products": [{"@id": f"pkg:oci/debian12-python@{digest.replace(':', '%3A')}",
                      "subcomponents": [{"@id": "pkg:pypi/urllib3@1.26.4"}]}],
        "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
        "impact_statement": "the proxy URL parser is never given untrusted input"}],
        doc_id="https://example.com/vex/app-2026-12-01", when="2026-12-01T10:00:00Z")
    report = vex.import_vex(store, doc)
    assert (report.format, report.statements, report.problems) == ("openvex", 1, ())

    found = vex.suppressions_for(store, digest, scanned.findings)
    assert set(found) == {by_cve(scanned, URLLIB3_CVE)}
    s = found[by_cve(scanned, URLLIB3_CVE)]
    assert (s.kind, s.status, s.justification) == ("vex", "not_affected", "vulnerable_code_not_in_execute_path")
    assert "untrusted" in s.reason
    # Suppressed findings stay stored and listed; only the gate and the counts leave them out.
    assert by_cve(scanned, URLLIB3_CVE) in {f.key for f in scanned.findings}
    assert by_cve(scanned, URLLIB3_CVE) not in {f.key for f in breaches(scanned.findings, found, "unknown")}

    # Another image, or another package, is not covered by it.
    assert vex.suppressions_for(store, "sha256:" + "1" * 64, scanned.findings) == {}

    # A later document says affected after all: the latest statement decides.
    openvex(tmp_path / "later.json", [{"vulnerability": URLLIB3_CVE, "products": [digest],
                                       "subcomponents": ["pkg:pypi/urllib3"], "status": "affected",
                                       "action_statement": "upgrade urllib3"}],
            doc_id="later", when="2026-12-05T00:00:00Z")
    vex.import_vex(store, tmp_path / "later.json")
    assert vex.suppressions_for(store, digest, scanned.findings) == {}

    # Re-importing the first document replaces its statements instead of adding copies.
    assert vex.import_vex(store, doc).replaced == 1
    with store.session(write=False) as session:
        assert len(vex.list_statements(session)) == 2


def test_a_package_purl_product_applies_in_every_image(store: Store, scanned: ScanReport, tmp_path: Path) -> None:
    openvex(tmp_path / "requests.json", [{"vulnerability": {"name": REQUESTS_CVE},
                                          "products": [{"@id": "pkg:pypi/requests@2.25.1"}],
                                          "status": "fixed"}], doc_id="requests", when="2026-12-01T00:00:00Z")
    vex.import_vex(store, tmp_path / "requests.json")
    found = vex.suppressions_for(store, scanned.image_digest, scanned.findings)
    assert {k: s.status for k, s in found.items()} == {by_cve(scanned, REQUESTS_CVE): "fixed"}
    # Another version of requests is not what the statement is about.
    openvex(tmp_path / "requests.json", [{"vulnerability": {"name": REQUESTS_CVE},
                                          "products": [{"@id": "pkg:pypi/requests@2.31.0"}],
                                          "status": "fixed"}], doc_id="requests", when="2026-12-01T00:00:00Z")
    vex.import_vex(store, tmp_path / "requests.json")
    assert vex.suppressions_for(store, scanned.image_digest, scanned.findings) == {}


def test_cyclonedx_vex_round_trip(store: Store, scanned: ScanReport, tmp_path: Path) -> None:
    image = {"digest": scanned.image_digest, "reference": "oci-archive:debian12-python.oci.tar"}
    doc = json.loads(to_cyclonedx_vex(image, scanned.findings))
    target = by_cve(scanned, REQUESTS_CVE)
    for v in doc["vulnerabilities"]:
        if v["bom-ref"] == target:
            v["analysis"] = {"state": "not_affected", "justification": "code_not_reachable",
                             "detail": "we never follow redirects"}
    (tmp_path / "triaged.cdx.json").write_text(json.dumps(doc))
    report = vex.import_vex(store, tmp_path / "triaged.cdx.json")
    assert report.format == "cyclonedx" and report.statements == len(doc["vulnerabilities"])
    found = vex.suppressions_for(store, scanned.image_digest, scanned.findings)
    assert set(found) == {target} and found[target].justification == "code_not_reachable"
    # Written back out, the suppressed finding carries its analysis.
    again = json.loads(to_cyclonedx_vex(image, scanned.findings, found))
    [v] = [v for v in again["vulnerabilities"] if v["bom-ref"] == target]
    assert v["analysis"]["state"] == "not_affected" and v["analysis"]["justification"] == "code_not_reachable"


def test_acceptances_expire_and_can_be_revoked(store: Store, scanned: ScanReport) -> None:
    now = datetime.now(UTC)
    key = by_cve(scanned, REQUESTS_CVE)
    with pytest.raises(KeelwatchError, match="not in the future"):
        vex.accept(store, REQUESTS_CVE, image="*", until=now - timedelta(days=1), reason="old")
    accepted = vex.accept(store, REQUESTS_CVE, image=scanned.image_digest, until=now + timedelta(days=30),
                          reason="internal API only", created_by="alice")
    found = vex.suppressions_for(store, scanned.image_digest, scanned.findings)
    assert set(found) == {key} and (found[key].kind, found[key].reason) == ("acceptance", "internal API only")
    # Past its date it no longer holds; a different package name never did.
    assert vex.suppressions_for(store, scanned.image_digest, scanned.findings, now + timedelta(days=31)) == {}
    vex.accept(store, URLLIB3_CVE, image="*", package="not-urllib3", until=now + timedelta(days=3), reason="x")
    assert set(vex.suppressions_for(store, scanned.image_digest, scanned.findings)) == {key}
    assert vex.revoke(store, accepted) and not vex.revoke(store, accepted)
    assert vex.suppressions_for(store, scanned.image_digest, scanned.findings) == {}


@pytest.mark.parametrize("content, message", [
    (b"{not json", "not JSON"),
    (b"[]", "JSON object"),
    (b'{"bomFormat": "SPDX"}', "neither OpenVEX"),
    (json.dumps({"@context": "https://openvex.dev/ns/v0.2.0", "statements": [
        {"vulnerability": {"name": "CVE-1"}, "status": "maybe", "products": ["sha256:x"]}]}).encode(),
     "no usable statement"),
])
def test_a_bad_document_is_a_clear_error_and_changes_nothing(store: Store, scanned: ScanReport, tmp_path: Path,
                                                             content: bytes, message: str) -> None:
    good = openvex(tmp_path / "good.json", [{"vulnerability": REQUESTS_CVE, "products": [scanned.image_digest],
                                             "status": "not_affected", "justification": "component_not_present"}],
                   doc_id="good", when="2026-12-01T00:00:00Z")
    vex.import_vex(store, good)
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(vex.VexError, match=message):
        vex.import_vex(store, bad)
    assert set(vex.suppressions_for(store, scanned.image_digest, scanned.findings)) == {by_cve(scanned, REQUESTS_CVE)}
