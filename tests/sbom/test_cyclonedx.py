"""CycloneDX 1.6 output: schema-valid (the official schema, shipped with cyclonedx-python-lib),
one versioned purl per package (an interface other tools rely on), stable and deterministic."""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from datetime import UTC, datetime

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from keelwatch.model import CatalogResult, Image, OSRelease, Package, Platform
from keelwatch.sbom import to_cyclonedx

SERIAL = uuid.UUID("8f3c1a52-6a8e-4f5b-9d1e-2b7c4e9a0f11")
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
VALIDATOR = JsonStrictValidator(SchemaVersion.V1_6)


def render(result: CatalogResult) -> dict:
    text = to_cyclonedx(result, serial_number=SERIAL, timestamp=WHEN)
    errors = VALIDATOR.validate_str(text)
    assert errors is None, f"not valid CycloneDX 1.6: {errors}"
    return json.loads(text)


def props(component: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for prop in component.get("properties", []):
        out.setdefault(prop["name"], []).append(prop["value"])
    return out


def libraries(doc: dict) -> list[dict]:
    return [c for c in doc.get("components", []) if c["type"] == "library"]


def test_every_shared_image_gives_a_valid_document_with_every_package(catalogs):
    for name, result in catalogs.items():
        doc = render(result)
        assert doc["specVersion"] == "1.6" and doc["bomFormat"] == "CycloneDX"
        components = libraries(doc)
        assert len(components) == len(result.packages), name
        by_ref = {c["bom-ref"]: c for c in components}
        for package in result.packages:
            component = by_ref[package.id]  # bom-ref is the stable package id
            purl = PackageURL.from_string(component["purl"])
            assert purl.version, f"{name}: {package.name} has a purl without a version"
            assert component["version"] == package.version
            p = props(component)
            assert p["keelwatch:package:ecosystem"] == [package.ecosystem]
            assert p["keelwatch:package:found_by"] == [package.found_by]
            assert p["keelwatch:package:location"] == [package.location]
            assert p.get("keelwatch:package:layer_digest") == ([package.layer_digest] if package.layer_digest else None)


def test_image_os_and_dependencies(catalogs):
    result = catalogs["debian12-python"]
    doc = render(result)
    image = doc["metadata"]["component"]
    assert image["type"] == "container"
    assert image["name"] == result.image.name
    assert image["version"] == result.image.manifest_digest
    purl = PackageURL.from_string(image["purl"])
    assert purl.type == "oci" and purl.version == result.image.manifest_digest
    assert purl.qualifiers.get("arch") == "amd64"
    assert props(image)["keelwatch:image:config_digest"] == [result.image.config_digest]
    assert doc["metadata"]["tools"]["components"][0]["name"] == "keelwatch"

    os_components = [c for c in doc["components"] if c["type"] == "operating-system"]
    assert [(c["name"], c["version"]) for c in os_components] == [("debian", "12")]

    graph = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert set(graph[image["bom-ref"]]) == {c["bom-ref"] for c in doc["components"]}


def test_dpkg_packages_carry_source_and_distro(catalogs):
    doc = render(catalogs["debian12-python"])
    by_name = {c["name"]: c for c in libraries(doc)}
    libssl = by_name["libssl3"]
    assert libssl["purl"].startswith("pkg:deb/debian/libssl3@3.0.")
    assert "distro=debian-12" in libssl["purl"]
    p = props(libssl)
    assert p["keelwatch:package:source_name"] == ["openssl"]
    assert p["keelwatch:package:ecosystem"] == ["Debian:12"]
    assert p["keelwatch:package:kind"] == ["os"]
    assert p["keelwatch:package:arch"] == ["amd64"]
    # An epoch stays in the version and is a purl qualifier, as the purl spec and Trivy write it.
    libcrypt = by_name["libcrypt1"]
    assert libcrypt["version"] == "1:4.4.33-2"
    assert PackageURL.from_string(libcrypt["purl"]).qualifiers["epoch"] == "1"


def test_output_is_deterministic_whatever_the_package_order(catalogs):
    result = catalogs["debian12-python"]
    first = to_cyclonedx(result, serial_number=SERIAL, timestamp=WHEN)
    shuffled = list(result.packages)
    random.Random(7).shuffle(shuffled)
    again = to_cyclonedx(dataclasses.replace(result, packages=shuffled), serial_number=SERIAL, timestamp=WHEN)
    assert first == again
    names = [c["name"] for c in libraries(json.loads(first))]
    assert names == sorted(names)
    # Without fixed values, only the serial number and timestamp differ.
    a, b = json.loads(to_cyclonedx(result)), json.loads(to_cyclonedx(result))
    assert a["serialNumber"] != b["serialNumber"]
    for doc in (a, b):
        doc.pop("serialNumber")
        doc["metadata"].pop("timestamp")
    assert a == b


def image(**changes) -> Image:
    base = Image(reference="registry:registry.example.com/team/app:1.4", name="registry.example.com/team/app",
                 manifest_digest="sha256:" + "ab" * 32, config_digest="sha256:" + "cd" * 32,
                 platform=Platform("linux", "arm64", "v8"), os=OSRelease("alpine", "3.19.1"), source_kind="registry")
    return dataclasses.replace(base, **changes)


def test_synthetic_packages_licenses_maven_and_missing_purls_stay_valid():
    packages = [
        Package("Maven", "org.apache.commons:commons-text", "1.9", purl="pkg:maven/org.apache.commons/commons-text@1.9",
                licenses=("Apache-2.0",)),
        # A cataloger that wrote no purl, or one without a version, still gives a versioned purl.
        Package("PyPI", "Django", "3.2.12", licenses=("BSD-3-Clause", "MIT OR Apache-2.0", "Some Custom License")),
        Package("npm", "@babel/core", "7.23.2", purl="pkg:npm/%40babel/core"),
        Package("Alpine:v3.19", "musl", "1.2.4-r2", kind="os", arch="x86_64", source_name="musl"),
        Package("Go", "stdlib", "v1.22.1", licenses=("(MIT OR Apache-2.0) AND BSD-3-Clause",)),
        # The same package listed twice in one database: both kept, refs made unique.
        Package("npm", "ms", "2.1.3", purl="pkg:npm/ms@2.1.3", location="app/node_modules/ms/package.json"),
        Package("npm", "ms", "2.1.3", purl="pkg:npm/ms@2.1.3", location="app/node_modules/ms/package.json"),
    ]
    doc = render(CatalogResult(image=image(), packages=packages))
    components = libraries(doc)
    assert len(components) == len(packages)
    assert len({c["bom-ref"] for c in components}) == len(packages)
    by_name = {(c.get("group"), c["name"]): c for c in components}
    maven = by_name[("org.apache.commons", "commons-text")]
    assert maven["purl"] == "pkg:maven/org.apache.commons/commons-text@1.9"
    assert by_name[(None, "Django")]["purl"] == "pkg:pypi/django@3.2.12"
    assert [lic.get("license", {}).get("name") for lic in by_name[(None, "Django")]["licenses"]][2] == \
        "Some Custom License"
    assert by_name[(None, "@babel/core")]["purl"] == "pkg:npm/%40babel/core@7.23.2"
    assert by_name[(None, "musl")]["purl"] == "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64"
    assert by_name[(None, "stdlib")]["licenses"] == [{"expression": "(MIT OR Apache-2.0) AND BSD-3-Clause"}]

    purl = PackageURL.from_string(doc["metadata"]["component"]["purl"])
    assert (purl.name, purl.version) == ("app", "sha256:" + "ab" * 32)
    assert purl.qualifiers == {"arch": "arm64", "repository_url": "registry.example.com/team/app", "tag": "1.4"}


def test_an_empty_image_says_so_with_an_empty_component_list():
    doc = render(CatalogResult(image=image(os=None), packages=[]))
    assert doc["components"] == []


@pytest.mark.parametrize("kind, tags, expected", [
    ("docker-archive", ("myorg/tool:2.0",), ("tool", "docker.io/myorg/tool", "2.0")),
    ("oci-archive", (), ("debian12-python", None, None)),
])
def test_image_purl_of_local_archives(kind, tags, expected):
    img = image(reference=f"{kind}:/tmp/debian12-python.oci.tar", name="/tmp/debian12-python.oci.tar",
                source_kind=kind, repo_tags=tags)
    purl = PackageURL.from_string(render(CatalogResult(image=img, packages=[]))["metadata"]["component"]["purl"])
    assert (purl.name, purl.qualifiers.get("repository_url"), purl.qualifiers.get("tag")) == expected
