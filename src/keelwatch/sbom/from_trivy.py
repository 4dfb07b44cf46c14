"""Trivy's own JSON report (``trivy image -f json --list-all-pkgs``) in.

- image: ``Metadata``: ``RepoDigests`` (manifest digest), ``ImageID`` (config digest),
  ``RepoTags``, ``ImageConfig.architecture``/``os``, ``Layers`` (blob digest and diff ID, in order).
- OS: ``Metadata.OS`` (``Family``, ``Name``).
- packages: ``Results[].Packages[]``. Trivy splits distro versions: the full version is
  ``[Epoch:]Version[-Release]`` (the same for ``SrcName``'s ``SrcEpoch``/``SrcVersion``/
  ``SrcRelease``). The purl is ``Identifier.PURL``; reports from before Trivy wrote one get a purl
  built from the result's ``Type``.

A report without ``Packages`` (Trivy leaves them out unless asked with ``--list-all-pkgs``) is an
error, not an empty image.
"""

from __future__ import annotations

from typing import Any

from packageurl import PackageURL

from keelwatch.errors import SbomError
from keelwatch.model import CatalogResult, Layer, OSRelease
from keelwatch.sbom.common import join_version
from keelwatch.sbom.reading import ImageFacts, PackageFacts, ResultBuilder, digest_of, items, obj, text

NAME = "trivy-json"
# Trivy's result ``Type`` → purl type, for old reports whose packages carry no purl.
_TYPES = {
    "debian": "deb", "ubuntu": "deb", "alpine": "apk", "wolfi": "apk", "chainguard": "apk",
    "redhat": "rpm", "centos": "rpm", "rocky": "rpm", "alma": "rpm", "amazon": "rpm", "oracle": "rpm",
    "fedora": "rpm", "photon": "rpm", "cbl-mariner": "rpm", "azurelinux": "rpm", "opensuse.leap": "rpm",
    "suse linux enterprise server": "rpm",
    "python-pkg": "pypi", "pip": "pypi", "pipenv": "pypi", "poetry": "pypi", "uv": "pypi",
    "node-pkg": "npm", "npm": "npm", "yarn": "npm", "pnpm": "npm", "bun": "npm",
    "gobinary": "golang", "gomod": "golang",
    "jar": "maven", "pom": "maven", "gradle": "maven", "sbt": "maven",
    "cargo": "cargo", "rust-binary": "cargo", "rustbinary": "cargo",
    "gemspec": "gem", "bundler": "gem",
    "composer": "composer", "composer-vendor": "composer",
    "nuget": "nuget", "dotnet-core": "nuget", "packages-props": "nuget",
}

_BINARY_TYPES = frozenset({"gobinary", "rust-binary", "rustbinary"})


def detect(doc: dict[str, Any]) -> bool:
    return "SchemaVersion" in doc and ("Results" in doc or "ArtifactName" in doc)


def read(doc: dict[str, Any], source_name: str) -> CatalogResult:
    metadata = obj(doc.get("Metadata"), "Metadata")
    results = items(doc.get("Results"), "Results")
    if not any("Packages" in r for r in results):
        raise SbomError("Trivy report lists no packages", hint="write it with trivy --list-all-pkgs")
    facts = ImageFacts(name=text(doc.get("ArtifactName")), reference=text(metadata.get("Reference")))
    for repo_digest in metadata.get("RepoDigests") or []:
        facts.manifest_digest = facts.manifest_digest or digest_of(text(repo_digest))
    facts.config_digest = digest_of(text(metadata.get("ImageID")))
    facts.repo_tags = [text(t) for t in metadata.get("RepoTags") or [] if text(t)]
    config = obj(metadata.get("ImageConfig"), "Metadata.ImageConfig")
    facts.architecture, facts.os_name = text(config.get("architecture")), text(config.get("os"))
    facts.variant = text(config.get("variant"))
    facts.layers = [
        Layer(digest=text(layer.get("Digest")), media_type="", diff_id=text(layer.get("DiffID")), index=index,
              size=_size(layer.get("Size")))
        for index, layer in enumerate(items(metadata.get("Layers"), "Metadata.Layers"))
    ]
    os_info = obj(metadata.get("OS"), "Metadata.OS")
    if text(os_info.get("Family")):
        facts.os = OSRelease(id=_os_id(text(os_info.get("Family"))), version_id=text(os_info.get("Name")))

    builder = ResultBuilder(NAME, source_name)
    for r_index, result in enumerate(results):
        type_ = text(result.get("Type")).lower()
        # A binary's modules are listed under the binary's path, with no FilePath of their own.
        binary = text(result.get("Target")) if type_ in _BINARY_TYPES else ""
        for p_index, package in enumerate(items(result.get("Packages"), f"Results[{r_index}].Packages")):
            where = f"Results[{r_index}].Packages[{p_index}]"
            purl = text(obj(package.get("Identifier"), f"{where}.Identifier").get("PURL")) or _purl(package, type_)
            if not purl:
                name = text(package.get("Name")) or "?"
                builder.warn(f"{where}: {name}: no purl and unknown type {type_!r}, skipped")
                continue
            builder.add(_package(package, purl, binary), facts.os, where)
    tool = "trivy " + text(obj(doc.get("Trivy"), "Trivy").get("Version")) if doc.get("Trivy") else "trivy"
    return builder.result(facts, tool=tool.strip(), spec_version=text(doc.get("SchemaVersion")))


def _size(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _os_id(family: str) -> str:
    """Trivy's OS family → os-release ID (they differ for a few RPM distros)."""
    return {"redhat": "rhel", "alma": "almalinux", "amazon": "amzn", "oracle": "ol", "cbl-mariner": "mariner",
            "opensuse.leap": "opensuse-leap"}.get(family.lower(), family.lower())


def _purl(package: dict[str, Any], type_: str) -> str:
    purl_type = _TYPES.get(type_)
    name = text(package.get("Name"))
    version = _version(package)
    if not purl_type or not name or not version:
        return ""
    namespace = None
    if purl_type == "maven" and ":" in name:
        namespace, name = name.split(":", 1)
    elif purl_type in ("golang", "npm", "composer") and "/" in name:
        namespace, name = name.rsplit("/", 1)
    elif purl_type in ("deb", "apk", "rpm"):
        namespace = type_
    return PackageURL(type=purl_type, namespace=namespace, name=name, version=version).to_string()


def _version(package: dict[str, Any]) -> str:
    return join_version(package.get("Epoch"), text(package.get("Version")), text(package.get("Release")))


def _package(package: dict[str, Any], purl: str, binary: str) -> PackageFacts:
    layer = obj(package.get("Layer"), "Layer")
    licenses = package.get("Licenses")
    return PackageFacts(
        purl=purl,
        name=text(package.get("Name")),
        version=_version(package),
        source_name=text(package.get("SrcName")),
        source_version=join_version(package.get("SrcEpoch"), text(package.get("SrcVersion")),
                                    text(package.get("SrcRelease"))),
        arch=text(package.get("Arch")),
        layer_digest=text(layer.get("Digest")),
        location=text(package.get("FilePath")) or binary,
        licenses=tuple(text(v) for v in licenses if text(v)) if isinstance(licenses, list) else (),
    )
