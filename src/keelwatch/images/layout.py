"""An OCI image layout (``oci-layout`` + ``index.json`` + ``blobs/ALG/HEX``), wherever its files live.

Shared by ``oci-archive`` (the layout inside a tar) and ``oci-dir`` (the layout on disk): both only
say how to open a file of the layout by its relative path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, BinaryIO

from keelwatch.errors import ImageError
from keelwatch.images.manifest import MAX_JSON_BLOB, load_json, resolve_image, verify_blob
from keelwatch.images.source import LayerContents, OpenOptions, TarLayerContents

Opener = Callable[[str], BinaryIO]


def blob_path(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    if not algorithm or not hexpart or "/" in hexpart or "." in hexpart or "/" in algorithm:
        raise ImageError(f"invalid digest {digest!r}")
    return f"blobs/{algorithm}/{hexpart}"


class OciLayoutImage:
    def __init__(self, opener: Opener, exists: Callable[[str], bool], *, reference: str, name: str,
                 source_kind: str, options: OpenOptions, on_close: Callable[[], None] = lambda: None):
        self._open = opener
        self._options = options
        self._on_close = on_close
        if not exists("index.json"):
            raise ImageError(f"{reference}: not an OCI image layout (no index.json)",
                             hint="docker save output opens as docker-archive:")
        index = self._read_json("index.json")
        self.image, self.config = resolve_image(
            index, self._fetch, reference=reference, name=name, source_kind=source_kind,
            want=options.platform, top_digest=None,
        )

    def _read_json(self, path: str) -> dict[str, Any]:
        with self._open(path) as f:
            data = f.read(MAX_JSON_BLOB + 1)
        return load_json(data, path)

    def _fetch(self, desc: dict[str, Any]) -> bytes:
        digest = str(desc.get("digest", ""))
        with self._open(blob_path(digest)) as f:
            data = f.read(MAX_JSON_BLOB + 1)
        if len(data) > MAX_JSON_BLOB:
            raise ImageError(f"blob {digest} is too large for a manifest or config")
        verify_blob(data, digest, f"blob {digest[:19]}")
        return data

    def layer_contents(self) -> Iterator[AbstractContextManager[LayerContents]]:
        for layer in self.image.layers:
            yield self._layer(layer)

    @contextmanager
    def _layer(self, layer):  # type: ignore[no-untyped-def]
        with self._open(blob_path(layer.digest)) as raw:
            yield TarLayerContents(layer, raw, self._options.limits, verify_digest=layer.digest)

    def close(self) -> None:
        self._on_close()
