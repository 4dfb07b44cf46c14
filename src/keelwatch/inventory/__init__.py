"""Inventory sources: one per file, one class each, listed here one line per kind.

The registry is an explicit tuple: a duplicate kind fails at import, and
``tests/inventory/test_registry.py`` fails if a source module is not listed. The kind is the
module's name and the ``kind`` of an ``[[inventory.sources]]`` table. Plug-ins import their client
libraries (``kubernetes``, ``docker``) only when a source of theirs is opened, so loading the
registry costs nothing.
"""

from __future__ import annotations

from keelwatch.config import InventorySourceSettings
from keelwatch.errors import ConfigError
from keelwatch.inventory.base import (
    ContainerRecord,
    InventoryError,
    InventorySource,
    Problem,
    Snapshot,
    WatchingSource,
)
from keelwatch.inventory.docker import DockerSource
from keelwatch.inventory.kubernetes import KubernetesSource
from keelwatch.inventory.static import StaticSource

SOURCES: tuple[type[InventorySource], ...] = (
    DockerSource,
    KubernetesSource,
    StaticSource,
)


def _index(sources: tuple[type[InventorySource], ...]) -> dict[str, type[InventorySource]]:
    by_kind: dict[str, type[InventorySource]] = {}
    for source in sources:
        if source.kind in by_kind:
            raise RuntimeError(f"inventory source kind {source.kind!r} registered twice")
        by_kind[source.kind] = source
    return by_kind


SOURCES_BY_KIND = _index(SOURCES)


def open_source(settings: InventorySourceSettings) -> InventorySource:
    """The source an ``[[inventory.sources]]`` table describes, ready to ``snapshot()``."""
    try:
        cls = SOURCES_BY_KIND[settings.kind]
    except KeyError:
        raise ConfigError(f"unknown inventory source kind {settings.kind!r} "
                          f"(known: {', '.join(SOURCES_BY_KIND)})") from None
    return cls(settings)  # type: ignore[call-arg]


__all__ = ["SOURCES", "SOURCES_BY_KIND", "ContainerRecord", "InventoryError", "InventorySource", "Problem",
           "Snapshot", "WatchingSource", "open_source"]
