"""What every SBOM reader needs: safe access to untrusted JSON, turning one entry into a Package,
and the image (identity included) that the document describes.

A reader collects ``ImageFacts`` and ``PackageFacts`` from its format; ``to_package`` and
``build_result`` apply the same rules for every format, so a package reads the same whatever tool
wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from packageurl import PackageURL

from keelwatch.errors import SbomError
from keelwatch.model import CatalogResult, CatalogWarning, Image, Layer, OSRelease, Package, Platform
from keelwatch.sbom.common import (
    DIGEST,
    LANG_ECOSYSTEMS,
    OS_PURL_TYPES,
    ROLLING_ECOSYSTEMS,
    choose_name,
    ecosystem_for,
    package_set_digest,
    purl_version,
    split_upstream,
)


def obj(value: Any, where: str) -> dict[str, Any]:
    """``value`` if it is a JSON object (or absent), else a one-line SbomError saying where."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SbomError(f"malformed SBOM: {where} is a {type(value).__name__}, not an object")
    return value


def items(value: Any, where: str) -> list[dict[str, Any]]:
    """``value`` as a list of JSON objects (absent → empty), else a one-line SbomError."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise SbomError(f"malformed SBOM: {where} is a {type(value).__name__}, not a list")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise SbomError(f"malformed SBOM: {where}[{index}] is a {type(item).__name__}, not an object")
    return value


def text(value: Any) -> str:
    """A scalar as text (versions are sometimes numbers); anything else is empty."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, str | int | float):
        return str(value).strip()
    return ""


def digest_of(value: str) -> str:
    """``sha256:…`` from a digest or a ``repo@sha256:…`` reference; "" if it holds none."""
    candidate = value.rsplit("@", 1)[-1].strip()
    return candidate if DIGEST.match(candidate) else ""


@dataclass(slots=True)
class ImageFacts:
    """What an SBOM says about the image it describes; blanks where it says nothing."""

    name: str = ""
    manifest_digest: str = ""
    config_digest: str = ""
    index_digest: str | None = None
    architecture: str = ""
    os_name: str = ""
    variant: str = ""
    os: OSRelease | None = None
    reference: str = ""  # as the tool that wrote the SBOM recorded it
    repo_tags: list[str] = field(default_factory=list)
    layers: list[Layer] = field(default_factory=list)
    source_kind: str = ""  # what the image was read from, when the SBOM says (keelwatch's own do)


@dataclass(slots=True)
class PackageFacts:
    """One package entry as read from the document, before the shared rules make it a Package."""

    purl: str
    name: str = ""
    group: str = ""
    version: str = ""
    source_name: str = ""
    source_version: str = ""
    arch: str = ""
    layer_digest: str = ""
    location: str = ""
    found_by: str = ""
    licenses: tuple[str, ...] = ()
    # keelwatch's own properties, when the SBOM is ours: they win over anything derived.
    keelwatch: dict[str, str] = field(default_factory=dict)


def to_package(facts: PackageFacts, os: OSRelease | None, found_by: str) -> Package:
    """The package an entry describes; ValueError with the reason when it cannot be one."""
    try:
        purl = PackageURL.from_string(facts.purl)
    except ValueError as exc:
        raise ValueError(f"invalid purl {facts.purl!r}: {exc}") from exc
    ours = facts.keelwatch
    version = facts.version or purl_version(purl)
    if not version:
        raise ValueError(f"{facts.purl}: no version")
    name = choose_name(purl, facts.name, facts.group)
    qualifiers = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    kind = "os" if purl.type in OS_PURL_TYPES else "lang"
    if ours:
        # Our own SBOM: every field was written as a property (empty ones left out), no guessing;
        # the name is ours too (Maven's group:artifact was split into group and name).
        if facts.name:
            name = f"{facts.group}:{facts.name}" if facts.group and purl.type == "maven" else facts.name
        return Package(
            ecosystem=ours.get("ecosystem") or ecosystem_for(purl, os), name=name, version=version,
            kind=ours.get("kind", kind), purl=facts.purl, source_name=ours.get("source_name", ""),
            source_version=ours.get("source_version", ""), arch=ours.get("arch", ""),
            layer_digest=ours.get("layer_digest", ""), location=ours.get("location", ""),
            found_by=ours.get("found_by", ""), licenses=facts.licenses,
        )
    source_name, source_version = facts.source_name, facts.source_version
    if not source_name and qualifiers.get("upstream"):
        source_name, source_version = split_upstream(qualifiers["upstream"])
    if kind == "os":
        # A distro package that names no source package is its own source (dpkg's rule too).
        source_name = source_name or name
        source_version = source_version or version
    return Package(
        ecosystem=ecosystem_for(purl, os), name=name, version=version, kind=kind, purl=facts.purl,
        source_name=source_name, source_version=source_version, arch=facts.arch or qualifiers.get("arch", ""),
        layer_digest=facts.layer_digest, location=facts.location.lstrip("/"), found_by=facts.found_by or found_by,
        licenses=facts.licenses,
    )


class ResultBuilder:
    """Packages and warnings of one document, then the CatalogResult with the image's identity."""

    def __init__(self, fmt: str, source_name: str):
        self.format = fmt
        self.source_name = source_name
        self.packages: list[Package] = []
        self.warnings: list[CatalogWarning] = []

    def warn(self, message: str) -> None:
        self.warnings.append(CatalogWarning(message, path=self.source_name, cataloger=f"sbom:{self.format}"))

    def add(self, facts: PackageFacts, os: OSRelease | None, where: str) -> None:
        """Add the package an entry describes; an entry that cannot be one is a warning, not a crash."""
        try:
            package = to_package(facts, os, f"sbom:{self.format}")
        except ValueError as exc:
            self.warn(f"{where}: skipped: {exc}")
            return
        purl_type = facts.purl.removeprefix("pkg:").split("/", 1)[0]
        if not package.ecosystem and purl_type not in LANG_ECOSYSTEMS and purl_type not in OS_PURL_TYPES:
            self.warn(f"{where}: {package.name} {package.version}: purl type {purl_type!r} has no OSV ecosystem")
        elif package.kind == "os" and ":" not in package.ecosystem and package.ecosystem not in ROLLING_ECOSYSTEMS:
            # Distro advisories are per release: without one, matching can only be approximate.
            self.warn(f"{where}: {package.name} {package.version}: no OS release known "
                      f"(ecosystem {package.ecosystem or 'unknown'})")
        self.packages.append(package)

    def result(self, facts: ImageFacts, *, tool: str, spec_version: str) -> CatalogResult:
        if facts.manifest_digest:
            digest, identity = facts.manifest_digest, "manifest-digest"
        else:
            # No manifest digest in the document: a stable digest of its package set stands in,
            # marked as such, so the same SBOM imported twice is the same image.
            digest, identity = package_set_digest(self.packages), "package-set"
        image = Image(
            reference=self.source_name,
            name=facts.name or facts.reference or self.source_name,
            manifest_digest=digest,
            config_digest=facts.config_digest,
            platform=Platform(os=facts.os_name or "linux", architecture=facts.architecture, variant=facts.variant),
            layers=facts.layers,
            index_digest=facts.index_digest,
            os=facts.os,
            source_kind="sbom",
            repo_tags=tuple(dict.fromkeys(facts.repo_tags)),
        )
        extra = {"sbom": {
            "format": self.format, "spec_version": spec_version, "tool": tool, "identity": identity,
            "source": self.source_name, "reference": facts.reference, "read_from": facts.source_kind,
        }}
        return CatalogResult(image=image, packages=self.packages, warnings=self.warnings, extra=extra)
