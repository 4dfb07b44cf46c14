"""Feeds: one per file, one class each, listed here one line per feed kind.

The registry is an explicit tuple (no import-time self-registration): a duplicate kind fails at
import, and ``tests/feeds/test_registry.py`` fails if a feed module is not listed. The kind is the
module's name with ``_`` spelled ``-`` and the ``kind`` of a ``[[feeds]]`` table.

The sync engine uses ``get(kind, options)`` → a ``Feed`` configured with the table's other keys,
then ``fetch(url, fingerprint, workdir)`` and ``parse(spool, source=name)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keelwatch.errors import ConfigError
from keelwatch.feeds.alpine_secdb import AlpineSecdbFeed
from keelwatch.feeds.base import Feed, Problem, Record, Spool, Unchanged, Withdrawn
from keelwatch.feeds.debian_tracker import DebianTrackerFeed
from keelwatch.feeds.epss import EpssFeed
from keelwatch.feeds.kev import KevFeed
from keelwatch.feeds.nvd import NvdFeed
from keelwatch.feeds.osv import OsvFeed

FEEDS: tuple[type[Feed], ...] = (
    AlpineSecdbFeed,
    DebianTrackerFeed,
    EpssFeed,
    KevFeed,
    NvdFeed,
    OsvFeed,
)


def _index(feeds: tuple[type[Feed], ...]) -> dict[str, type[Feed]]:
    by_kind: dict[str, type[Feed]] = {}
    for feed in feeds:
        if feed.kind in by_kind:
            raise RuntimeError(f"feed kind {feed.kind!r} registered twice")
        by_kind[feed.kind] = feed
    return by_kind


FEEDS_BY_KIND = _index(FEEDS)


def get(kind: str, options: Mapping[str, Any] | None = None) -> Feed:
    """The feed of ``kind``, configured with a ``[[feeds]]`` table's options (unknown ones are an error)."""
    try:
        cls = FEEDS_BY_KIND[kind]
    except KeyError:
        raise ConfigError(f"unknown feed kind {kind!r} (known: {', '.join(FEEDS_BY_KIND)})") from None
    return cls(options or {})  # type: ignore[call-arg]


__all__ = ["FEEDS", "FEEDS_BY_KIND", "Feed", "Problem", "Record", "Spool", "Unchanged", "Withdrawn", "get"]
