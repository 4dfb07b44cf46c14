"""Build small OCI layouts and docker archives in a temp dir, for tests that need crafted images.

Real images come from ``$KEELWATCH_SHARED/data/images``; these are for what no real image should
hold: hostile paths, lying digests, bombs, truncation.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import zstandard

GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"
TAR_LAYER = "application/vnd.oci.image.layer.v1.tar"


@dataclass
class Entry:
    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644


def file(name: str, data: bytes | str, mode: int = 0o644) -> Entry:
    return Entry(name, data.encode() if isinstance(data, str) else data, mode=mode)


def tar_bytes(entries: Iterable[Entry], format: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=format) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = e.type
            info.mode = e.mode
            info.mtime = 1672531200
            info.linkname = e.linkname
            if e.type == tarfile.REGTYPE:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def compress(raw: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(raw, mtime=0)
    if kind == "zstd":
        return zstandard.ZstdCompressor().compress(raw)
    return raw


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class LayoutBuilder:
    """An OCI image layout directory, written blob by blob."""

    def __init__(self, root: Path):
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def blob(self, data: bytes) -> str:
        digest = sha(data)
        (self.root / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
        return digest

    def image(self, layers: list[bytes], *, kind: str = "gzip", media_type: str | None = None,
              arch: str = "amd64", lie_layer: int | None = None) -> dict:
        descs, diff_ids = [], []
        for i, raw in enumerate(layers):
            blob = compress(raw, kind)
            digest = self.blob(blob)
            if lie_layer == i:
                digest = sha(blob + b"tampered")  # the manifest claims content it does not have
                (self.root / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(blob)
            mt = media_type or {"gzip": GZIP_LAYER, "zstd": ZSTD_LAYER, "none": TAR_LAYER}[kind]
            descs.append({"mediaType": mt, "digest": digest, "size": len(blob)})
            diff_ids.append(sha(raw))
        config = json.dumps({"architecture": arch, "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}}).encode()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": self.blob(config), "size": len(config)},
                               "layers": descs}).encode()
        return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": self.blob(manifest),
                "size": len(manifest), "platform": {"os": "linux", "architecture": arch}}

    def index(self, manifests: list[dict]) -> None:
        (self.root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))


def oci_dir(root: Path, layers: list[bytes], **kwargs) -> Path:  # type: ignore[no-untyped-def]
    builder = LayoutBuilder(root)
    builder.index([builder.image(layers, **kwargs)])
    return root


def pack(directory: Path, out: Path) -> Path:
    """Tar a layout directory into an archive (what oci-archive: reads)."""
    with tarfile.open(out, "w") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return out
