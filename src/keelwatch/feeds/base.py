"""The feed protocol: fetch (maybe "unchanged") then parse, nothing more (claircore's updater shape).

A feed never touches the database. ``fetch`` returns either ``Unchanged`` (the source's
fingerprint — ETag, Last-Modified, a digest — is the one we stored) or a ``Spool``: the raw bytes
on disk, with the new fingerprint. ``parse`` turns a spool into records. The sync engine stores
them atomically and writes the change journal; export/import and journal replay reuse spools.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from keelwatch.model import Advisory, Exploitability


@dataclass(frozen=True, slots=True)
class Unchanged:
    fingerprint: str


@dataclass(slots=True)
class Spool:
    """Fetched bytes kept on disk (a feed can be GBs); deleted by whoever consumes it."""

    path: Path
    fingerprint: str  # what to send next time to learn "unchanged" (ETag, Last-Modified, sha256)
    url: str = ""
    # Incremental fetches (OSV modified_id.csv) carry only changed records: the sync must not
    # treat records missing from a delta as deleted.
    complete: bool = True
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """An advisory id the source says is gone (deleted, or withdrawn without a full record)."""

    id: str


@dataclass(frozen=True, slots=True)
class Problem:
    """A record that could not be read: reported and skipped; the rest of the sync goes on."""

    where: str  # file name inside the spool, line number, record id
    message: str


Record = Advisory | Exploitability | Withdrawn | Problem


class Feed(Protocol):
    #: Registry name = module name = the `kind` in `[[feeds]]` (osv, debian-tracker, …).
    kind: str

    def fetch(self, url: str, fingerprint: str | None, workdir: Path) -> Unchanged | Spool: ...

    def parse(self, spool: Spool, *, source: str) -> Iterator[Record]:
        """Records of the spool; ``source`` is the feed's configured name (stored on advisories)."""
