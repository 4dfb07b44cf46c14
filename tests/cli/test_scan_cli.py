"""`keelwatch scan`, `db update`'s automatic re-match and `findings events`, as a CI job runs them.

A real process with `--config`, the shared Python image and the PyPA database replayed from its
2022 snapshot to the current one. The JSON keys asserted here are the documented interface.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from .test_db import as_json, run, write_config

pytestmark = pytest.mark.datasets


def test_scan_gate_rematch_and_events(store: object, store_url: str, feeds_dir: Path, images_dir: Path,
                                      tmp_path: Path) -> None:
    pypi = tmp_path / "PyPI.zip"
    pypi.write_bytes((feeds_dir / "osv/PyPI.before-2023-01-01.zip").read_bytes())
    config = write_config(tmp_path / "keelwatch.toml", store_url, {"osv-pypi": pypi})
    image = f"oci-archive:{images_dir / 'debian12-python.oci.tar'}"
    assert run(config, "db", "update").returncode == 0

    scanned = as_json(run(config, "scan", image, "--format", "json"))
    assert scanned["image"]["digest"].startswith("sha256:") and scanned["image"]["reference"] == image
    findings = scanned["findings"]
    assert findings and all({"id", "aliases", "package", "fixed_versions", "severity", "kev", "epss",
                             "suppressed"} <= f.keys() for f in findings)
    assert all({"name", "ecosystem", "version"} <= f["package"].keys() for f in findings)
    by_id = {f["id"]: f for f in findings}
    # urllib3 1.26.4 and CVE-2021-33503 (PYSEC-2021-108: fixed in 1.26.5), as the advisory says.
    assert by_id["PYSEC-2021-108"]["package"] == {**by_id["PYSEC-2021-108"]["package"], "name": "urllib3",
                                                  "version": "1.26.4", "ecosystem": "PyPI"}
    assert "CVE-2021-33503" in by_id["PYSEC-2021-108"]["aliases"]
    assert by_id["PYSEC-2021-108"]["fixed_versions"] == ["1.26.5"]
    assert scanned["summary"]["total"] == len(findings)
    assert "no advisory data for Debian:12" in run(config, "scan", image, "--format", "json").stderr

    # The gate: exit 3 at a threshold the image breaches, 0 at one it does not.
    worst = min(("critical", "high", "medium", "low", "unknown").index(f["severity"]) for f in findings)
    levels = ("critical", "high", "medium", "low", "unknown")
    breached = run(config, "scan", image, "--fail-on", levels[worst])
    assert breached.returncode == 3 and "gate:" in breached.stderr
    if worst > 0:
        assert run(config, "scan", image, "--fail-on", levels[worst - 1]).returncode == 0

    # SARIF and CycloneDX VEX carry the same findings.
    sarif = as_json(run(config, "scan", scanned["image"]["digest"], "--format", "sarif"))
    assert sarif["version"] == "2.1.0"
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} == set(by_id)
    vex = run(config, "scan", image, "--format", "cyclonedx-vex")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(vex.stdout) is None
    assert {v["id"] for v in json.loads(vex.stdout)["vulnerabilities"]} == set(by_id)

    # The newer database: db update re-matches by itself; the events say what opened, with the sync.
    first_sync = max(s["last_sync"] for s in as_json(run(config, "db", "status", "--format", "json")))
    pypi.write_bytes((feeds_dir / "osv/PyPI.zip").read_bytes())
    update = run(config, "db", "update")
    assert update.returncode == 0, update.stderr
    assert "re-match:" in update.stderr and "findings opened" in update.stderr
    events = as_json(run(config, "findings", "events", "--since", str(first_sync), "--format", "json"))
    assert events and {e["image_digest"] for e in events} == {scanned["image"]["digest"]}
    assert all(e["sync"] > first_sync and {"event", "id", "image_digest", "sync"} <= e.keys() for e in events)
    opened = {e["id"] for e in events if e["event"] == "opened"}
    rescanned = as_json(run(config, "scan", image, "--format", "json"))
    assert opened <= {f["id"] for f in rescanned["findings"]} and not opened & set(by_id)
    # Since a time works too; a bad --since is a usage error.
    assert as_json(run(config, "findings", "events", "--since", "2000-01-01T00:00:00Z", "--format", "json"))
    assert run(config, "findings", "events", "--since", "yesterday").returncode == 2


def test_scanning_an_unknown_digest_is_a_clear_error(store: object, store_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "keelwatch.toml", store_url, {})
    out = run(config, "scan", "sha256:" + "0" * 64)
    assert out.returncode == 1 and "no stored image has digest" in out.stderr


def test_accepted_and_vex_suppressed_findings_stay_listed_and_do_not_break_the_gate(
        store: object, store_url: str, feeds_dir: Path, images_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "keelwatch.toml", store_url, {"osv-pypi": feeds_dir / "osv/PyPI.zip"})
    image = f"oci-archive:{images_dir / 'debian12-python.oci.tar'}"
    assert run(config, "db", "update").returncode == 0
    scanned = as_json(run(config, "scan", image, "--format", "json"))
    digest = scanned["image"]["digest"]
    high = [f for f in scanned["findings"] if f["severity"] in ("critical", "high")]
    assert high and run(config, "scan", image, "--fail-on", "high").returncode == 3

    # One by VEX, the rest accepted until next year.
    first, *rest = high
    (tmp_path / "vex.json").write_text(json.dumps({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "cli-test", "timestamp": "2026-12-01T00:00:00Z",
        "statements": [{"vulnerability": {"name": first["id"]}, "products": [{"@id": digest}],
                        "status": "not_affected", "justification": "vulnerable_code_not_present"}]}))
    imported = as_json(run(config, "vex", "import", str(tmp_path / "vex.json"), "--format", "json"))
    assert imported["statements"] == 1
    for f in rest:
        out = run(config, "accept", f["id"], "--image", digest, "--until", "2027-12-31", "--reason", "CLI test")
        assert out.returncode == 0, out.stderr
    assert run(config, "accept", "CVE-1", "--image", "*", "--until", "2001-01-01", "--reason", "x").returncode == 1

    after = as_json(run(config, "scan", image, "--format", "json"))
    suppressed = {f["id"]: f["suppression"]["kind"] for f in after["findings"] if f["suppressed"]}
    assert suppressed == {first["id"]: "vex", **{f["id"]: "acceptance" for f in rest}}
    assert len(after["findings"]) == len(scanned["findings"])  # nothing disappears
    assert after["summary"]["suppressed"] == len(high)
    assert run(config, "scan", image, "--fail-on", "high").returncode == 0
    listed = as_json(run(config, "vex", "list", "--format", "json"))
    assert len(listed["statements"]) == 1 and len(listed["acceptances"]) == len(rest)
