"""Manifests, indexes and configs: shared by every image source (archives, layouts, registries).

A source only knows how to fetch a blob by digest; everything about what the blobs mean (which
platform to pick from an index, which layers an image has, whether the config agrees with the
manifest) is decided here, once.
"""

from __future__ import annotations

import hashlib
import json
import platform as _host
from collections.abc import Callable
from datetime import datetime
from typing import Any

from keelwatch.errors import DigestMismatch, ImageError, UnsupportedMediaType
from keelwatch.model import Image, Layer, Platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
MAX_JSON_BLOB = 16 << 20  # manifests and configs are small; a huge one is hostile

_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386"}


def host_platform() -> Platform:
    """This machine's platform: the default when the user names none (as docker pull does)."""
    machine = _host.machine().lower()
    arch = _ARCH_ALIASES.get(machine, machine)
    return Platform("linux", arch, "v7" if machine == "armv7l" else "")


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def verify_blob(data: bytes, digest: str, what: str) -> None:
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ("sha256", "sha512"):
        raise ImageError(f"{what}: unsupported digest algorithm in {digest!r}")
    actual = digest_of(data, algorithm)
    if actual != digest:
        raise DigestMismatch(f"{what}: content is {actual}, but it was referenced as {digest}",
                             hint="the image was altered or corrupted")


def load_json(data: bytes, what: str) -> dict[str, Any]:
    if len(data) > MAX_JSON_BLOB:
        raise ImageError(f"{what}: {len(data)} bytes is too large for a manifest or config")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImageError(f"{what}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ImageError(f"{what}: expected a JSON object")
    return doc


def media_type_of(doc: dict[str, Any], fallback: str | None = None) -> str:
    """A document's media type; old OCI writers leave it out, so infer it from the shape."""
    mt = doc.get("mediaType") or fallback
    if mt:
        return str(mt)
    if "manifests" in doc:
        return OCI_INDEX
    if "layers" in doc and "config" in doc:
        return OCI_MANIFEST
    raise UnsupportedMediaType("document is neither an image index nor an image manifest")


def descriptor_platform(desc: dict[str, Any]) -> Platform | None:
    p = desc.get("platform")
    if not isinstance(p, dict):
        return None
    return Platform(str(p.get("os", "")), str(p.get("architecture", "")), str(p.get("variant", "") or ""))


def _platform_matches(have: Platform, want: Platform) -> bool:
    if have.os != want.os or have.architecture != want.architecture:
        return False
    if not want.variant:
        return True
    # arm64 manifests often omit "v8"; treat it as the default variant.
    default = {"arm64": "v8"}.get(want.architecture, "")
    return (have.variant or default) == want.variant


def choose_manifest(index: dict[str, Any], want: Platform | None, what: str) -> dict[str, Any]:
    """Pick the manifest descriptor for a platform from an index (the way `docker pull` does)."""
    manifests = [m for m in index.get("manifests", []) if isinstance(m, dict)]
    # Attestation manifests (buildx) are not runnable images.
    runnable = [m for m in manifests
                if (m.get("annotations") or {}).get("vnd.docker.reference.type") != "attestation-manifest"]
    if not runnable:
        raise ImageError(f"{what}: the index lists no image manifests")
    target = want or host_platform()
    with_platform = [(m, descriptor_platform(m)) for m in runnable]
    for m, p in with_platform:
        if p is not None and _platform_matches(p, target):
            return m
    if len(runnable) == 1 and with_platform[0][1] is None:
        # A layout's index.json pointing at one image or one nested index, unannotated: follow it;
        # the platform of the image finally reached is checked against the request.
        return runnable[0]
    available = ", ".join(str(p) for _, p in with_platform if p) or "none annotated"
    raise ImageError(f"{what}: no manifest for platform {target} (available: {available})",
                     hint="choose one with --platform")


BlobFetcher = Callable[[dict[str, Any]], bytes]  # descriptor → verified bytes


def resolve_image(
    top: dict[str, Any],
    fetch: BlobFetcher,
    *,
    reference: str,
    name: str,
    source_kind: str,
    want: Platform | None,
    top_digest: str | None = None,
) -> tuple[Image, dict[str, Any]]:
    """From a top-level document (index or manifest) to the Image of the chosen platform.

    ``fetch`` returns a blob's bytes for a descriptor, verified against its digest. Returns the
    image and its parsed config.
    """
    index_digest: str | None = None
    doc, digest = top, top_digest
    for _depth in range(4):  # an index of indexes is legal; a cycle is not
        mt = media_type_of(doc)
        if mt in INDEX_TYPES:
            if digest is not None:
                index_digest = digest
            desc = choose_manifest(doc, want, reference)
            data = fetch(desc)
            digest = str(desc["digest"])
            doc = load_json(data, f"{reference}: manifest {digest}")
            doc.setdefault("mediaType", desc.get("mediaType"))
            continue
        if mt in MANIFEST_TYPES:
            break
        raise UnsupportedMediaType(f"{reference}: unsupported manifest media type {mt!r}")
    else:
        raise ImageError(f"{reference}: indexes nested too deeply")
    if digest is None:
        raise ImageError(f"{reference}: manifest has no digest")
    config_desc = doc.get("config")
    if not isinstance(config_desc, dict) or "digest" not in config_desc:
        raise ImageError(f"{reference}: manifest has no config")
    config = load_json(fetch(config_desc), f"{reference}: config")
    image = image_from_manifest(doc, config, reference=reference, name=name, manifest_digest=digest,
                                config_digest=str(config_desc["digest"]), index_digest=index_digest,
                                source_kind=source_kind)
    if want is not None and not _platform_matches(image.platform, want):
        raise ImageError(f"{reference}: the image is {image.platform}, not {want}",
                         hint="it is a single-platform image")
    return image, config


def image_from_manifest(
    manifest: dict[str, Any], config: dict[str, Any], *, reference: str, name: str, manifest_digest: str,
    config_digest: str, index_digest: str | None, source_kind: str,
) -> Image:
    layers_desc = manifest.get("layers")
    if not isinstance(layers_desc, list):
        raise ImageError(f"{reference}: manifest has no layers list")
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(layers_desc):
        raise ImageError(f"{reference}: manifest lists {len(layers_desc)} layers, config {len(diff_ids)}")
    layers = []
    for i, desc in enumerate(layers_desc):
        if not isinstance(desc, dict) or "digest" not in desc:
            raise ImageError(f"{reference}: layer {i} has no digest")
        layers.append(Layer(digest=str(desc["digest"]), media_type=str(desc.get("mediaType", "")),
                            size=int(desc.get("size", 0)), diff_id=str(diff_ids[i]), index=i))
    return Image(
        reference=reference, name=name, manifest_digest=manifest_digest, config_digest=config_digest,
        platform=Platform(str(config.get("os", "linux")), str(config.get("architecture", "")),
                          str(config.get("variant", "") or "")),
        layers=layers, index_digest=index_digest, created=_parse_time(config.get("created")),
        labels=dict((config.get("config") or {}).get("Labels") or {}), source_kind=source_kind,
    )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if "." in text:  # Go writes nanoseconds; Python takes microseconds
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        zone = tail[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def canonical_json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=False).encode()
