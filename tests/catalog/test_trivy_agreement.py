"""Accuracy: on every shared image, keelwatch finds every package Trivy 0.76 finds.

Packages are compared by purl identity (type, namespace, name, version). Every difference in
either direction must be listed below with its reason; an unexplained difference, or an
explanation that no longer applies, fails the test.
"""

import json

import pytest
from packageurl import PackageURL

from keelwatch.catalog import CATALOGERS
from keelwatch.catalog.walker import catalog_image
from keelwatch.images import open_image
from keelwatch.images.source import OpenOptions
from keelwatch.model import Platform

# (image, sbom file, platform)
CASES = [
    ("debian12-python", "debian12-python.trivy.cdx.json", None),
    ("debian12-python-v2", "debian12-python-v2.trivy.cdx.json", None),
    ("debian11-openssl", "debian11-openssl.trivy.cdx.json", None),
    ("go-tools", "go-tools.trivy.cdx.json", None),
    ("node-app", "node-app.trivy.cdx.json", None),
    ("debian12-multiarch", "debian12-multiarch.amd64.trivy.cdx.json", "linux/amd64"),
    ("debian12-multiarch", "debian12-multiarch.arm64.trivy.cdx.json", "linux/arm64"),
]

# image → {purl identity: reason} for packages Trivy reports that keelwatch does not.
TRIVY_ONLY: dict[str, dict[tuple, str]] = {}
# image → {purl identity: reason} for packages keelwatch reports that Trivy does not.
KEELWATCH_ONLY: dict[str, dict[tuple, str]] = {}


def identity(purl: str) -> tuple:
    p = PackageURL.from_string(purl)
    name, namespace = p.name, p.namespace or ""
    if p.type == "pypi":  # PEP 503: Trivy and we may spell the same project differently
        name = name.lower().replace("_", "-").replace(".", "-")
    return (p.type, namespace, name, p.version or "")


def trivy_packages(path) -> set[tuple]:
    doc = json.loads(path.read_text())
    return {identity(c["purl"]) for c in doc.get("components", []) if c.get("purl")}


def ours(path, platform):
    options = OpenOptions(platform=Platform.parse(platform) if platform else None)
    opened = open_image(f"oci-archive:{path}", options)
    try:
        return catalog_image(opened, CATALOGERS)
    finally:
        opened.close()


@pytest.mark.parametrize(("image", "sbom", "platform"), CASES, ids=[c[2] and f"{c[0]}-{c[2]}" or c[0] for c in CASES])
def test_every_trivy_package_is_found(images_dir, image, sbom, platform):
    result = ours(images_dir / f"{image}.oci.tar", platform)
    found = {identity(p.purl) for p in result.packages if p.purl}
    theirs = trivy_packages(images_dir / sbom)
    assert all(p.purl for p in result.packages), "every package carries a purl"
    missing = {k: "unexplained" for k in theirs - found}
    extra = {k: "unexplained" for k in found - theirs}
    assert {k: TRIVY_ONLY.get(image, {}).get(k, v) for k, v in missing.items()} == TRIVY_ONLY.get(image, {})
    assert {k: KEELWATCH_ONLY.get(image, {}).get(k, v) for k, v in extra.items()} == KEELWATCH_ONLY.get(image, {})


@pytest.mark.parametrize(("image", "ecosystem"), [("debian12-python", "Debian:12"), ("debian11-openssl", "Debian:11"),
                                                  ("node-app", "Debian:12")])
def test_os_packages_carry_the_release_ecosystem_and_source(images_dir, image, ecosystem):
    result = ours(images_dir / f"{image}.oci.tar", None)
    os_packages = [p for p in result.packages if p.kind == "os"]
    assert os_packages and {p.ecosystem for p in os_packages} == {ecosystem}
    doc = json.loads((images_dir / f"{image}.trivy.cdx.json").read_text())
    trivy_source = {}
    for c in doc["components"]:
        props = {p["name"]: p["value"] for p in c.get("properties", [])}
        if "aquasecurity:trivy:SrcName" in props:
            # Trivy splits the source version into epoch, version and release; Debian writes it whole.
            version = props["aquasecurity:trivy:SrcVersion"]
            if props.get("aquasecurity:trivy:SrcRelease"):
                version += "-" + props["aquasecurity:trivy:SrcRelease"]
            if props.get("aquasecurity:trivy:SrcEpoch"):
                version = props["aquasecurity:trivy:SrcEpoch"] + ":" + version
            trivy_source[c["name"]] = (props["aquasecurity:trivy:SrcName"], version)
    assert {p.name: (p.source_name, p.source_version) for p in os_packages} == trivy_source


def test_layer_of_each_package_agrees_with_trivy(images_dir):
    result = ours(images_dir / "debian12-python.oci.tar", None)
    doc = json.loads((images_dir / "debian12-python.trivy.cdx.json").read_text())
    theirs = {}
    for c in doc["components"]:
        props = {p["name"]: p["value"] for p in c.get("properties", [])}
        if c.get("purl") and "aquasecurity:trivy:LayerDigest" in props:
            theirs[identity(c["purl"])] = props["aquasecurity:trivy:LayerDigest"]
    mine = {identity(p.purl): p.layer_digest for p in result.packages}
    assert theirs and {k: mine.get(k) for k in theirs} == theirs
