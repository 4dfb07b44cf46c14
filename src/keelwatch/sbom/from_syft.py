"""Syft's own JSON (``syft -o json``) in.

- image: ``source.metadata``: ``manifestDigest``, ``imageID`` (config digest), ``tags``,
  ``repoDigests``, ``architecture``/``os``; its ``manifest`` and ``config`` (base64) give the
  layer list, so a package's ``layerID`` (Syft records the uncompressed diff ID) maps to the
  layer's blob digest, which is what keelwatch calls a layer digest.
- OS: ``distro`` (``id``, ``versionID``).
- packages: ``artifacts[]`` with a ``purl``; source package from the ``metadata`` Syft keeps per
  type (dpkg ``source``/``sourceVersion``, apk ``originPackage``, rpm ``sourceRpm``) or the purl's
  ``upstream`` qualifier; location from the first ``locations[].path``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from keelwatch.model import CatalogResult, Layer, OSRelease
from keelwatch.sbom.common import split_upstream
from keelwatch.sbom.reading import ImageFacts, PackageFacts, ResultBuilder, digest_of, items, obj, text

NAME = "syft-json"


def detect(doc: dict[str, Any]) -> bool:
    descriptor = doc.get("descriptor")
    named_syft = isinstance(descriptor, dict) and descriptor.get("name") == "syft"
    return "artifacts" in doc and (named_syft or "source" in doc or "artifactRelationships" in doc)


def read(doc: dict[str, Any], source_name: str) -> CatalogResult:
    source = obj(doc.get("source"), "source")
    metadata = obj(source.get("metadata"), "source.metadata")
    facts = ImageFacts(name=text(metadata.get("userInput")) or text(source.get("name")))
    if source.get("type") == "image":
        facts.manifest_digest = digest_of(text(metadata.get("manifestDigest")))
        for repo_digest in metadata.get("repoDigests") or []:
            facts.manifest_digest = facts.manifest_digest or digest_of(text(repo_digest))
        facts.config_digest = digest_of(text(metadata.get("imageID")))
        facts.repo_tags = [text(t) for t in metadata.get("tags") or [] if text(t)]
        facts.architecture = text(metadata.get("architecture"))
        facts.os_name = text(metadata.get("os"))
        facts.reference = text(metadata.get("userInput"))
        facts.layers = _layers(metadata)
    distro = obj(doc.get("distro"), "distro")
    if text(distro.get("id")):
        facts.os = OSRelease(id=text(distro.get("id")).lower(), version_id=text(distro.get("versionID")),
                             pretty_name=text(distro.get("prettyName")),
                             version_codename=text(distro.get("versionCodename")))
    blob_of = {layer.diff_id: layer.digest for layer in facts.layers if layer.diff_id and layer.digest}

    builder = ResultBuilder(NAME, source_name)
    for index, artifact in enumerate(items(doc.get("artifacts"), "artifacts")):
        purl = text(artifact.get("purl"))
        where = f"artifacts[{index}]"
        if not purl:
            builder.warn(f"{where}: {text(artifact.get('name')) or '?'}: no purl, skipped")
            continue
        builder.add(_package(artifact, purl, blob_of), facts.os, where)
    descriptor = obj(doc.get("descriptor"), "descriptor")
    tool = " ".join(filter(None, (text(descriptor.get("name")), text(descriptor.get("version")))))
    schema = text(obj(doc.get("schema"), "schema").get("version"))
    return builder.result(facts, tool=tool, spec_version=schema)


def _decoded(value: Any) -> dict[str, Any]:
    """A base64 JSON blob Syft embeds (the raw manifest and config); {} if absent or unreadable."""
    if not isinstance(value, str) or not value:
        return {}
    try:
        decoded = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _layers(metadata: dict[str, Any]) -> list[Layer]:
    manifest, config = _decoded(metadata.get("manifest")), _decoded(metadata.get("config"))
    blobs = _list(manifest.get("layers"))
    rootfs = config.get("rootfs")
    diff_ids = _list(rootfs.get("diff_ids")) if isinstance(rootfs, dict) else []
    listed = items(metadata.get("layers"), "source.metadata.layers")
    layers = []
    count = max(len(blobs), len(diff_ids), len(listed))
    for index in range(count):
        blob = blobs[index] if index < len(blobs) and isinstance(blobs[index], dict) else {}
        entry = listed[index] if index < len(listed) else {}
        diff_id = text(diff_ids[index]) if index < len(diff_ids) else text(entry.get("digest"))
        size = blob.get("size")
        media_type = text(blob.get("mediaType")) or text(entry.get("mediaType"))
        layers.append(Layer(digest=text(blob.get("digest")), media_type=media_type,
                            size=size if isinstance(size, int) else 0, diff_id=diff_id, index=index))
    return layers


def _package(artifact: dict[str, Any], purl: str, blob_of: dict[str, str]) -> PackageFacts:
    metadata = obj(artifact.get("metadata"), "metadata")
    source_name = text(metadata.get("source")) or text(metadata.get("originPackage"))
    source_version = text(metadata.get("sourceVersion"))
    if not source_name and text(metadata.get("sourceRpm")):
        source_name, source_version = split_upstream(text(metadata.get("sourceRpm")))
    locations = items(artifact.get("locations"), "locations")
    first = locations[0] if locations else {}
    layer_id = text(first.get("layerID"))
    return PackageFacts(
        purl=purl,
        name=text(artifact.get("name")),
        version=text(artifact.get("version")),
        source_name=source_name,
        source_version=source_version,
        arch=text(metadata.get("architecture")) or text(metadata.get("arch")),
        layer_digest=blob_of.get(layer_id, ""),
        location=text(first.get("path")),
        licenses=_licenses(artifact.get("licenses")),
    )


def _licenses(value: Any) -> tuple[str, ...]:
    """Syft wrote plain strings before schema 8, objects (``spdxExpression``, ``value``) since."""
    out = []
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, str) and entry.strip():
            out.append(entry.strip())
        elif isinstance(entry, dict):
            chosen = text(entry.get("spdxExpression")) or text(entry.get("value"))
            if chosen:
                out.append(chosen)
    return tuple(out)
