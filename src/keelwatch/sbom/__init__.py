"""SBOMs in and out: CycloneDX 1.6 and SPDX 2.3 JSON written from a catalog; CycloneDX, SPDX, Syft
and Trivy JSON read back into one, so another scanner's results can be the source of truth."""

from __future__ import annotations

from keelwatch.sbom.cyclonedx import to_cyclonedx
from keelwatch.sbom.importers import FORMATS, detect_format, import_sbom
from keelwatch.sbom.spdx import to_spdx

__all__ = ["FORMATS", "detect_format", "import_sbom", "to_cyclonedx", "to_spdx"]
