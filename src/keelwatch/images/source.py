"""The image-source protocol: what every scheme (archive, layout, directory, registry) provides.

A source opens a location into an ``OpenedImage``: the ``Image`` (identity, platform, layers)
plus the layers' contents as a stream of entries, read once, in order. Catalogers never see a
source; the catalog walker does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from keelwatch.images.layers import LayerStream, Limits, TarEntry, TarWalker, check_media_type
from keelwatch.model import Image, Layer, Platform


@dataclass(slots=True)
class OpenOptions:
    platform: Platform | None = None  # None: this machine's platform
    insecure: bool = False  # plain HTTP / unverified TLS for registries, only when asked
    limits: Limits = field(default_factory=Limits)
    docker_config: str | None = None  # path of a docker config.json with credentials


class LayerContents(Protocol):
    """One layer's entries, in archive order; ``read`` returns the content of the current entry."""

    layer: Layer
    skipped: list[tuple[str, str]]

    def entries(self) -> Iterator[TarEntry]: ...

    def read(self, entry: TarEntry) -> bytes: ...

    def finish(self) -> None:
        """Consume what is left and verify the layer's digest; raise if it does not match."""


class OpenedImage(Protocol):
    image: Image

    def layer_contents(self) -> Iterator[AbstractContextManager[LayerContents]]: ...

    def close(self) -> None: ...


class ImageSource(Protocol):
    """One scheme: ``docker-archive``, ``oci-archive``, ``oci-dir``, ``dir``, ``registry``."""

    scheme: str

    def open(self, location: str, reference: str, options: OpenOptions) -> OpenedImage: ...


class TarLayerContents:
    """A tar layer (any compression) read from a byte stream, digest verified at ``finish``."""

    def __init__(self, layer: Layer, raw: BinaryIO, limits: Limits, *, verify_digest: str | None):
        if layer.media_type:
            check_media_type(layer.media_type)
        self.layer = layer
        label = f"layer {layer.index} ({layer.digest[:19]})"
        self._stream = LayerStream(raw, digest=verify_digest, limits=limits, label=label)
        self._walker = TarWalker(self._stream, limits=limits, label=label)
        self.skipped = self._walker.skipped

    def entries(self) -> Iterator[TarEntry]:
        return iter(self._walker)

    def read(self, entry: TarEntry) -> bytes:
        return self._walker.read_current(entry)

    def finish(self) -> None:
        self._stream.finish()
