"""SPDX 2.2/2.3 JSON in: keelwatch's own, Trivy's, Syft's, or any tool's.

- image: the package the document DESCRIBES (``relationships`` or the older ``documentDescribes``);
  manifest digest from its ``pkg:oci`` purl, a digest-shaped ``versionInfo``, or Trivy's
  ``RepoDigest:`` annotation; config digest from Trivy's ``ImageID:`` annotation or ours.
- OS: a package whose ``primaryPackagePurpose`` is ``OPERATING_SYSTEM`` (Trivy writes
  ``OPERATING-SYSTEM``), name = os-release ID, ``versionInfo`` = version.
- packages: every other package with a ``purl`` external reference. Source package from our
  annotations, Trivy's ``sourceInfo`` (``built package from: openssl 3.0.11-1``) or the purl's
  ``upstream`` qualifier (Syft); layer from Trivy's ``LayerDigest:`` annotation; location from
  Syft's ``sourceInfo`` (``acquired package info from …: /var/lib/dpkg/status``).
"""

from __future__ import annotations

import re
from typing import Any

from packageurl import PackageURL

from keelwatch.errors import SbomError
from keelwatch.model import CatalogResult, OSRelease, Platform
from keelwatch.sbom.common import IMAGE_PREFIX, OS_PREFIX, PACKAGE_PREFIX
from keelwatch.sbom.reading import ImageFacts, PackageFacts, ResultBuilder, digest_of, items, obj, text

NAME = "spdx-json"
_BUILT_FROM = re.compile(r"^built package from:\s*(\S+)(?:\s+(\S+))?\s*$")
_ACQUIRED = re.compile(r":\s*(/\S+)\s*$")
_OS_PURPOSES = ("OPERATING_SYSTEM", "OPERATING-SYSTEM")
_NOT_LICENSES = ("", "NOASSERTION", "NONE")


def detect(doc: dict[str, Any]) -> bool:
    return isinstance(doc.get("spdxVersion"), str) and doc["spdxVersion"].startswith("SPDX-")


def read(doc: dict[str, Any], source_name: str) -> CatalogResult:
    version = text(doc.get("spdxVersion"))
    if version not in ("SPDX-2.2", "SPDX-2.3"):
        raise SbomError(f"{version} is not read (SPDX-2.2 and SPDX-2.3 JSON are)")
    packages = items(doc.get("packages"), "packages")
    if not packages:
        raise SbomError("SPDX document has no packages: nothing to import")
    by_id = {text(p.get("SPDXID")): p for p in packages}
    described = [text(r.get("relatedSpdxElement")) for r in items(doc.get("relationships"), "relationships")
                 if r.get("relationshipType") == "DESCRIBES" and r.get("spdxElementId") == "SPDXRef-DOCUMENT"]
    described += [text(d) for d in doc.get("documentDescribes") or [] if isinstance(d, str)]
    root = next((by_id[d] for d in described if d in by_id), None)
    if root is not None and not _is_image(root):
        root = None  # an SBOM of a project or a single package: what it describes is a package too
    licenses = {text(e.get("licenseId")): text(e.get("name")) for e in
                items(doc.get("hasExtractedLicensingInfos"), "hasExtractedLicensingInfos")}

    facts = _image(root, text(doc.get("name")))
    os_package = next((p for p in packages if p.get("primaryPackagePurpose") in _OS_PURPOSES), None)
    if os_package is not None:
        notes = _annotations(os_package)
        facts.os = OSRelease(id=text(os_package.get("name")).lower(), version_id=text(os_package.get("versionInfo")),
                             pretty_name=text(os_package.get("description")),
                             version_codename=notes.get(OS_PREFIX + "version_codename", ""))

    located = _locations(doc, by_id)
    builder = ResultBuilder(NAME, source_name)
    for index, package in enumerate(packages):
        if package is root or package is os_package:
            continue
        purl = _purl(package)
        if not purl:
            if package.get("primaryPackagePurpose") in (None, "LIBRARY", "FRAMEWORK"):
                builder.warn(f"packages[{index}]: {text(package.get('name')) or '?'}: no purl, skipped")
            continue
        if purl.startswith(("pkg:oci/", "pkg:docker/")):
            continue
        facts_ = _package(package, purl, licenses)
        facts_.location = facts_.location or located.get(text(package.get("SPDXID")), "")
        builder.add(facts_, facts.os, f"packages[{index}]")
    creators = obj(doc.get("creationInfo"), "creationInfo").get("creators") or []
    tool = ", ".join(c.removeprefix("Tool: ") for c in creators if isinstance(c, str) and c.startswith("Tool:"))
    return builder.result(facts, tool=tool, spec_version=version.removeprefix("SPDX-"))


def _is_image(package: dict[str, Any]) -> bool:
    purl = _purl(package)
    is_container = package.get("primaryPackagePurpose") == "CONTAINER"
    return is_container or not purl or purl.startswith(("pkg:oci/", "pkg:docker/"))


def _locations(doc: dict[str, Any], packages: dict[str, dict[str, Any]]) -> dict[str, str]:
    """SPDXID of a package → the file it was read from. Trivy relates a language package to its
    metadata file (package CONTAINS file), and a Go binary (an APPLICATION package named by its
    path) to its main module (CONTAINS), which DEPENDS_ON the rest; a module in two binaries keeps
    the first."""
    files = {text(f.get("SPDXID")): text(f.get("fileName")) for f in items(doc.get("files"), "files")}
    applications = {spdx_id: text(p.get("name")) for spdx_id, p in packages.items()
                    if p.get("primaryPackagePurpose") == "APPLICATION" and not _purl(p)}
    located: dict[str, str] = {}
    children: dict[str, list[str]] = {}
    for relation in items(doc.get("relationships"), "relationships"):
        kind = relation.get("relationshipType")
        parent, child = text(relation.get("spdxElementId")), text(relation.get("relatedSpdxElement"))
        if kind == "CONTAINS" and parent in packages and child in files:
            located.setdefault(parent, files[child])
        elif kind in ("CONTAINS", "DEPENDS_ON") and child in packages:
            children.setdefault(parent, []).append(child)
    for spdx_id, path in applications.items():
        pending = list(children.get(spdx_id, ()))
        while pending:
            child = pending.pop()
            if child in located or child in applications:
                continue
            located[child] = path
            pending.extend(children.get(child, ()))
    return located


def _purl(package: dict[str, Any]) -> str:
    for ref in items(package.get("externalRefs"), "externalRefs"):
        if ref.get("referenceType") == "purl" and text(ref.get("referenceLocator")):
            return text(ref.get("referenceLocator"))
    return ""


def _annotations(package: dict[str, Any]) -> dict[str, str]:
    """``Name: value`` annotation comments (Trivy's and ours) as a mapping, first value wins."""
    out: dict[str, str] = {}
    for name, value in _all_annotations(package):
        out.setdefault(name, value)
    return out


def _image(root: dict[str, Any] | None, document_name: str) -> ImageFacts:
    if root is None:
        return ImageFacts(name=document_name)
    notes = _annotations(root)
    facts = ImageFacts(name=text(root.get("name")) or document_name)
    purl = _purl(root)
    if purl.startswith("pkg:oci/"):
        try:
            parsed = PackageURL.from_string(purl)
            facts.manifest_digest = digest_of(parsed.version or "")
            qualifiers = parsed.qualifiers if isinstance(parsed.qualifiers, dict) else {}
            facts.architecture = qualifiers.get("arch", "")
        except ValueError:
            pass
    facts.manifest_digest = (facts.manifest_digest or digest_of(notes.get("RepoDigest", ""))
                             or digest_of(text(root.get("versionInfo"))))
    facts.config_digest = digest_of(notes.get("ImageID", "")) or notes.get(IMAGE_PREFIX + "config_digest", "")
    facts.index_digest = notes.get(IMAGE_PREFIX + "index_digest") or None
    facts.reference = notes.get("Reference", "") or notes.get(IMAGE_PREFIX + "reference", "")
    facts.repo_tags = [v for k, v in _all_annotations(root) if k in ("RepoTag", IMAGE_PREFIX + "repo_tag")]
    facts.source_kind = notes.get(IMAGE_PREFIX + "source_kind", "")
    if notes.get(IMAGE_PREFIX + "platform"):
        try:
            platform = Platform.parse(notes[IMAGE_PREFIX + "platform"])
            facts.os_name, facts.architecture, facts.variant = platform.os, platform.architecture, platform.variant
        except ValueError:
            pass
    return facts


def _all_annotations(package: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for note in items(package.get("annotations"), "annotations"):
        name, sep, value = text(note.get("comment")).partition(": ")
        if sep and value:
            out.append((name.strip(), value.strip()))
    return out


def _package(package: dict[str, Any], purl: str, extracted: dict[str, str]) -> PackageFacts:
    notes = _annotations(package)
    ours = {k.removeprefix(PACKAGE_PREFIX): v for k, v in notes.items() if k.startswith(PACKAGE_PREFIX)}
    source_info = text(package.get("sourceInfo"))
    source_name = source_version = location = ""
    built = _BUILT_FROM.match(source_info)
    if built:
        source_name, source_version = built.group(1), built.group(2) or ""
    elif source_info.startswith("acquired package info from"):
        acquired = _ACQUIRED.search(source_info)
        location = acquired.group(1) if acquired else ""
    if ours:
        # Ours carry the source in annotations too; sourceInfo is left out when it is the package itself.
        source_name, source_version = ours.get("source_name", ""), ours.get("source_version", "")
    declared = text(package.get("licenseDeclared"))
    licenses: tuple[str, ...] = ()
    if declared not in _NOT_LICENSES:
        licenses = tuple(extracted.get(term) or term for term in _and_terms(declared))
    return PackageFacts(
        purl=purl, name=text(package.get("name")), version=text(package.get("versionInfo")),
        source_name=source_name, source_version=source_version, layer_digest=notes.get("LayerDigest", ""),
        location=location, licenses=licenses, keelwatch=ours,
    )


def _and_terms(expression: str) -> list[str]:
    """``A AND (B OR C) AND LicenseRef-x`` → ``A``, ``B OR C``, ``LicenseRef-x``: the licenses a
    package declares all at once, as keelwatch lists them (an OR stays one choice)."""
    terms, depth, start = [], 0, 0
    for index, char in enumerate(expression):
        depth += (char == "(") - (char == ")")
        if depth == 0 and expression.startswith(" AND ", index):
            terms.append(expression[start:index])
            start = index + 5
    terms.append(expression[start:])
    out = []
    for term in (t.strip() for t in terms):
        if term.startswith("(") and term.endswith(")") and _balanced(term[1:-1]):
            term = term[1:-1].strip()
        if term:
            out.append(term)
    return out


def _balanced(text_: str) -> bool:
    depth = 0
    for char in text_:
        depth += (char == "(") - (char == ")")
        if depth < 0:
            return False
    return depth == 0
