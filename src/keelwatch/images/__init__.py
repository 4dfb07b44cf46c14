"""Image sources: turn a reference (``oci-archive:PATH``, ``registry:REF``, …) into an opened image.

Each scheme is one module and one class; ``SOURCES`` lists them, one line each.
"""

from __future__ import annotations

from keelwatch.errors import InvalidReference
from keelwatch.images.dir import DirSource
from keelwatch.images.docker_archive import DockerArchiveSource
from keelwatch.images.oci_archive import OciArchiveSource
from keelwatch.images.oci_dir import OciDirSource
from keelwatch.images.reference import parse_source
from keelwatch.images.source import ImageSource, OpenedImage, OpenOptions


class _RegistrySourceOnDemand:
    """``registry`` without its import cost: the HTTP stack (httpx, TLS) takes ~55 ms to import,
    which every archive scan would otherwise pay at start. Loaded on first use."""

    scheme = "registry"

    def open(self, location: str, reference: str, options: OpenOptions) -> OpenedImage:
        from keelwatch.images.registry import RegistrySource

        return RegistrySource().open(location, reference, options)

SOURCES: tuple[ImageSource, ...] = (
    DockerArchiveSource(),
    OciArchiveSource(),
    OciDirSource(),
    DirSource(),
    _RegistrySourceOnDemand(),  # keelwatch.images.registry.RegistrySource
)


def _registry() -> dict[str, ImageSource]:
    by_scheme: dict[str, ImageSource] = {}
    for source in SOURCES:
        if source.scheme in by_scheme:
            raise RuntimeError(f"image source {source.scheme!r} registered twice")
        by_scheme[source.scheme] = source
    return by_scheme


SOURCES_BY_SCHEME = _registry()


def open_image(reference: str, options: OpenOptions | None = None) -> OpenedImage:
    """Open ``scheme:location`` (a bare reference means ``registry:``). Close it when done."""
    spec = parse_source(reference)
    source = SOURCES_BY_SCHEME.get(spec.scheme)
    if source is None:
        raise InvalidReference(f"no image source for scheme {spec.scheme!r}",
                               hint="known: " + ", ".join(sorted(SOURCES_BY_SCHEME)))
    return source.open(spec.location, reference, options or OpenOptions())


__all__ = ["SOURCES", "OpenOptions", "OpenedImage", "open_image"]
