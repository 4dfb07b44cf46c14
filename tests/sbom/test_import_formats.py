"""Import of SPDX, Syft JSON and Trivy JSON (samples in samples/, see its README), round trips of
keelwatch's own output, and bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from keelwatch.errors import SbomError
from keelwatch.model import CatalogResult, Image, OSRelease, Package, Platform
from keelwatch.sbom import detect_format, import_sbom, to_cyclonedx, to_spdx

SAMPLES = Path(__file__).parent / "samples"

IDENTITY = ("ecosystem", "name", "version", "purl", "source_name", "source_version")
EVERYTHING = (*IDENTITY, "kind", "arch", "layer_digest", "location", "found_by", "licenses")


def load(name: str) -> CatalogResult:
    return import_sbom((SAMPLES / name).read_bytes(), name)


def rows(result: CatalogResult, fields=IDENTITY) -> list[tuple]:
    return sorted(tuple(getattr(p, f) for f in fields) for p in result.packages)


def same_as_trivy_cdx(result: CatalogResult, images_dir, sbom: str) -> None:
    """Every package of a trimmed sample is, field for field, the one Trivy's CycloneDX SBOM of the
    same image gives: the three Trivy formats read the same."""
    fields = (*IDENTITY, "kind", "arch", "layer_digest", "location")
    reference = set(rows(import_sbom((images_dir / sbom).read_bytes(), sbom), fields))
    missing = [row for row in rows(result, fields) if row not in reference]
    assert not missing


# -- Trivy JSON ---------------------------------------------------------------------------------

def test_trivy_json_report(images_dir):
    result = load("trivy-debian12-python.json")
    assert detect_format(json.loads((SAMPLES / "trivy-debian12-python.json").read_bytes())) == "trivy-json"
    assert rows(result) == [
        ("Debian:12", "base-files", "12.4+deb12u15",
         "pkg:deb/debian/base-files@12.4%2Bdeb12u15?arch=amd64&distro=debian-12.15", "base-files", "12.4+deb12u15"),
        ("Debian:12", "libcrypt1", "1:4.4.33-2",
         "pkg:deb/debian/libcrypt1@4.4.33-2?arch=amd64&distro=debian-12.15&epoch=1", "libxcrypt", "1:4.4.33-2"),
        ("Debian:12", "libssl3", "3.0.20-1~deb12u2",
         "pkg:deb/debian/libssl3@3.0.20-1~deb12u2?arch=amd64&distro=debian-12.15", "openssl", "3.0.20-1~deb12u2"),
        ("Debian:12", "python3.11-minimal", "3.11.2-6+deb12u8",
         "pkg:deb/debian/python3.11-minimal@3.11.2-6%2Bdeb12u8?arch=amd64&distro=debian-12.15", "python3.11",
         "3.11.2-6+deb12u8"),
        ("PyPI", "Django", "3.2.12", "pkg:pypi/django@3.2.12", "", ""),
        ("PyPI", "certifi", "2020.12.5", "pkg:pypi/certifi@2020.12.5", "", ""),
    ]
    image = result.image
    assert image.config_digest == "sha256:ea11677105c55f163bd9a2b8b3e36b2bb9851e247ea1d689a88ad3a4e1efc9b5"
    assert (str(image.platform), image.os.ecosystem, image.repo_tags) == (
        "linux/amd64", "Debian:12", ("keelwatch-fixtures/debian12-python:latest",))
    layers = [(layer.index, layer.digest[:15]) for layer in image.layers]
    assert layers == [(0, "sha256:a11dcb44"), (1, "sha256:9ad6f0d7")]
    assert result.extra["sbom"]["identity"] == "package-set"
    same_as_trivy_cdx(result, images_dir, "debian12-python.trivy.cdx.json")


def test_trivy_json_go_binaries_locate_their_modules(images_dir):
    result = load("trivy-go-tools.json")
    by_location = {(p.name, p.version): p.location for p in result.packages}
    assert by_location[("stdlib", "v1.24.1")] == "usr/local/bin/dive"
    assert by_location[("mvdan.cc/sh/v3", "v3.13.0")] == "usr/local/bin/shfmt"
    assert {p.ecosystem for p in result.packages} == {"Go"}
    same_as_trivy_cdx(result, images_dir, "go-tools.trivy.cdx.json")


def test_trivy_json_repo_digest_is_the_identity():
    doc = json.loads((SAMPLES / "trivy-debian12-python.json").read_bytes())
    digest = "sha256:" + "12" * 32
    doc["Metadata"]["RepoDigests"] = [f"registry.example.com/app@{digest}"]
    result = import_sbom(json.dumps(doc).encode(), "with-digest")
    assert (result.image.manifest_digest, result.extra["sbom"]["identity"]) == (digest, "manifest-digest")


def test_trivy_json_without_packages_says_how_to_get_them():
    doc = json.loads((SAMPLES / "trivy-debian12-python.json").read_bytes())
    for result in doc["Results"]:
        del result["Packages"]
    with pytest.raises(SbomError, match="lists no packages") as raised:
        import_sbom(json.dumps(doc).encode(), "vulns-only.json")
    assert "--list-all-pkgs" in str(raised.value)


# -- SPDX -----------------------------------------------------------------------------------------

def test_trivy_spdx(images_dir):
    result = load("trivy-debian12-python.spdx.json")
    assert [(p.name, p.source_name, p.ecosystem) for p in sorted(result.packages, key=lambda p: p.name)] == [
        ("Django", "", "PyPI"), ("base-files", "base-files", "Debian:12"), ("certifi", "", "PyPI"),
        ("libcrypt1", "libxcrypt", "Debian:12"), ("libssl3", "openssl", "Debian:12"),
    ]
    assert result.image.config_digest == "sha256:ea11677105c55f163bd9a2b8b3e36b2bb9851e247ea1d689a88ad3a4e1efc9b5"
    assert result.image.os == OSRelease("debian", "12.15")
    django = next(p for p in result.packages if p.name == "Django")
    assert django.location == "usr/local/lib/python3.11/dist-packages/Django-3.2.12.dist-info/METADATA"
    assert not result.warnings
    same_as_trivy_cdx(result, images_dir, "debian12-python.trivy.cdx.json")


def test_syft_spdx():
    result = load("syft-alpine.spdx.json")
    assert rows(result) == [
        ("Alpine:v3.19", "libcrypto3", "3.1.4-r5",
         "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&upstream=openssl&distro=alpine-3.19.1", "openssl", "3.1.4-r5"),
        ("Alpine:v3.19", "musl", "1.2.4_git20230717-r4",
         "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1", "musl", "1.2.4_git20230717-r4"),
        ("npm", "@babel/core", "7.23.2", "pkg:npm/%40babel/core@7.23.2", "", ""),
        ("npm", "lodash", "4.17.20", "pkg:npm/lodash@4.17.20", "", ""),
    ]
    image = result.image
    assert image.manifest_digest == "sha256:45dcad8b8b53b5c28d74dfc8a554d88420ffba9617263dc37edd6a05820e4e94"
    assert (image.name, image.platform.architecture, image.os) == ("alpine", "amd64", None)
    assert result.extra["sbom"]["identity"] == "manifest-digest"
    locations = {p.name: p.location for p in result.packages}
    assert locations["musl"] == "lib/apk/db/installed"
    assert locations["lodash"] == "app/node_modules/lodash/package.json"


# -- Syft JSON -----------------------------------------------------------------------------------

def test_syft_json():
    result = load("syft-debian12-app.json")
    assert rows(result) == [
        ("Debian:12", "libcrypt1", "1:4.4.33-2",
         "pkg:deb/debian/libcrypt1@1:4.4.33-2?arch=amd64&upstream=libxcrypt&distro=debian-12", "libxcrypt",
         "1:4.4.33-2"),
        ("Debian:12", "libssl3", "3.0.11-1~deb12u2",
         "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&upstream=openssl&distro=debian-12", "openssl",
         "3.0.11-1~deb12u2"),
        ("Debian:12", "tzdata", "2024a-0+deb12u1", "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
         "tzdata", "2024a-0+deb12u1"),
        ("Go", "golang.org/x/net", "v0.17.0", "pkg:golang/golang.org/x/net@v0.17.0", "", ""),
        # Syft names a Maven package by its artifact id; the purl gives the group.
        ("Maven", "org.apache.commons:commons-text", "1.9", "pkg:maven/org.apache.commons/commons-text@1.9", "", ""),
        ("PyPI", "Django", "3.2.12", "pkg:pypi/django@3.2.12", "", ""),
    ]
    image = result.image
    assert image.manifest_digest == "sha256:85e102fdc8fccfc152e8a81ce8c9bc4365bbdf5944efb7a3cab0d24b58a00dbe"
    assert image.config_digest == "sha256:4cbc809f8d79870d3409bdd1beb8c46d359d29e5da1481a42088ad948ca0eed3"
    assert image.os == OSRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)", "bookworm")
    assert image.repo_tags == ("registry.example.com/team/app:1.4.2",)
    # Syft records the diff ID of a package's layer; the embedded manifest and config map it to the blob.
    blobs = [layer.digest for layer in image.layers]
    layer_of = {p.name: p.layer_digest for p in result.packages}
    assert layer_of["libssl3"] == blobs[0] and layer_of["Django"] == blobs[1]
    assert {p.name: p.location for p in result.packages}["libssl3"] == "var/lib/dpkg/status"
    assert [w.message for w in result.warnings] == ["artifacts[6]: app-without-purl: no purl, skipped"]


# -- round trips -------------------------------------------------------------------------------

@pytest.mark.parametrize("write", [to_cyclonedx, to_spdx])
def test_round_trip_of_every_shared_image(catalogs, write):
    for name, result in catalogs.items():
        back = import_sbom(write(result).encode(), f"{name}.sbom.json")
        assert rows(back) == rows(result), name
        # Our own SBOMs carry every field, so nothing is guessed on the way back.
        assert rows(back, EVERYTHING) == rows(result, EVERYTHING), name
        assert not back.warnings
        image, again = result.image, back.image
        assert (again.manifest_digest, again.config_digest, again.os, again.platform, again.name) == (
            image.manifest_digest, image.config_digest, image.os, image.platform, image.name)
        assert again.source_kind == "sbom" and back.extra["sbom"]["read_from"] == image.source_kind
        assert back.extra["sbom"]["identity"] == "manifest-digest"


@pytest.mark.parametrize("write", [to_cyclonedx, to_spdx])
def test_round_trip_of_awkward_packages(write):
    image = Image(reference="registry:registry.example.com/team/app:1.4", name="registry.example.com/team/app",
                  manifest_digest="sha256:" + "ab" * 32, config_digest="", platform=Platform("linux", "arm64", "v8"),
                  os=OSRelease("alpine", "3.19.1"), source_kind="registry",
                  repo_tags=("registry.example.com/team/app:1.4",))
    packages = [
        Package("Maven", "org.apache.commons:commons-text", "1.9",
                purl="pkg:maven/org.apache.commons/commons-text@1.9"),
        Package("PyPI", "zope.interface", "6.0", purl="pkg:pypi/zope-interface@6.0", licenses=("ZPL-2.1",)),
        Package("npm", "@babel/core", "7.23.2", purl="pkg:npm/%40babel/core@7.23.2"),
        Package("Alpine:v3.19", "libcrypto3", "3.1.4-r5", kind="os", arch="x86_64", source_name="openssl",
                source_version="3.1.4-r5", purl="pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=3.19.1"),
        Package("Go", "github.com/Azure/azure-sdk-for-go", "v68.0.0+incompatible",
                purl="pkg:golang/github.com/Azure/azure-sdk-for-go@v68.0.0%2Bincompatible"),
    ]
    back = import_sbom(write(CatalogResult(image=image, packages=packages)).encode(), "awkward")
    assert rows(back, EVERYTHING) == rows(CatalogResult(image=image, packages=packages), EVERYTHING)
    assert back.image.repo_tags == image.repo_tags and back.image.platform == image.platform


def test_package_set_identity_does_not_depend_on_order():
    doc = json.loads((SAMPLES / "trivy-debian12-python.json").read_bytes())
    first = import_sbom(json.dumps(doc).encode(), "a")
    doc["Results"].reverse()
    assert import_sbom(json.dumps(doc).encode(), "b").image.manifest_digest == first.image.manifest_digest
    doc["Results"][0]["Packages"].pop()
    assert import_sbom(json.dumps(doc).encode(), "c").image.manifest_digest != first.image.manifest_digest


# -- bad input -----------------------------------------------------------------------------------

CDX_HEAD = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}


@pytest.mark.parametrize("data, reason", [
    (b"", "not JSON"),
    (b"\xff\xfe\x00binary", "not JSON"),
    (b"{\"bomFormat\": \"CycloneDX\",", "not JSON"),
    (b"<?xml version=\"1.0\"?><bom xmlns=\"http://cyclonedx.org/schema/bom/1.6\"/>", "XML SBOMs are not read"),
    (b"SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n", "SPDX tag-value is not read"),
    (b"[1, 2, 3]", "not an object"),
    (json.dumps({"name": "left-pad", "version": "1.3.0", "dependencies": {}}).encode(), "not an SBOM keelwatch reads"),
    (json.dumps(CDX_HEAD).encode(), "no components"),
    (json.dumps({**CDX_HEAD, "specVersion": "1.2", "components": []}).encode(), "specVersion 1.2 is not read"),
    (json.dumps({**CDX_HEAD, "components": {"name": "x"}}).encode(), "components is a dict"),
    (json.dumps({**CDX_HEAD, "components": ["pkg:npm/x@1"]}).encode(), r"components\[0\] is a str"),
    (json.dumps({**CDX_HEAD, "metadata": [], "components": []}).encode(), "metadata is a list"),
    (json.dumps({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT"}).encode(), "no packages"),
    (json.dumps({"spdxVersion": "SPDX-3.0", "packages": [{}]}).encode(), "SPDX-3.0 is not read"),
    (json.dumps({"artifacts": "none", "source": {}}).encode(), "artifacts is a str"),
    (json.dumps({"SchemaVersion": 2, "ArtifactName": "x", "Results": []}).encode(), "lists no packages"),
])
def test_bad_input_is_an_sbom_error_with_a_one_line_reason(data, reason):
    with pytest.raises(SbomError, match=reason) as raised:
        import_sbom(data, "input.json")
    message = str(raised.value)
    assert "\n" not in message and message.startswith("input.json")


def test_unusable_entries_are_warnings_not_failures():
    doc = {**CDX_HEAD, "components": [
        {"type": "library", "name": "ok", "version": "1.0", "purl": "pkg:npm/ok@1.0"},
        {"type": "library", "name": "broken", "version": "1", "purl": "not a purl"},
        {"type": "library", "name": "no-version", "purl": "pkg:npm/no-version"},
        {"type": "library", "name": "no-purl", "version": "1"},
        {"type": "library", "name": "thing", "version": "1", "purl": "pkg:generic/thing@1"},
        {"type": "library", "name": "libx", "version": "1", "purl": "pkg:deb/debian/libx@1"},
        {"type": "application", "name": "usr/bin/tool"},
    ]}
    result = import_sbom(json.dumps(doc).encode(), "mixed.json")
    assert [(p.name, p.ecosystem) for p in result.packages] == [("ok", "npm"), ("thing", ""), ("libx", "Debian")]
    messages = [w.message for w in result.warnings]
    assert len(messages) == 5, messages
    assert any("invalid purl" in m for m in messages) and any("no version" in m for m in messages)
    assert any("no purl" in m for m in messages) and any("'generic' has no OSV ecosystem" in m for m in messages)
    assert any("no OS release known" in m for m in messages)


def test_nested_components_and_specversion_1_4():
    doc = {**CDX_HEAD, "specVersion": "1.4", "components": [
        {"type": "application", "name": "app.jar", "purl": "pkg:maven/com.example/app@2.0", "version": "2.0",
         "components": [{"type": "library", "group": "org.yaml", "name": "snakeyaml", "version": "1.33",
                         "purl": "pkg:maven/org.yaml/snakeyaml@1.33"}]},
    ]}
    result = import_sbom(json.dumps(doc).encode(), "nested.json")
    assert [(p.ecosystem, p.name, p.version) for p in result.packages] == [
        ("Maven", "com.example:app", "2.0"), ("Maven", "org.yaml:snakeyaml", "1.33")]
    assert dataclasses.asdict(result.image.platform) == {"os": "linux", "architecture": "", "variant": ""}


def test_an_spdx_document_describing_a_package_keeps_it_as_a_package():
    doc = {"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "my-service", "packages": [
        {"SPDXID": "SPDXRef-app", "name": "my-service", "versionInfo": "2.0.0", "downloadLocation": "NOASSERTION",
         "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                           "referenceLocator": "pkg:npm/my-service@2.0.0"}]},
        {"SPDXID": "SPDXRef-dep", "name": "lodash", "versionInfo": "4.17.21", "downloadLocation": "NOASSERTION",
         "externalRefs": [{"referenceCategory": "PACKAGE_MANAGER", "referenceType": "purl",
                           "referenceLocator": "pkg:npm/lodash@4.17.21"}]},
    ], "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                          "relatedSpdxElement": "SPDXRef-app"}]}
    result = import_sbom(json.dumps(doc).encode(), "project.spdx.json")
    assert sorted(p.name for p in result.packages) == ["lodash", "my-service"]
    assert result.image.name == "my-service" and result.extra["sbom"]["identity"] == "package-set"
