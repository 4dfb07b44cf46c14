"""Import of the real Trivy 0.76 CycloneDX SBOMs of the shared images: exactly Trivy's packages,
with OSV ecosystems, source packages and the image digest Trivy recorded."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from packageurl import PackageURL

from keelwatch.sbom import import_sbom

ECOSYSTEMS = {"pypi": "PyPI", "npm": "npm", "golang": "Go", "maven": "Maven"}


def trivy_sboms(images_dir: Path) -> list[Path]:
    found = sorted(images_dir.glob("*.trivy.cdx.json"))
    assert found, f"no Trivy SBOMs in {images_dir}"
    return found


def flatten(components: list[dict]) -> list[dict]:
    out = []
    for component in components:
        out.append(component)
        out.extend(flatten(component.get("components", [])))
    return out


def trivy_packages(doc: dict) -> Counter:
    """What Trivy lists as packages, read straight from its JSON: every component with a purl."""
    return Counter(c["purl"] for c in flatten(doc["components"]) if c.get("purl"))


def trivy_property(component: dict, name: str) -> str:
    return next(p["value"] for p in component["properties"] if p["name"] == f"aquasecurity:trivy:{name}")


def test_each_sbom_gives_exactly_trivys_packages_with_their_ecosystems(images_dir):
    for path in trivy_sboms(images_dir):
        doc = json.loads(path.read_bytes())
        result = import_sbom(path.read_bytes(), path.name)
        assert not result.warnings, [w.message for w in result.warnings]
        assert Counter(p.purl for p in result.packages) == trivy_packages(doc), path.name

        os_component = next((c for c in doc["components"] if c["type"] == "operating-system"), None)
        for package in result.packages:
            purl = PackageURL.from_string(package.purl)
            if purl.type == "deb":
                major = os_component["version"].split(".")[0]
                assert package.ecosystem == f"Debian:{major}", (path.name, package)
                assert package.kind == "os" and package.source_name and package.source_version
            else:
                assert package.ecosystem == ECOSYSTEMS[purl.type], (path.name, package)
                assert package.kind == "lang"
            assert package.layer_digest.startswith("sha256:")

        image = result.image
        assert image.source_kind == "sbom"
        assert image.config_digest == trivy_property(doc["metadata"]["component"], "ImageID")
        # Trivy recorded no repository digest for these local archives: the package set stands in.
        assert result.extra["sbom"]["identity"] == "package-set"
        assert image.manifest_digest.startswith("sha256:")
        assert result.extra["sbom"]["tool"] == "trivy 0.76.0"


@pytest.mark.parametrize("sbom, ecosystem, os_version", [
    ("debian12-python.trivy.cdx.json", "Debian:12", "12.15"),
    ("debian11-openssl.trivy.cdx.json", "Debian:11", "11.11"),
])
def test_debian_release_and_source_packages(images_dir, sbom, ecosystem, os_version):
    result = import_sbom((images_dir / sbom).read_bytes(), sbom)
    assert (result.image.os.id, result.image.os.version_id) == ("debian", os_version)
    debs = [p for p in result.packages if p.purl.startswith("pkg:deb/")]
    assert debs and {p.ecosystem for p in debs} == {ecosystem}
    by_name = {p.name: p for p in debs}
    libssl = by_name.get("libssl3") or by_name["libssl1.1"]
    assert libssl.source_name == "openssl"
    # Trivy splits the source version (SrcVersion 1.1.1w, SrcRelease 0+deb11u8): joined back.
    assert libssl.source_version == libssl.version
    zlib = by_name["zlib1g"]
    assert zlib.version.startswith("1:") and zlib.source_name == "zlib" and zlib.source_version == zlib.version


def test_language_ecosystems_and_locations(images_dir):
    python = import_sbom((images_dir / "debian12-python.trivy.cdx.json").read_bytes(), "python")
    django = next(p for p in python.packages if p.purl.startswith("pkg:pypi/django@"))
    assert (django.ecosystem, django.name) == ("PyPI", "Django")
    assert django.location.endswith("Django-3.2.12.dist-info/METADATA") and not django.location.startswith("/")

    node = import_sbom((images_dir / "node-app.trivy.cdx.json").read_bytes(), "node")
    assert {p.ecosystem for p in node.packages} == {"npm", "Debian:12"}
    # The same name and version at three places in node_modules are three packages.
    assert len([p for p in node.packages if p.name == "ms"]) == 3

    go = import_sbom((images_dir / "go-tools.trivy.cdx.json").read_bytes(), "go")
    assert go.image.os is None and {p.ecosystem for p in go.packages} == {"Go"}
    # Modules are located in the binary (Trivy's application component) they were built into.
    assert {p.location for p in go.packages} == {"usr/local/bin/dive", "usr/local/bin/shfmt"}
    assert {p.version for p in go.packages if p.name == "stdlib"} >= {"v1.24.1"}


def test_the_same_sbom_is_the_same_image(images_dir):
    data = (images_dir / "debian11-openssl.trivy.cdx.json").read_bytes()
    doc = json.loads(data)
    doc["components"].reverse()
    first = import_sbom(data, "a").image.manifest_digest
    assert import_sbom(json.dumps(doc).encode(), "b").image.manifest_digest == first
    other = import_sbom((images_dir / "debian12-python.trivy.cdx.json").read_bytes(), "c").image.manifest_digest
    assert other != first
