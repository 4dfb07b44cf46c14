"""Re-evaluation without rescans: bring stored findings up to date with what the feeds changed.

``rematch(store)`` reads the change journal after the re-match watermark (the last sync whose
changes every stored finding reflects) and re-judges only what those changes can touch:

* an advisory added, changed, withdrawn or deleted names (ecosystem, package) pairs, before and
  after: the package index (``package_search_keys``) turns them into the scanned images and the
  exact packages that carry them — an ``openssl`` advisory looks only at images with ``openssl``;
* a KEV or EPSS change names a CVE, and so does a changed NVD record (a CVE with no packages,
  the CVSS of last resort): the findings that carry it as an alias are re-judged (their KEV flag,
  date, EPSS or score move; a severity driven by KEV stays the policy's business);
* an image whose scan said "no advisory data for Debian:13" is matched whole when Debian:13 data
  arrives, so the warning goes as the findings come.

Each image's re-judged packages are diffed against their stored findings (``match.diff``); only
images whose findings really move are written, each write adding its opened / closed / changed
events stamped with the newest sync processed. The watermark advances in the same transaction,
so a crash leaves either the whole re-match or none of it, and the next run starts where the last
one committed. On PostgreSQL the watermark row is locked for the duration: two processes that
re-match at once serialise instead of writing the same events twice.

``full=True`` re-judges every package of every scanned image (after a matcher change, say); it
writes the same way, so an unchanged store gets no events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from keelwatch.match.diff import is_noop
from keelwatch.match.scan import MatchSession, key_packages, match_image
from keelwatch.store import Store
from keelwatch.store import advisories as kb
from keelwatch.store import findings as stored_findings
from keelwatch.store.advisories import JournalEntry
from keelwatch.store.catalog import ImagePackage

log = logging.getLogger(__name__)

_ADVISORY_CHANGES = ("added", "changed", "withdrawn", "deleted")

#: Called as work proceeds: (images done, images to do).
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class RematchReport:
    """What one re-match read and wrote."""

    since: int | None  # the last sync already reflected before this run
    until: int | None  # the newest sync reflected after it
    full: bool
    journal_entries: int = 0
    package_keys: int = 0  # distinct (ecosystem, name) pairs the changes named
    cves: int = 0  # distinct CVEs whose KEV/EPSS moved
    images_considered: int = 0
    packages_rejudged: int = 0
    images_written: int = 0
    opened: int = 0
    closed: int = 0
    changed: int = 0
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return self.opened + self.closed + self.changed

    def as_dict(self) -> dict[str, object]:
        return {"since": self.since, "until": self.until, "full": self.full,
                "journal_entries": self.journal_entries, "package_keys": self.package_keys, "cves": self.cves,
                "images_considered": self.images_considered, "packages_rejudged": self.packages_rejudged,
                "images_written": self.images_written, "opened": self.opened, "closed": self.closed,
                "changed": self.changed, "seconds": round(self.seconds, 3)}


@dataclass(slots=True)
class _Work:
    """One image's share of a re-match: which packages to re-judge (None: all of them)."""

    packages: dict[str, ImagePackage]  # package uid → package
    whole: bool = False


def rematch(store: Store, *, since: int | None = None, images: Collection[str] | None = None, full: bool = False,
            advance: bool = True, now: datetime | None = None, progress: Progress | None = None,
            then: Callable[[Session, RematchReport], object] | None = None) -> RematchReport:
    """Re-judge what the journal after ``since`` (default: the watermark) touches; the report.

    ``images`` limits the work to those digests (a scan catching up with a sync it raced);
    ``advance`` False leaves the watermark alone (the caller covered only part of the fleet).
    ``then(session, report)`` runs in the same transaction after the writes: the alerting layer
    raises its alerts there, so the finding events and the alerts they cause commit together.
    """
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    with store.session() as session:
        watermark = stored_findings.rematch_watermark(session, lock=advance)
        start = since if since is not None else watermark
        latest = kb.latest_sync_id(session)
        report = RematchReport(since=start, until=latest if full else start, full=full)
        scans = stored_findings.image_scans(session, images)
        if full:
            work = {digest: _Work({p.package.id: p for p in packages}, whole=True)
                    for digest, packages in stored_findings.image_packages(session, images, scanned_only=True).items()}
            for digest in scans.keys() - work.keys():
                work[digest] = _Work({}, whole=True)  # scanned, but its catalog holds no package
            # The matchers may have changed what they search for: key every package afresh.
            key_packages(session, [p for item in work.values() for p in item.packages.values()])
        else:
            entries = kb.changes_since(session, start)
            if latest is not None:
                entries = [e for e in entries if e.sync_id <= latest]
            report.journal_entries = len(entries)
            if entries:
                report.until = max(e.sync_id for e in entries)
            work = _plan(session, entries, scans, images, report)
        report.images_considered = len(work)

        ms = MatchSession.open(session)
        untouched: list[str] = []
        for done, digest in enumerate(sorted(work), start=1):
            item = work[digest]
            if item.whole and not full:
                uids, packages = None, None  # match_image reads (and keys) the image's whole catalog
            else:
                uids = None if item.whole else set(item.packages)
                packages = list(item.packages.values())
                report.packages_rejudged += len(packages)
            write, stored = match_image(ms, digest, sync=report.until, now=now, package_uids=uids, packages=packages)
            if is_noop(write, stored) and not _unknowns_moved(session, write):
                untouched.append(digest)
            else:
                stored_findings.apply_image_write(session, write, sync=report.until, now=now)
                report.images_written += 1
                for event in write.events:
                    setattr(report, event["event"], getattr(report, event["event"]) + 1)
            if progress is not None:
                progress(done, len(work))
        stored_findings.touch_images(session, untouched, sync=report.until, now=now)
        if advance and report.until is not None and (watermark is None or report.until > watermark):
            stored_findings.set_rematch_watermark(session, report.until, now=now)
        if then is not None:
            then(session, report)
    report.seconds = time.perf_counter() - started
    log.info("re-match %s..%s: %d journal entries, %d images considered, %d written, %d opened, %d closed, "
             "%d changed in %.2fs", report.since, report.until, report.journal_entries, report.images_considered,
             report.images_written, report.opened, report.closed, report.changed, report.seconds)
    return report


def _plan(session: Session, entries: Iterable[JournalEntry], scans: dict[str, stored_findings.ImageScan],
          images: Collection[str] | None, report: RematchReport) -> dict[str, _Work]:
    """Which packages of which scanned images the journal entries can touch."""
    keys: set[tuple[str, str]] = set()
    cves: set[str] = set()
    for entry in entries:
        if entry.change in _ADVISORY_CHANGES and entry.packages:
            keys.update(entry.packages)
        elif entry.change == "exploitability" or entry.advisory_id.startswith("CVE-"):
            # KEV/EPSS moved, or a CVE record without packages (NVD's CVSS) changed: the findings
            # carrying that CVE are re-judged.
            cves.add(entry.advisory_id)
    report.package_keys, report.cves = len(keys), len(cves)
    wanted = set(images) if images is not None else None
    work: dict[str, _Work] = {}
    for item in stored_findings.scanned_images_with_keys(session, keys):
        if wanted is None or item.manifest_digest in wanted:
            work.setdefault(item.manifest_digest, _Work({})).packages[item.package.id] = item

    # Findings carrying a CVE whose KEV/EPSS moved: re-judge their packages.
    hit = stored_findings.findings_with_alias(session, cves) if cves else {}
    hit = {d: k for d, k in hit.items() if wanted is None or d in wanted}
    if hit:
        catalogs = stored_findings.image_packages(session, hit.keys())
        for digest, finding_keys in hit.items():
            uids = {s.finding.package.id for s in
                    stored_findings.load_findings(session, digest, (), keys=finding_keys)}
            item = work.setdefault(digest, _Work({}))
            for p in catalogs.get(digest, ()):
                if p.package.id in uids:
                    item.packages[p.package.id] = p

    # An image that had no data for an ecosystem the changes now name is matched whole.
    named = {e for e, _ in keys}
    for digest, scan in scans.items():
        if (wanted is None or digest in wanted) and named.intersection(scan.no_data):
            work.setdefault(digest, _Work({})).whole = True
    return work


def _unknowns_moved(session: Session, write: stored_findings.ImageWrite) -> bool:
    """Whether the write's unknowns differ from the stored ones for the packages it covers."""
    stored = stored_findings.load_unknowns(session, write.image_digest)
    if write.package_uids is None:
        return stored != list(write.unknowns)
    uids = set(write.package_uids)
    before = [u for u in stored if u.package is not None and u.package.id in uids]
    after = [u for u in write.unknowns if u.package is not None and u.package.id in uids]
    return before != after
