"""reference → image → catalog → store: the one path every adapter (CLI, API, service) takes.

An image is identified by its manifest digest before any layer is read, so a digest already
cataloged (by the same cataloger versions) is loaded from the store instead of read again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from keelwatch.catalog import CATALOGERS, Cataloger
from keelwatch.catalog.walker import Progress, catalog_image
from keelwatch.images import open_image
from keelwatch.images.reference import parse_reference, parse_source
from keelwatch.images.source import OpenOptions
from keelwatch.model import CatalogResult, Image

if TYPE_CHECKING:
    from keelwatch.store import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Cataloged:
    result: CatalogResult
    reused: bool  # True when the store already held this digest's catalog


def catalog_reference(
    reference: str,
    *,
    options: OpenOptions | None = None,
    store: Store | None = None,
    catalogers: Sequence[Cataloger] = CATALOGERS,
    refresh: bool = False,
    progress: Progress | None = None,
) -> Cataloged:
    opened = open_image(reference, options)
    try:
        image = opened.image
        versions = {c.name: c.version for c in catalogers}
        if store is not None:
            _record_reference(store, reference, image)
            if not refresh and store.has_catalog(image.manifest_digest, versions):
                stored = store.load_catalog(image.manifest_digest)
                if stored is not None:
                    log.info("reusing the stored catalog of %s", image.manifest_digest)
                    stored.image.reference = reference
                    return Cataloged(stored, reused=True)
        result = catalog_image(opened, catalogers, progress=progress)
    finally:
        opened.close()
    if store is not None:
        store.save_catalog(result)
    return Cataloged(result, reused=False)


def _record_reference(store: Store, reference: str, image: Image) -> None:
    spec = parse_source(reference)
    name = parse_reference(spec.location).name if spec.scheme == "registry" else str(spec)
    store.record_reference(reference, name, image.manifest_digest, image.index_digest)


def registry_is_insecure(reference: str, insecure_registries: Sequence[str]) -> bool:
    """Whether the config lists the registry of ``reference`` as plain-HTTP/unverified-TLS."""
    spec = parse_source(reference)
    if spec.scheme != "registry" or not insecure_registries:
        return False
    return parse_reference(spec.location).registry in set(insecure_registries)
