"""SPDX 2.3 output: valid against the official SPDX 2.3 JSON schema (kept in schemas/), one
versioned purl per package, DESCRIBES and CONTAINS relationships, a namespace per image digest."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime

import jsonschema
from packageurl import PackageURL

from keelwatch import __version__
from keelwatch.model import CatalogResult, Image, Package, Platform
from keelwatch.sbom import to_spdx

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# From the SPDX 2.3 specification (the 2.3 schema itself does not check it).
SPDX_ID = re.compile(r"^SPDXRef-[a-zA-Z0-9.-]+$")


def render(result: CatalogResult, schema: dict) -> dict:
    doc = json.loads(to_spdx(result, timestamp=WHEN))
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "not valid SPDX 2.3: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    for package in doc["packages"]:
        assert SPDX_ID.match(package["SPDXID"]), package["SPDXID"]
    ids = [p["SPDXID"] for p in doc["packages"]]
    assert len(ids) == len(set(ids))
    return doc


def purls(package: dict) -> list[str]:
    return [r["referenceLocator"] for r in package.get("externalRefs", []) if r["referenceType"] == "purl"]


def test_the_schema_is_the_official_one(spdx_schema):
    assert spdx_schema["title"] == "SPDX 2.3"
    assert spdx_schema["$id"] == "http://spdx.org/rdf/terms/2.3"
    jsonschema.Draft201909Validator.check_schema(spdx_schema)


def test_every_shared_image_gives_a_valid_document_with_every_package(catalogs, spdx_schema):
    for name, result in catalogs.items():
        doc = render(result, spdx_schema)
        assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0"
        assert doc["creationInfo"]["creators"] == [f"Tool: keelwatch-{__version__}"]
        assert doc["creationInfo"]["created"] == "2024-05-01T12:00:00Z"
        by_id = {p["SPDXID"]: p for p in doc["packages"]}
        relations = {(r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]) for r in doc["relationships"]}
        assert ("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image") in relations
        image = by_id["SPDXRef-Image"]
        assert image["primaryPackagePurpose"] == "CONTAINER"
        assert image["versionInfo"] == result.image.manifest_digest
        assert PackageURL.from_string(purls(image)[0]).version == result.image.manifest_digest

        packages = [p for p in doc["packages"] if p["SPDXID"].startswith("SPDXRef-Package-")]
        assert len(packages) == len(result.packages), name
        for package in result.packages:
            entry = by_id[f"SPDXRef-Package-{package.id}"]
            assert ("SPDXRef-Image", "CONTAINS", entry["SPDXID"]) in relations
            assert entry["name"] == package.name and entry["versionInfo"] == package.version
            (purl,) = purls(entry)
            assert PackageURL.from_string(purl).version, f"{name}: {package.name} has a purl without a version"
            refs = entry["externalRefs"]
            assert refs[0]["referenceCategory"] == "PACKAGE-MANAGER"


def test_os_source_package_and_keelwatch_fields(catalogs, spdx_schema):
    doc = render(catalogs["debian11-openssl"], spdx_schema)
    by_name = {p["name"]: p for p in doc["packages"]}
    os_package = next(p for p in doc["packages"] if p["SPDXID"] == "SPDXRef-OperatingSystem")
    assert (os_package["name"], os_package["versionInfo"]) == ("debian", "11")
    libssl = by_name["libssl1.1"]
    assert libssl["sourceInfo"].startswith("built package from: openssl 1.1.1")
    notes = {a["comment"].split(": ", 1)[0]: a["comment"].split(": ", 1)[1] for a in libssl["annotations"]}
    assert notes["keelwatch:package:ecosystem"] == "Debian:11"
    assert notes["keelwatch:package:source_name"] == "openssl"


def test_namespace_is_per_image_digest_and_stable(catalogs, spdx_schema):
    result = catalogs["debian12-python"]
    first = render(result, spdx_schema)["documentNamespace"]
    assert first == json.loads(to_spdx(result))["documentNamespace"]
    assert result.image.manifest_digest.split(":")[1] in first
    other = catalogs["debian11-openssl"]
    assert render(other, spdx_schema)["documentNamespace"] != first
    # Same digest, another package set (a newer cataloger): another document.
    fewer = dataclasses.replace(result, packages=result.packages[1:])
    assert render(fewer, spdx_schema)["documentNamespace"] != first


def test_licenses_become_one_expression_with_declared_refs(spdx_schema):
    img = Image(reference="dir:/srv/root", name="/srv/root", manifest_digest="sha256:" + "ef" * 32, config_digest="",
                platform=Platform(), source_kind="dir")
    packages = [
        Package("PyPI", "Django", "3.2.12", licenses=("BSD-3-Clause", "MIT OR Apache-2.0", "Some Custom License")),
        Package("npm", "left-pad", "1.3.0", purl="pkg:npm/left-pad@1.3.0", licenses=("WTFPL",)),
        Package("npm", "nothing", "1.0.0", purl="pkg:npm/nothing@1.0.0"),
    ]
    doc = render(CatalogResult(image=img, packages=packages), spdx_schema)
    by_name = {p["name"]: p for p in doc["packages"]}
    (extracted,) = doc["hasExtractedLicensingInfos"]
    assert extracted["name"] == "Some Custom License"
    assert by_name["Django"]["licenseDeclared"] == f"BSD-3-Clause AND (MIT OR Apache-2.0) AND {extracted['licenseId']}"
    assert by_name["left-pad"]["licenseDeclared"] == "WTFPL"
    assert by_name["nothing"]["licenseDeclared"] == "NOASSERTION"
    assert purls(by_name["Django"]) == ["pkg:pypi/django@3.2.12"]
    assert "SPDXRef-OperatingSystem" not in {p["SPDXID"] for p in doc["packages"]}
