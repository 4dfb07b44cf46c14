"""Catalogs of the shared images, made once per session for the SBOM output and round-trip tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keelwatch.catalog import CATALOGERS
from keelwatch.catalog.walker import catalog_image
from keelwatch.images import open_image
from keelwatch.model import CatalogResult

HERE = Path(__file__).parent
SAMPLES = HERE / "samples"


@pytest.fixture(scope="session")
def catalogs(images_dir: Path) -> dict[str, CatalogResult]:
    """Image name (``debian12-python``) → its catalog by the walker and every registered cataloger."""
    out = {}
    for archive in sorted(images_dir.glob("*.oci.tar")):
        opened = open_image(f"oci-archive:{archive}")
        try:
            out[archive.name.removesuffix(".oci.tar")] = catalog_image(opened, CATALOGERS)
        finally:
            opened.close()
    assert out, f"no *.oci.tar images in {images_dir}"
    return out


@pytest.fixture(scope="session")
def spdx_schema() -> dict:
    return json.loads((HERE / "schemas" / "spdx-schema.json").read_text(encoding="utf-8"))
