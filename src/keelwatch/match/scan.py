"""Scan one stored image: match its cataloged packages against the store, keep its findings and events.

``scan_image(store, digest)`` is what ``keelwatch scan`` (and later the service's scan queue) calls
after cataloging: it never reads the image again, only its stored catalog. The findings it writes
are diffed against what the image had (``keelwatch.match.diff``), so re-scanning an image opens
and closes only what really changed.

Everything runs in one write transaction: the advisories read, the findings written and the
image's counts agree with one another. A feed sync that commits while a scan runs (possible on
PostgreSQL, where readers do not block writers) is caught up at the end by a re-match of this
image over the journal since the sync the scan read (``rematch(images=…)``): a scan never misses
a change because it raced a sync.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from keelwatch.errors import StoreError
from keelwatch.match.base import Matcher
from keelwatch.match.diff import plan_write
from keelwatch.match.matcher import MatchCache, MatchResult, match_packages
from keelwatch.model import Advisory, Exploitability, Package, Unknown
from keelwatch.names import ecosystem_family, normalise_name
from keelwatch.store import Store
from keelwatch.store import advisories as kb
from keelwatch.store import findings as stored_findings
from keelwatch.store.catalog import ImagePackage
from keelwatch.store.findings import ImageScan, ImageWrite, StoredFinding

log = logging.getLogger(__name__)


# --- lookups that remember: one database round trip per distinct name, whatever the fleet -----------


class MemoLookup:
    """``advisories_for`` over a session, remembering every (ecosystem, name) it was asked.

    Each call fetches only the names not asked before, in one query per ecosystem, so matching
    10,000 images that share names costs one lookup per distinct name.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._known: dict[tuple[str, str], list[Advisory]] = {}
        self._ecosystems: set[str] | None = None

    def ecosystems(self) -> set[str]:
        if self._ecosystems is None:
            self._ecosystems = kb.ecosystems(self._session)
        return self._ecosystems

    def advisories_for(self, ecosystem: str, names: Sequence[str]) -> list[Advisory]:
        missing = sorted({n for n in names if (ecosystem, n) not in self._known})
        if missing:
            for name in missing:
                self._known[(ecosystem, name)] = []
            wanted = set(missing)
            for advisory in kb.advisories_for(self._session, ecosystem, missing):
                named = {normalise_name(a.ecosystem, a.name) for a in advisory.affected
                         if a.ecosystem == ecosystem or (":" not in ecosystem
                                                         and ecosystem_family(a.ecosystem) == ecosystem)}
                for name in sorted(named & wanted):
                    self._known[(ecosystem, name)].append(advisory)
        # By (source, id), not object identity: an advisory naming two packages fetched in two
        # calls is two objects, and must still be one advisory (else its details are stored twice).
        seen: set[tuple[str, str]] = set()
        out: list[Advisory] = []
        for name in names:
            for advisory in self._known.get((ecosystem, name), ()):
                if (advisory.source, advisory.id) not in seen:
                    seen.add((advisory.source, advisory.id))
                    out.append(advisory)
        return out


class MemoExploitability:
    """``Store.exploitability`` over a session, remembering each CVE asked (present or not)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._known: dict[str, Exploitability | None] = {}

    def __call__(self, cves: Iterable[str]) -> Mapping[str, Exploitability]:
        wanted = set(cves)
        missing = sorted(c for c in wanted if c not in self._known)
        if missing:
            found = kb.exploitability(self._session, missing)
            for cve in missing:
                self._known[cve] = found.get(cve)
        return {c: e for c in wanted if (e := self._known[c]) is not None}

    def forget(self, cves: Iterable[str]) -> None:
        for cve in cves:
            self._known.pop(cve, None)


class MemoCveRecords:
    """``cve_records`` (NVD's CVSS) over a session, remembering each CVE asked."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._known: dict[str, list[Advisory]] = {}

    def __call__(self, cves: Iterable[str]) -> Mapping[str, Sequence[Advisory]]:
        wanted = set(cves)
        missing = sorted(c for c in wanted if c not in self._known)
        if missing:
            found = kb.cve_records(self._session, missing)
            for cve in missing:
                self._known[cve] = found.get(cve, [])
        return {c: self._known[c] for c in wanted if self._known[c]}


@dataclass(slots=True)
class MatchSession:
    """One snapshot's matching state: the session, the remembering lookups, the decision cache."""

    session: Session
    lookup: MemoLookup
    exploitability: MemoExploitability
    cve_records: MemoCveRecords
    cache: MatchCache = field(default_factory=MatchCache)
    image_ecosystems: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def open(cls, session: Session) -> MatchSession:
        return cls(session, MemoLookup(session), MemoExploitability(session), MemoCveRecords(session))

    def match(self, packages: Iterable[Package], image_ecosystem: str | None) -> MatchResult:
        return match_packages(packages, self.lookup, self.exploitability, image_ecosystem=image_ecosystem,
                              covered_ecosystems=self.lookup.ecosystems(), cache=self.cache,
                              cve_lookup=self.cve_records)


# --- search keys: the index the re-matcher goes through -------------------------------------------------


def search_keys(package: Package, matchers: Sequence[Matcher] | None = None) -> set[tuple[str, str]]:
    """The (ecosystem, match name) pairs an advisory must name to concern ``package``.

    What the package's matcher would search for. A distro package whose release the cataloger
    could not tell is keyed under its bare family (``Debian``); the store joins that with the
    image's release.
    """
    if matchers is None:
        from keelwatch.match import MATCHERS

        matchers = MATCHERS
    matcher = next((m for m in matchers if m.handles(package)), None)
    searches = matcher.searches(package, None) if matcher is not None else None
    if searches is None or isinstance(searches, Unknown):
        names = {package.name, package.source_name} - {""}
        return {(package.ecosystem, normalise_name(package.ecosystem, n)) for n in names}
    return {(s.ecosystem, s.name) for s in searches}


def key_packages(session: Session, packages: Iterable[ImagePackage]) -> None:
    """Store the search keys of these packages (idempotent: existing keys are left alone)."""
    rows: set[tuple[int, str, str]] = set()
    for item in packages:
        for ecosystem, name in search_keys(item.package):
            rows.add((item.package_id, ecosystem, name))
    stored_findings.insert_search_keys(session, sorted(rows))


# --- one image ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ScanReport:
    """An image's findings after a scan, with what the scan changed and what it could not judge."""

    image_digest: str
    findings: list[StoredFinding]
    unknowns: list[Unknown]
    scan: ImageScan
    opened: int = 0
    closed: int = 0
    changed: int = 0
    sync: int | None = None  # the newest sync the findings reflect
    seconds: float = 0.0


def scan_image(store: Store, image_digest: str, *, now: datetime | None = None) -> ScanReport:
    """Match the stored catalog of ``image_digest`` and store its findings; the findings after it."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    with store.session() as session:
        sync = kb.latest_sync_id(session)
        write, _ = match_image(MatchSession.open(session), image_digest, sync=sync, now=now)
        stored_findings.apply_image_write(session, write, sync=sync, now=now)
        if stored_findings.rematch_watermark(session) is None and sync is not None:
            # The first scan of a store: everything up to ``sync`` is in these findings already.
            stored_findings.set_rematch_watermark(session, sync, now=now)
    latest = store.latest_sync_id()
    if latest is not None and latest != sync:
        from keelwatch.match.rematch import rematch

        log.info("a sync committed while %s was scanned: re-matching it over syncs %s..%s", image_digest, sync,
                 latest)
        rematch(store, since=sync, images=[image_digest], advance=False, now=now)
    report = load_report(store, image_digest)
    assert report is not None  # written just now
    counts = {e: sum(1 for x in write.events if x["event"] == e) for e in ("opened", "closed", "changed")}
    report.opened, report.closed, report.changed = counts["opened"], counts["closed"], counts["changed"]
    report.seconds = time.perf_counter() - started
    return report


def match_image(ms: MatchSession, image_digest: str, *, sync: int | None, now: datetime,
                package_uids: Collection[str] | None = None,
                packages: Sequence[ImagePackage] | None = None) -> tuple[ImageWrite, list[StoredFinding]]:
    """The write that brings an image's findings up to date (all, or those of ``package_uids``),
    with the stored findings it replaces.

    Without ``packages`` the image's stored catalog is read; an image that is not cataloged is a
    ``StoreError`` (scan it first).
    """
    session = ms.session
    if packages is None:
        packages = stored_findings.image_packages(session, [image_digest]).get(image_digest)
        if packages is None:
            if not stored_findings.image_ecosystems(session, [image_digest]):
                raise StoreError(f"no stored catalog for {image_digest}",
                                 hint="catalog it first: keelwatch scan REFERENCE or keelwatch sbom REFERENCE")
            packages = []
        key_packages(session, packages)
    if image_digest not in ms.image_ecosystems:
        ms.image_ecosystems.update(stored_findings.image_ecosystems(session, [image_digest]))
    chosen = [p.package for p in packages if package_uids is None or p.package.id in package_uids]
    result = ms.match(chosen, ms.image_ecosystems.get(image_digest))
    stored = stored_findings.load_findings(session, image_digest, package_uids)
    write = plan_write(image_digest, result.findings, stored, package_uids=package_uids, sync=sync, now=now)
    write.unknowns = result.unknowns
    if package_uids is None:
        write.no_data = sorted({u.ecosystem for u in result.unknowns if u.kind == "no-data"})
    return write, stored


def load_report(store: Store, image_digest: str) -> ScanReport | None:
    """The stored findings of an image (None when it was never scanned)."""
    with store.session(write=False) as session:
        scan = stored_findings.image_scan(session, image_digest)
        if scan is None:
            return None
        return ScanReport(image_digest=image_digest, findings=stored_findings.load_findings(session, image_digest),
                          unknowns=stored_findings.load_unknowns(session, image_digest), scan=scan, sync=scan.sync)
