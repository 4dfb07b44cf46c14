"""``docker-archive:PATH``: what ``docker save`` writes (``manifest.json`` + config + layer tars).

A docker archive holds no registry manifest, so, like skopeo, we compute one: a Docker schema-2
manifest over the config and the layer blobs as stored. Its digest is stable for the same archive
but is not the digest a registry would show for the same image; identity that must match a
registry comes from ``oci-archive:`` or the registry itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from keelwatch.errors import ImageError
from keelwatch.images.layers import normalise_path
from keelwatch.images.manifest import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    MAX_JSON_BLOB,
    digest_of,
    image_from_manifest,
    load_json,
    verify_blob,
)
from keelwatch.images.source import LayerContents, OpenOptions, TarLayerContents
from keelwatch.images.tarblobs import TarBlobs
from keelwatch.model import Image, Platform

GZIP_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
TAR_LAYER = "application/vnd.docker.image.rootfs.diff.tar"


class DockerArchiveImage:
    def __init__(self, blobs: TarBlobs, reference: str, options: OpenOptions):
        self._blobs = blobs
        self._options = options
        if not blobs.has("manifest.json"):
            raise ImageError(f"{reference}: not a docker archive (no manifest.json)",
                             hint="an OCI layout opens as oci-archive:")
        data = blobs.read("manifest.json", MAX_JSON_BLOB)
        try:
            entries = json.loads(data)
        except ValueError as exc:
            raise ImageError(f"{reference}: manifest.json is not valid JSON ({exc})") from exc
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise ImageError(f"{reference}: manifest.json lists no images")
        entry, config, config_bytes = self._choose(entries, options.platform, reference)
        self._layer_paths: list[str] = []
        layer_descs = []
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        for i, path in enumerate(entry.get("Layers") or []):
            member = _member(str(path), reference)
            head = blobs.open(member).read(4)
            compressed = head[:2] == b"\x1f\x8b"
            digest = _digest_from_blob_path(member)
            if digest is None:
                # Legacy `<id>/layer.tar`: uncompressed, so its digest is the config's diff_id.
                digest = str(diff_ids[i]) if i < len(diff_ids) else ""
            layer_descs.append({"mediaType": GZIP_LAYER if compressed else TAR_LAYER,
                                "size": blobs.size(member), "digest": digest})
            self._layer_paths.append(member)
        manifest = {
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": len(config_bytes),
                       "digest": digest_of(config_bytes)},
            "layers": layer_descs,
        }
        manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
        self.image: Image = image_from_manifest(
            manifest, config, reference=reference, name=os.path.abspath(blobs.path),
            manifest_digest=digest_of(manifest_bytes), config_digest=digest_of(config_bytes),
            index_digest=None, source_kind="docker-archive",
        )
        self.image.repo_tags = tuple(str(t) for t in entry.get("RepoTags") or ())
        self.config = config

    def _choose(self, entries: list[dict[str, Any]], want: Platform | None,
                reference: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
        loaded = []
        for entry in entries:
            member = _member(str(entry.get("Config", "")), reference)
            config_bytes = self._blobs.read(member, MAX_JSON_BLOB)
            expected = _digest_from_blob_path(member) or _digest_from_legacy_config(member)
            if expected:
                verify_blob(config_bytes, expected, f"{reference}: config")
            config = load_json(config_bytes, f"{reference}: config")
            loaded.append((entry, config, config_bytes))
        if want is None:
            return loaded[0]
        for entry, config, config_bytes in loaded:
            if config.get("os") == want.os and config.get("architecture") == want.architecture:
                return entry, config, config_bytes
        raise ImageError(f"{reference}: no image for platform {want} in this archive")

    def layer_contents(self) -> Iterator[AbstractContextManager[LayerContents]]:
        for layer, path in zip(self.image.layers, self._layer_paths, strict=True):
            yield self._layer(layer, path)

    @contextmanager
    def _layer(self, layer, path):  # type: ignore[no-untyped-def]
        with self._blobs.open(path) as raw:
            yield TarLayerContents(layer, raw, self._options.limits, verify_digest=layer.digest or None)

    def close(self) -> None:
        self._blobs.close()


def _member(path: str, reference: str) -> str:
    name = normalise_path(path)
    if not name:
        raise ImageError(f"{reference}: manifest.json names an invalid path {path!r}")
    return name


def _digest_from_blob_path(member: str) -> str | None:
    parts = member.split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        return f"{parts[1]}:{parts[2]}"
    return None


def _digest_from_legacy_config(member: str) -> str | None:
    # Legacy docker save names the config `<hex>.json`, the hex being its sha256.
    base = member.rsplit("/", 1)[-1]
    if base.endswith(".json") and len(base) == 69:
        return f"sha256:{base[:-5]}"
    return None


class DockerArchiveSource:
    scheme = "docker-archive"

    def open(self, location: str, reference: str, options: OpenOptions) -> DockerArchiveImage:
        blobs = TarBlobs(location)
        try:
            return DockerArchiveImage(blobs, reference, options)
        except BaseException:
            blobs.close()
            raise
