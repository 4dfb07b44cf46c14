"""CycloneDX JSON in (spec 1.4–1.7): keelwatch's own, Trivy's, Syft's, or any tool's.

- image: ``metadata.component``: manifest digest from Trivy's ``aquasecurity:trivy:RepoDigest``,
  a ``pkg:oci`` purl's version, or a digest-shaped ``version``; config digest from Trivy's
  ``aquasecurity:trivy:ImageID``; keelwatch's ``keelwatch:image:*`` properties when it is ours.
- OS: the ``operating-system`` component (name = os-release ID, version).
- packages: every component (nested ones too) with a purl, except images (``pkg:oci``/``docker``).
  Source package from ``aquasecurity:trivy:SrcName``/``SrcVersion`` (+ ``SrcRelease``/``SrcEpoch``),
  our ``keelwatch:package:*`` properties, or the purl's ``upstream`` qualifier (Syft); layer from
  ``aquasecurity:trivy:LayerDigest``; location from ``aquasecurity:trivy:FilePath``, or for Go
  modules the binary (an ``application`` component) that depends on them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from packageurl import PackageURL

from keelwatch.errors import SbomError
from keelwatch.model import CatalogResult, OSRelease, Platform
from keelwatch.sbom.common import IMAGE_PREFIX, OS_PREFIX, PACKAGE_PREFIX, join_version
from keelwatch.sbom.reading import (
    ImageFacts,
    PackageFacts,
    ResultBuilder,
    digest_of,
    items,
    obj,
    text,
)

NAME = "cyclonedx-json"
SPEC_VERSIONS = ("1.4", "1.5", "1.6", "1.7")
TRIVY = "aquasecurity:trivy:"
IMAGE_PURL_TYPES = ("oci", "docker")


def detect(doc: dict[str, Any]) -> bool:
    return doc.get("bomFormat") == "CycloneDX"


def read(doc: dict[str, Any], source_name: str) -> CatalogResult:
    spec = text(doc.get("specVersion"))
    if spec not in SPEC_VERSIONS:
        raise SbomError(f"CycloneDX specVersion {spec or '(none)'} is not read",
                        hint=f"versions {', '.join(SPEC_VERSIONS)} are")
    if "components" not in doc:
        # An empty image says ``"components": []``; no list at all is not an inventory.
        raise SbomError("CycloneDX document has no components: nothing to import")
    metadata = obj(doc.get("metadata"), "metadata")
    components = list(_flatten(items(doc.get("components"), "components"), "components"))

    facts = _image(obj(metadata.get("component"), "metadata.component"))
    os_component = next((c for _, c in components if c.get("type") == "operating-system"), None)
    if os_component is not None:
        props = _properties(os_component)
        facts.os = OSRelease(id=text(os_component.get("name")).lower(), version_id=text(os_component.get("version")),
                             pretty_name=text(os_component.get("description")),
                             version_codename=_first(props, OS_PREFIX + "version_codename"))

    located_by_parent = _binaries(doc, components)
    builder = ResultBuilder(NAME, source_name)
    for where, component in components:
        purl = text(component.get("purl"))
        if not purl:
            if component.get("type") in ("library", "framework"):
                builder.warn(f"{where}: {text(component.get('name')) or '?'}: no purl, skipped")
            continue
        if purl.startswith(tuple(f"pkg:{t}/" for t in IMAGE_PURL_TYPES)):
            continue  # an image inside the image's SBOM, not a package
        builder.add(_package(component, purl, located_by_parent), facts.os, where)
    return builder.result(facts, tool=_tool(metadata), spec_version=spec)


def _flatten(components: list[dict[str, Any]], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for index, component in enumerate(components):
        here = f"{where}[{index}]"
        yield here, component
        yield from _flatten(items(component.get("components"), f"{here}.components"), f"{here}.components")


def _properties(component: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for prop in items(component.get("properties"), "properties"):
        name, value = text(prop.get("name")), text(prop.get("value"))
        if name and value:
            out[name].append(value)
    return out


def _first(props: dict[str, list[str]], name: str) -> str:
    values = props.get(name)
    return values[0] if values else ""


def _image(component: dict[str, Any]) -> ImageFacts:
    props = _properties(component)
    facts = ImageFacts(name=text(component.get("name")))
    purl = text(component.get("purl"))
    if purl.startswith("pkg:oci/"):
        try:
            parsed = PackageURL.from_string(purl)
            facts.manifest_digest = digest_of(parsed.version or "")
            qualifiers = parsed.qualifiers if isinstance(parsed.qualifiers, dict) else {}
            facts.architecture = qualifiers.get("arch", "")
        except ValueError:
            pass
    for repo_digest in props.get(TRIVY + "RepoDigest", []):
        facts.manifest_digest = facts.manifest_digest or digest_of(repo_digest)
    facts.manifest_digest = facts.manifest_digest or digest_of(text(component.get("version")))
    facts.config_digest = digest_of(_first(props, TRIVY + "ImageID")) or _first(props, IMAGE_PREFIX + "config_digest")
    facts.index_digest = _first(props, IMAGE_PREFIX + "index_digest") or None
    facts.reference = _first(props, TRIVY + "Reference") or _first(props, IMAGE_PREFIX + "reference")
    facts.repo_tags = props.get(TRIVY + "RepoTag", []) + props.get(IMAGE_PREFIX + "repo_tag", [])
    facts.source_kind = _first(props, IMAGE_PREFIX + "source_kind")
    platform = _first(props, IMAGE_PREFIX + "platform")
    if platform:
        try:
            parsed_platform = Platform.parse(platform)
            facts.os_name, facts.architecture, facts.variant = (parsed_platform.os, parsed_platform.architecture,
                                                                parsed_platform.variant)
        except ValueError:
            pass
    return facts


def _binaries(doc: dict[str, Any], components: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """bom-ref of a module → path of the binary it was built into. Trivy lists a Go binary as an
    ``application`` component named by its path, depending on its main module, which depends on
    the rest; a module in two binaries keeps the first."""
    applications = {text(c.get("bom-ref")): text(c.get("name")) for _, c in components
                    if c.get("type") == "application" and not c.get("purl") and c.get("bom-ref")}
    graph: dict[str, list[str]] = {}
    for dependency in items(doc.get("dependencies"), "dependencies"):
        depends_on = dependency.get("dependsOn")
        graph[text(dependency.get("ref"))] = [text(d) for d in depends_on] if isinstance(depends_on, list) else []
    located: dict[str, str] = {}
    for ref, path in applications.items():
        pending = list(graph.get(ref, ()))
        while pending:
            child = pending.pop()
            if child in located or child in applications:
                continue
            located[child] = path
            pending.extend(graph.get(child, ()))
    return located


def _package(component: dict[str, Any], purl: str, located_by_parent: dict[str, str]) -> PackageFacts:
    props = _properties(component)
    ours = {name.removeprefix(PACKAGE_PREFIX): values[0] for name, values in props.items()
            if name.startswith(PACKAGE_PREFIX)}
    source_name = _first(props, TRIVY + "SrcName")
    source_version = join_version(_first(props, TRIVY + "SrcEpoch"), _first(props, TRIVY + "SrcVersion"),
                                  _first(props, TRIVY + "SrcRelease"))
    return PackageFacts(
        purl=purl,
        name=text(component.get("name")),
        group=text(component.get("group")),
        version=text(component.get("version")),
        source_name=source_name,
        source_version=source_version,
        layer_digest=_first(props, TRIVY + "LayerDigest"),
        location=_first(props, TRIVY + "FilePath") or located_by_parent.get(text(component.get("bom-ref")), ""),
        licenses=_licenses(component),
        keelwatch=ours,
    )


def _licenses(component: dict[str, Any]) -> tuple[str, ...]:
    out = []
    for choice in items(component.get("licenses"), "licenses"):
        if text(choice.get("expression")):
            out.append(text(choice.get("expression")))
            continue
        license_ = obj(choice.get("license"), "license")
        value = text(license_.get("id")) or text(license_.get("name"))
        if value:
            out.append(value)
    return tuple(out)


def _tool(metadata: dict[str, Any]) -> str:
    """``name version`` of the tool that wrote the document (1.5+ ``tools.components`` or the older list)."""
    tools = metadata.get("tools")
    entries: list[Any] = []
    if isinstance(tools, dict):
        entries = [*(tools.get("components") or []), *(tools.get("services") or [])]
    elif isinstance(tools, list):
        entries = tools
    names = [" ".join(filter(None, (text(t.get("name")), text(t.get("version"))))) for t in entries
             if isinstance(t, dict)]
    return ", ".join(n for n in names if n)
