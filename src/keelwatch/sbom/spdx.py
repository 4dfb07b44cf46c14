"""SPDX 2.3 JSON out, written as a plain dict (the SPDX libraries are heavy for what we need).

Shape:

- ``SPDXRef-DOCUMENT`` DESCRIBES the image package (``SPDXRef-Image``, purpose CONTAINER, purl
  ``pkg:oci/…``, the manifest digest as its SHA256 checksum);
- the image CONTAINS the OS (``SPDXRef-OperatingSystem``) and every package
  (``SPDXRef-Package-<package id>``), each with a PACKAGE-MANAGER purl that carries its version;
- the source package goes in ``sourceInfo`` in Trivy's words (``built package from: openssl
  3.0.11-1``) so other tools read it too, and keelwatch's own fields in annotations
  (``keelwatch:package:ecosystem: Debian:12``), since SPDX 2.3 has no properties;
- ``documentNamespace`` is derived from the image digest and the package set, so it is unique per
  image and stable for the same catalog.

No files are listed (``filesAnalyzed: false``): they would multiply the size for little use.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cyclonedx.spdx import fixup_id, is_expression

from keelwatch import __version__
from keelwatch.model import CatalogResult, Image, OSRelease, Package
from keelwatch.sbom.common import (
    DIGEST,
    IMAGE_PREFIX,
    OS_PREFIX,
    PACKAGE_FIELDS,
    PACKAGE_PREFIX,
    image_purl,
    package_purl,
    package_set_digest,
)

TOOL = f"Tool: keelwatch-{__version__}"
NOASSERTION = "NOASSERTION"
NAMESPACE_BASE = "https://keelwatch.invalid/spdx/image/"  # .invalid: an identifier, never fetched
IMAGE_ID = "SPDXRef-Image"
OS_ID = "SPDXRef-OperatingSystem"


def to_spdx(result: CatalogResult, *, timestamp: datetime | None = None, indent: int | None = 2) -> str:
    """The catalog as an SPDX 2.3 JSON document (``timestamp`` fixed for tests)."""
    image = result.image
    created = (timestamp or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    licenses = _LicenseRefs()
    packages: list[dict[str, Any]] = [_image_package(image, created)]
    relationships = [_relationship("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)]
    if image.os:
        packages.append(_os_package(image.os, created))
        relationships.append(_relationship(IMAGE_ID, "CONTAINS", OS_ID))
    ordered = sorted(result.packages, key=lambda p: (p.ecosystem, p.name, p.version, p.id))
    for package, spdx_id in _with_unique_ids(ordered):
        packages.append(_package(package, spdx_id, created, licenses))
        relationships.append(_relationship(IMAGE_ID, "CONTAINS", spdx_id))

    document: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{image.name or image.reference}@{image.manifest_digest}",
        "documentNamespace": _namespace(result),
        "creationInfo": {"created": created, "creators": [TOOL]},
        "packages": packages,
        "relationships": relationships,
    }
    if licenses.extracted:
        document["hasExtractedLicensingInfos"] = licenses.extracted
    return json.dumps(document, indent=indent, ensure_ascii=False)


def _namespace(result: CatalogResult) -> str:
    digest = result.image.manifest_digest or package_set_digest(result.packages)
    content = package_set_digest(result.packages).split(":", 1)[1][:16]
    return f"{NAMESPACE_BASE}{digest.replace(':', '-')}/{content}"


def _image_package(image: Image, created: str) -> dict[str, Any]:
    package: dict[str, Any] = {
        "SPDXID": IMAGE_ID,
        "name": image.name or image.reference,
        "versionInfo": image.manifest_digest,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER",
        "externalRefs": [_purl_ref(image_purl(image))],
    }
    if DIGEST.match(image.manifest_digest):
        algorithm, _, value = image.manifest_digest.partition(":")
        package["checksums"] = [{"algorithm": algorithm.upper(), "checksumValue": value}]
    fields = [
        ("config_digest", image.config_digest), ("index_digest", image.index_digest or ""),
        ("platform", str(image.platform)), ("reference", image.reference), ("source_kind", image.source_kind),
        *(("repo_tag", tag) for tag in image.repo_tags),
    ]
    package["annotations"] = _annotations(((IMAGE_PREFIX + k, v) for k, v in fields), created)
    return package


def _os_package(os: OSRelease, created: str) -> dict[str, Any]:
    package: dict[str, Any] = {
        "SPDXID": OS_ID,
        "name": os.id,
        "versionInfo": os.version_id,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "primaryPackagePurpose": "OPERATING_SYSTEM",
    }
    if os.pretty_name:
        package["description"] = os.pretty_name
    annotations = _annotations([(OS_PREFIX + "version_codename", os.version_codename)], created)
    if annotations:
        package["annotations"] = annotations
    if not os.version_id:
        del package["versionInfo"]
    return package


def _package(package: Package, spdx_id: str, created: str, licenses: _LicenseRefs) -> dict[str, Any]:
    out: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": package.name,
        "versionInfo": package.version,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": licenses.expression(package.licenses),
        "copyrightText": NOASSERTION,
        "externalRefs": [_purl_ref(package_purl(package))],
        "primaryPackagePurpose": "LIBRARY",
    }
    if package.source_name and (package.source_name, package.source_version) != (package.name, package.version):
        out["sourceInfo"] = f"built package from: {package.source_name} {package.source_version}".rstrip()
    annotations = _annotations(((PACKAGE_PREFIX + f, getattr(package, f)) for f in PACKAGE_FIELDS), created)
    if annotations:
        out["annotations"] = annotations
    return out


def _with_unique_ids(packages: Iterable[Package]) -> Iterable[tuple[Package, str]]:
    seen: dict[str, int] = {}
    for package in packages:
        base = f"SPDXRef-Package-{package.id}"
        count = seen.get(base, 0)
        seen[base] = count + 1
        yield package, base if count == 0 else f"{base}-{count + 1}"


def _purl_ref(purl: str) -> dict[str, str]:
    return {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}


def _relationship(source: str, kind: str, target: str) -> dict[str, str]:
    return {"spdxElementId": source, "relationshipType": kind, "relatedSpdxElement": target}


def _annotations(pairs: Iterable[tuple[str, str]], created: str) -> list[dict[str, str]]:
    return [{"annotationDate": created, "annotationType": "OTHER", "annotator": TOOL, "comment": f"{name}: {value}"}
            for name, value in pairs if value]


class _LicenseRefs:
    """License strings → one SPDX expression; a name that is no SPDX id becomes a ``LicenseRef-``
    declared once in ``hasExtractedLicensingInfos`` (an expression may only hold ids and refs)."""

    def __init__(self) -> None:
        self.extracted: list[dict[str, str]] = []
        self._refs: dict[str, str] = {}

    def expression(self, values: Iterable[str]) -> str:
        parts = []
        for value in dict.fromkeys(v.strip() for v in values if v and v.strip()):
            spdx_id = fixup_id(value)
            if spdx_id:
                parts.append(spdx_id)
            elif is_expression(value):
                parts.append(f"({value})")
            else:
                parts.append(self._ref(value))
        if not parts:
            return NOASSERTION
        if len(parts) == 1 and parts[0].startswith("(") and parts[0].endswith(")"):
            return parts[0][1:-1]
        return " AND ".join(parts)

    def _ref(self, name: str) -> str:
        ref = self._refs.get(name)
        if ref is None:
            slug = re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-")[:40] or "license"
            ref = f"LicenseRef-{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
            self._refs[name] = ref
            self.extracted.append({"licenseId": ref, "name": name, "extractedText": name,
                                   "comment": "a license name found in package metadata, not an SPDX identifier"})
        return ref
