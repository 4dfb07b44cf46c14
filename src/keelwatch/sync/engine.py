"""The sync engine: fetch a feed, parse it, and replace what that feed had, atomically, with a journal.

One sync of one feed is one transaction. It compares the parsed records with what the feed held
(by content hash), writes only what differs with bulk inserts, and records every difference in the
journal: added, changed (with which fields), withdrawn, deleted (a complete snapshot no longer
has it), and exploitability changes (KEV added or removed, EPSS moved by ``EPSS_JOURNAL_THRESHOLD``
or more). Anything that goes wrong — a corrupt download, a bug, an interruption, a database error —
rolls the whole sync back: the previous knowledge and the feed's fingerprint stay as they were,
and a second, small transaction records the failure in ``feed_state`` and ``syncs``. A malformed
record is a ``Problem``: stored with the sync and skipped, the rest goes on.

Two processes never sync one feed at once:

- PostgreSQL: the sync's transaction takes ``pg_try_advisory_xact_lock`` on a 64-bit hash of the
  feed's name *before* fetching and holds it to the commit. A second process finds the lock taken
  and is refused (status ``busy``) at once instead of downloading the same feed again; the lock
  dies with its holder's connection, so a killed process frees the feed without waiting for a TTL.
- SQLite: writers are serialised by the database itself (``BEGIN IMMEDIATE``, see store/engine.py).
  The fetch runs outside the write lock (holding it through a download would stall every other
  writer); once it holds the lock the sync reads the feed's state again, and if another process
  stored the same fingerprint meanwhile, it records a no-op instead of writing the same data twice.

Sync ids are allocated in commit order (PostgreSQL: under a second advisory lock held to the
commit), so ``changes_since(N)`` never skips a sync that committed after a reader saw N.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from keelwatch.config import FeedSettings, Settings
from keelwatch.errors import ConfigError, FeedError, KeelwatchError
from keelwatch.feeds.base import Feed, Problem, Spool, Unchanged, Withdrawn
from keelwatch.model import Advisory, Exploitability
from keelwatch.store import Store
from keelwatch.store import advisories as kb
from keelwatch.store.tables import FeedStateRow, ProblemRow, SyncRow

log = logging.getLogger(__name__)

#: An EPSS score that moves by at least this much (or appears at least this high) is journaled, so
#: the matcher re-rates findings; the daily drift of a few thousandths is not.
EPSS_JOURNAL_THRESHOLD = 0.1

# PostgreSQL advisory-lock keys: any 64-bit constants, the same in every keelwatch process.
JOURNAL_LOCK = kb.advisory_key("keelwatch-lock", "journal")

# Exploitability columns: KEV's part and EPSS's part of a CVE's row, each owned by the feed that set it.
_KEV = ("kev_date_added", "kev_due_date", "kev_ransomware")
_EPSS = ("epss", "epss_percentile", "epss_date")
_EXPLOIT_COLUMNS = ("cve", *_KEV, "kev_source", *_EPSS, "epss_source")

#: Called with (feed name, phase): fetching, parsing, writing, done.
Progress = Callable[[str, str], None]


@dataclass(slots=True)
class SyncReport:
    """What one sync of one feed (or one import) did."""

    feed: str
    kind: str
    status: str  # ok, unchanged, failed, busy (another process is syncing this feed)
    sync_id: int | None = None
    added: int = 0
    changed: int = 0
    withdrawn: int = 0
    deleted: int = 0
    unchanged: int = 0
    exploitability: int = 0
    problems: int = 0
    error: str = ""
    duration: float = 0.0  # seconds
    started: datetime | None = None
    finished: datetime | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"


# --- records → what the feed publishes now -----------------------------------------------------------


@dataclass(slots=True)
class Snapshot:
    """A feed's parsed records: advisory documents (``advisory_to_json``) with their hashes, withdrawn
    ids, exploitability by CVE, problems; and whether it is the feed's whole content."""

    source: str
    complete: bool
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    withdrawn_ids: list[str] = field(default_factory=list)
    exploits: dict[str, Exploitability] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add_doc(self, doc: dict[str, Any], where: str = "") -> None:
        if doc["id"] in self.docs:
            self.problems.append(Problem(where or doc["id"], f"{doc['id']} appears twice; the later record is kept"))
        self.docs[doc["id"]] = doc
        self.hashes[doc["id"]] = kb.content_hash(doc)


def snapshot_of(records: Iterable[object], *, source: str, complete: bool) -> Snapshot:
    """Collect a feed's records; an advisory published under another source name is stored under ours."""
    snap = Snapshot(source=source, complete=complete)
    for record in records:
        if isinstance(record, Advisory):
            if record.source != source:
                record = replace(record, source=source)
            snap.add_doc(kb.advisory_to_json(record))
        elif isinstance(record, Exploitability):
            snap.exploits[record.cve] = _merge_exploit(snap.exploits.get(record.cve), record)
        elif isinstance(record, Withdrawn):
            snap.withdrawn_ids.append(record.id)
        elif isinstance(record, Problem):
            snap.problems.append(record)
        else:
            snap.problems.append(Problem(type(record).__name__, "not a record the sync engine knows; skipped"))
    return snap


def _merge_exploit(old: Exploitability | None, new: Exploitability) -> Exploitability:
    """Two records for one CVE in one feed: each fills what the other left empty."""
    if old is None:
        return new
    filled: dict[str, Any] = {k: getattr(new, k) for k in (*_KEV, *_EPSS) if getattr(new, k) not in ("", None)}
    return replace(old, **filled)


# --- applying a snapshot ------------------------------------------------------------------------------


@dataclass(slots=True)
class Changes:
    added: int = 0
    changed: int = 0
    withdrawn: int = 0
    deleted: int = 0
    unchanged: int = 0
    exploitability: int = 0
    journal: list[dict[str, Any]] = field(default_factory=list)


def apply_snapshot(session: Session, snap: Snapshot, *, now: datetime) -> Changes:
    """Make the store hold what ``snap`` says ``snap.source`` publishes; the journal rows (without sync id)."""
    changes = Changes()
    _apply_advisories(session, snap, now, changes)
    if snap.exploits or snap.complete:
        _apply_exploitability(session, snap, changes)
    return changes


def _apply_advisories(session: Session, snap: Snapshot, now: datetime, changes: Changes) -> None:
    stored = kb.stored_advisories(session, snap.source)
    docs = snap.docs
    # A Withdrawn record marks a known advisory withdrawn; it stays (and is not deleted) so the
    # matcher can close its findings and `db changes` can say why.
    gone = [i for i in dict.fromkeys(snap.withdrawn_ids) if i in docs or i in stored]
    missing = [stored[i].key for i in gone if i not in docs]
    old_docs = {d["id"]: d for d in map(kb.advisory_to_json, kb.load_advisories(session, missing).values())}
    for advisory_id in gone:
        doc = docs.get(advisory_id) or old_docs[advisory_id]
        if doc["withdrawn"] is None:
            doc = {**doc, "withdrawn": kb.iso_time(now)}
        docs[advisory_id] = doc
        snap.hashes[advisory_id] = kb.content_hash(doc)

    added = sorted(i for i in docs if i not in stored)
    differing = sorted(i for i in docs if i in stored and stored[i].content_hash != snap.hashes[i])
    deleted = sorted(i for i in stored if i not in docs) if snap.complete else []
    changes.unchanged = len(docs) - len(added) - len(differing)

    before = {d["id"]: d for d in map(kb.advisory_to_json, kb.load_advisories(
        session, [stored[i].key for i in differing + deleted]).values())}
    journal = changes.journal
    for advisory_id in added:
        doc = docs[advisory_id]
        journal.append(_entry(snap.source, advisory_id, "added", [], kb.affected_packages(doc), None,
                              kb.ranges_summary(doc)))
    for advisory_id in differing:
        old, new = before[advisory_id], docs[advisory_id]
        kind = "withdrawn" if not stored[advisory_id].withdrawn and new["withdrawn"] is not None else "changed"
        journal.append(_entry(snap.source, advisory_id, kind, kb.changed_fields(old, new),
                              kb.affected_packages(old) | kb.affected_packages(new), kb.ranges_summary(old),
                              kb.ranges_summary(new)))
        if kind == "withdrawn":
            changes.withdrawn += 1
        else:
            changes.changed += 1
    for advisory_id in deleted:
        old = before[advisory_id]
        journal.append(_entry(snap.source, advisory_id, "deleted", [], kb.affected_packages(old),
                              kb.ranges_summary(old), None))
    changes.added, changes.deleted = len(added), len(deleted)

    # Changed advisories are replaced whole: their key is a hash of (source, id), so it stays.
    kb.delete_advisories(session, [stored[i].key for i in differing + deleted])
    rows: list[dict[str, Any]] = []
    affected: list[dict[str, Any]] = []
    for advisory_id in added + differing:
        row, affected_rows = kb.advisory_rows(docs[advisory_id], snap.hashes[advisory_id])
        rows.append(row)
        affected.extend(affected_rows)
    kb.insert_advisories(session, rows, affected)


def _entry(source: str, advisory_id: str, change: str, fields: Sequence[str], packages: set[tuple[str, str]],
           before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    return {"source": source, "advisory_id": advisory_id, "change": change, "fields": list(fields),
            "packages": [list(p) for p in sorted(packages)], "before": before, "after": after}


def _apply_exploitability(session: Session, snap: Snapshot, changes: Changes) -> None:
    """Write the parts of each CVE's row this feed publishes (KEV fields, EPSS fields, or both).

    Each part is written on its own — an upsert that sets only that part's columns, a clear that
    only touches rows the feed owns — because the KEV and the EPSS feed share rows and may sync at
    the same time in two processes (PostgreSQL): a whole-row rewrite would undo the other's write.
    """
    table = kb.EXPLOITABILITY
    query = select(*(table.c[name] for name in _EXPLOIT_COLUMNS))
    rows: list[Any]
    if len(snap.exploits) > 20 * kb.IN_CHUNK:
        # EPSS covers ~250k CVEs: one scan of the table beats hundreds of IN queries.
        rows = list(session.execute(query))
    else:
        rows = list(session.execute(query.where((table.c.kev_source == snap.source)
                                                | (table.c.epss_source == snap.source))))
        for chunk in kb.chunks(sorted(snap.exploits)):
            rows.extend(session.execute(query.where(table.c.cve.in_(chunk))))
    old = {r.cve: dict(r._mapping) for r in rows}

    parts = {"kev": (_KEV, "kev_source"), "epss": (_EPSS, "epss_source")}
    writes: dict[str, list[dict[str, Any]]] = {"kev": [], "epss": []}
    clears: dict[str, list[str]] = {"kev": [], "epss": []}
    new: dict[str, dict[str, Any]] = {}
    for part, (columns, owner) in parts.items():
        published = {cve: r for cve, r in snap.exploits.items()
                     if (r.kev_date_added if part == "kev" else r.epss is not None)}
        for cve, record in published.items():
            before = old.get(cve) or _empty_exploit(cve)
            values = {c: getattr(record, c) for c in columns}
            if before[owner] != snap.source or any(before[c] != values[c] for c in columns):
                writes[part].append({"cve": cve, **values, owner: snap.source})
                new[cve] = {**new.get(cve, before), **values, owner: snap.source}
        if snap.complete:
            # A complete snapshot that no longer lists a CVE takes back what this feed said about it.
            for cve, row in old.items():
                if row[owner] == snap.source and cve not in published:
                    clears[part].append(cve)
                    new[cve] = {**new.get(cve, row), **_empty_exploit(cve, columns + (owner,))}

    for part, (columns, owner) in parts.items():
        if writes[part]:
            # The row's other part, if the row is new, starts empty (the insert's defaults).
            rows_in = [{**_empty_exploit(r["cve"]), **r} for r in writes[part]]
            stmt = _insert(session, table)
            stmt = stmt.on_conflict_do_update(index_elements=["cve"],
                                              set_={c: stmt.excluded[c] for c in (*columns, owner)})
            session.execute(stmt, rows_in)
        for chunk in kb.chunks(sorted(clears[part])):
            session.execute(table.update().where(table.c.cve.in_(chunk), table.c[owner] == snap.source)
                            .values(**_empty_exploit("", columns + (owner,))))
    cleared = sorted(set(clears["kev"]) | set(clears["epss"]))
    for chunk in kb.chunks(cleared):
        session.execute(table.delete().where(table.c.cve.in_(chunk), table.c.kev_source.is_(None),
                                             table.c.epss_source.is_(None)))
    changes.exploitability = len(new)

    for cve in sorted(new):
        before, after = old.get(cve) or _empty_exploit(cve), new[cve]
        fields = []
        if any(before[k] != after[k] for k in _KEV):
            fields.append("kev")
        if abs((after["epss"] or 0.0) - (before["epss"] or 0.0)) >= EPSS_JOURNAL_THRESHOLD:
            fields.append("epss")
        if fields:
            changes.journal.append(_entry(snap.source, cve, "exploitability", fields, set(),
                                          _exploit_values(before), _exploit_values(after)))


def _insert(session: Session, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT on both SQLite and PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


_EMPTY_EXPLOIT = {"kev_date_added": "", "kev_due_date": "", "kev_ransomware": "", "kev_source": None,
                  "epss": None, "epss_percentile": None, "epss_date": "", "epss_source": None}


def _empty_exploit(cve: str, columns: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A row that says nothing (or, given ``columns``, just those columns emptied, without the cve)."""
    if columns is not None:
        return {c: _EMPTY_EXPLOIT[c] for c in columns}
    return {"cve": cve, **_EMPTY_EXPLOIT}


def _exploit_values(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in (*_KEV, *_EPSS)}


# --- bookkeeping: syncs, journal, problems, feed_state --------------------------------------------------


def allocate_sync(session: Session, **values: Any) -> int:
    """Insert a ``syncs`` row and return its id, in commit order on every engine."""
    if session.get_bind().dialect.name == "postgresql":
        # Held to the commit: a sync id is never visible before a smaller one that commits later.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": JOURNAL_LOCK})
    return int(session.execute(insert(SyncRow).values(**values).returning(SyncRow.id)).scalar_one())


def write_journal(session: Session, sync_id: int, journal: list[dict[str, Any]], problems: list[Problem]) -> None:
    if journal:
        session.execute(insert(kb.JOURNAL), [{**entry, "sync": sync_id} for entry in journal])
    if problems:
        session.execute(insert(ProblemRow), [{"sync": sync_id, "location": p.where, "message": p.message}
                                                        for p in problems])


def _save_state(session: Session, name: str, **values: Any) -> None:
    state = session.get(FeedStateRow, name)
    if state is None:
        defaults: dict[str, Any] = {"kind": "", "url": "", "fingerprint": None, "last_attempt": None,
                                    "last_success": None, "status": "ok", "error": "", "last_sync": None,
                                    "advisories": 0, "withdrawn": 0, "exploitability": 0, "problems": 0}
        session.add(FeedStateRow(name=name, **{**defaults, **values}))
    else:
        for key, value in values.items():
            setattr(state, key, value)
    session.flush()


def save_feed_state(session: Session, name: str, **values: Any) -> None:
    """Create or update a feed's state row (import and sync share it)."""
    _save_state(session, name, **values)


def _counts(session: Session, name: str) -> dict[str, int]:
    total, withdrawn, exploits = kb.count_feed(session, name)
    return {"advisories": total, "withdrawn": withdrawn, "exploitability": exploits}


# --- one feed -------------------------------------------------------------------------------------------


def load_feed(settings: FeedSettings) -> Feed:
    """The feed plug-in of ``settings.kind``, configured with the ``[[feeds]]`` table's other keys."""
    from keelwatch import feeds

    return feeds.get(settings.kind, settings.options)


@dataclass(slots=True)
class _Attempt:
    settings: FeedSettings
    feed: Feed | None
    workdir: Path
    started: datetime
    clock: Callable[[], datetime]
    progress: Progress | None
    t0: float = field(default_factory=time.monotonic)
    spool: Spool | None = None

    def phase(self, name: str) -> None:
        if self.progress is not None:
            self.progress(self.settings.name, name)

    def report(self, status: str, **values: Any) -> SyncReport:
        return SyncReport(feed=self.settings.name, kind=self.settings.kind, status=status, started=self.started,
                          finished=self.clock(), duration=time.monotonic() - self.t0, **values)


def _state(session: Session, name: str) -> FeedStateRow | None:
    return session.get(FeedStateRow, name)


def _fingerprint_for(state: FeedStateRow | None, settings: FeedSettings) -> str | None:
    # A fingerprint is only meaningful for the URL it was taken from.
    if state is None or state.url != settings.url or state.kind != settings.kind:
        return None
    return state.fingerprint


def _fetch_and_parse(attempt: _Attempt, fingerprint: str | None) -> Unchanged | Snapshot:
    assert attempt.feed is not None
    attempt.phase("fetching")
    fetched = attempt.feed.fetch(attempt.settings.url, fingerprint, attempt.workdir)
    if isinstance(fetched, Unchanged):
        return fetched
    if not isinstance(fetched, Spool):
        raise FeedError(f"feed {attempt.settings.name}: fetch returned {type(fetched).__name__}, not a Spool")
    attempt.spool = fetched
    attempt.phase("parsing")
    return snapshot_of(attempt.feed.parse(fetched, source=attempt.settings.name), source=attempt.settings.name,
                       complete=fetched.complete)


def _write(session: Session, attempt: _Attempt, fetched: Unchanged | Snapshot) -> SyncReport:
    settings, now = attempt.settings, attempt.clock()
    common = {"feed": settings.name, "kind": settings.kind, "url": settings.url, "started": attempt.started,
              "finished": now, "error": ""}
    if isinstance(fetched, Unchanged):
        sync_id = allocate_sync(session, **common, status="unchanged", fingerprint=fetched.fingerprint, added=0,
                                changed=0, withdrawn=0, deleted=0, unchanged=0, exploitability=0, problems=0)
        _save_state(session, settings.name, kind=settings.kind, url=settings.url, fingerprint=fetched.fingerprint,
                    last_attempt=now, last_success=now, status="ok", error="", last_sync=sync_id)
        return attempt.report("unchanged", sync_id=sync_id)

    attempt.phase("writing")
    assert attempt.spool is not None
    changes = apply_snapshot(session, fetched, now=now)
    counts = {"added": changes.added, "changed": changes.changed, "withdrawn": changes.withdrawn,
              "deleted": changes.deleted, "unchanged": changes.unchanged, "exploitability": changes.exploitability,
              "problems": len(fetched.problems)}
    sync_id = allocate_sync(session, **common, status="ok", fingerprint=attempt.spool.fingerprint, **counts)
    write_journal(session, sync_id, changes.journal, fetched.problems)
    _save_state(session, settings.name, kind=settings.kind, url=settings.url, fingerprint=attempt.spool.fingerprint,
                last_attempt=now, last_success=now, status="ok", error="", last_sync=sync_id,
                problems=len(fetched.problems), **_counts(session, settings.name))
    return attempt.report("ok", sync_id=sync_id, **counts)


def feed_lock_key(name: str) -> int:
    """The PostgreSQL advisory-lock key that a sync (or an import) of feed ``name`` holds."""
    return kb.advisory_key("keelwatch-lock:feed", name)


def _sync_postgresql(store: Store, attempt: _Attempt, force: bool) -> SyncReport:
    with store.session() as session:
        locked = session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                 {"key": feed_lock_key(attempt.settings.name)}).scalar()
        if not locked:
            return attempt.report("busy", error="another keelwatch process is syncing this feed")
        state = _state(session, attempt.settings.name)
        fetched = _fetch_and_parse(attempt, None if force else _fingerprint_for(state, attempt.settings))
        return _write(session, attempt, fetched)


def _sync_sqlite(store: Store, attempt: _Attempt, force: bool) -> SyncReport:
    with store.session(write=False) as session:
        before = _fingerprint_for(_state(session, attempt.settings.name), attempt.settings)
    fetched = _fetch_and_parse(attempt, None if force else before)
    with store.session() as session:  # BEGIN IMMEDIATE: from here on, no other writer
        now = _fingerprint_for(_state(session, attempt.settings.name), attempt.settings)
        if isinstance(fetched, Snapshot) and attempt.spool is not None and before != now == attempt.spool.fingerprint:
            # Another process stored this very download while we fetched it: nothing to write twice.
            fetched = Unchanged(attempt.spool.fingerprint)
        return _write(session, attempt, fetched)


def _describe(error: BaseException) -> str:
    if isinstance(error, KeelwatchError):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _record_failure(store: Store, attempt: _Attempt, error: BaseException) -> int | None:
    """After the rollback: note the failed attempt; the fingerprint and the knowledge are untouched."""
    now, message = attempt.clock(), _describe(error)
    try:
        with store.session() as session:
            sync_id = allocate_sync(
                session, feed=attempt.settings.name, kind=attempt.settings.kind, url=attempt.settings.url,
                started=attempt.started, finished=now, status="failed", error=message, fingerprint=None, added=0,
                changed=0, withdrawn=0, deleted=0, unchanged=0, exploitability=0, problems=0)
            state = _state(session, attempt.settings.name)
            values: dict[str, Any] = {"last_attempt": now, "status": "failed", "error": message}
            if state is None:  # never synced: remember what was tried
                values.update(kind=attempt.settings.kind, url=attempt.settings.url)
            _save_state(session, attempt.settings.name, **values)
            return sync_id
    except Exception as second:  # the database itself may be what failed
        log.warning("feed %s: could not record the failure (%s): %s", attempt.settings.name, message,
                    _describe(second))
        return None


def _discard_spool(attempt: _Attempt) -> None:
    spool = attempt.spool
    if spool is None:
        return
    # Only what the feed wrote into our workdir: a local feed may hand back the user's own file.
    try:
        spool.path.resolve().relative_to(attempt.workdir.resolve())
    except ValueError:
        return
    if spool.path.is_dir():
        shutil.rmtree(spool.path, ignore_errors=True)
    else:
        spool.path.unlink(missing_ok=True)


def sync_feed(store: Store, feed_settings: FeedSettings, *, workdir: Path, now: datetime | None = None,
              feed: Feed | None = None, force: bool = False, progress: Progress | None = None) -> SyncReport:
    """Sync one feed: its knowledge replaced atomically, every difference journaled.

    Returns the report (status ``ok``, ``unchanged`` or ``busy``). A failure raises — ``FeedError``
    for a bad download, ``StoreError`` for the database, whatever a bug raises — after the rollback
    and after ``feed_state`` and ``syncs`` record it. ``force`` fetches without the stored
    fingerprint (the whole feed, compared record by record); ``now`` fixes the clock (tests);
    ``feed`` replaces the registry's plug-in (tests, embedding).
    """
    clock = (lambda: now) if now is not None else (lambda: datetime.now(UTC))
    attempt = _Attempt(settings=feed_settings, feed=feed, workdir=Path(workdir), started=clock(), clock=clock,
                       progress=progress)
    try:
        if attempt.feed is None:
            attempt.feed = load_feed(feed_settings)
        attempt.workdir.mkdir(parents=True, exist_ok=True)
        if store.dialect == "postgresql":
            report = _sync_postgresql(store, attempt, force)
        else:
            report = _sync_sqlite(store, attempt, force)
    except BaseException as error:
        _record_failure(store, attempt, error)
        raise
    finally:
        _discard_spool(attempt)
    attempt.phase("done")
    return report


def sync_all(store: Store, settings: Settings, *, names: Sequence[str] | None = None, workdir: Path | None = None,
             now: datetime | None = None, force: bool = False, progress: Progress | None = None) -> list[SyncReport]:
    """Sync every configured feed (or those named), one after another; one report each.

    A feed that fails does not stop the others: its report says ``failed`` with the error.
    """
    chosen = settings.feeds
    if names:
        known = {f.name for f in settings.feeds}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(f"no feed named {', '.join(unknown)} in the configuration",
                              hint=f"configured: {', '.join(sorted(known)) or 'none'}")
        chosen = [f for f in settings.feeds if f.name in names]
    reports = []
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="keelwatch-sync-", dir=workdir) as tmp:
        for feed_settings in chosen:
            t0 = time.monotonic()
            try:
                reports.append(sync_feed(store, feed_settings, workdir=Path(tmp) / feed_settings.name, now=now,
                                         force=force, progress=progress))
            except Exception as error:
                log.debug("feed %s failed", feed_settings.name, exc_info=True)
                reports.append(SyncReport(feed=feed_settings.name, kind=feed_settings.kind, status="failed",
                                          error=_describe(error), duration=time.monotonic() - t0))
    return reports
