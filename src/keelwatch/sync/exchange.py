"""Export and import of the knowledge base as one checksummed file, for air-gapped installs.

The file is a zip holding:

- ``advisories.jsonl``: one advisory per line, in the codec the store hashes
  (``keelwatch.store.advisories.advisory_to_json``), sorted by (feed, id);
- ``exploitability.jsonl``: one CVE's KEV and EPSS values per line, with the feed that set each part;
- ``feed_state.json``: each exported feed's state (URL, fingerprint, last success…): how fresh the
  data is travels with it;
- ``manifest.json``: format and version, and the sha256 and size of each member above.

The zip's comment carries the sha256 of ``manifest.json``: a member changed on the way no longer
matches the manifest, a manifest changed no longer matches the comment, and a cut file has no
central directory. (A checksum proves integrity, not origin: sign the file if the way is hostile.)

An import verifies everything before it writes anything, then replaces the knowledge of each feed
in the file — and only those — as one sync of its own (kind ``import``), with a journal, in one
transaction: the same comparison as a feed sync, so re-importing a file journals nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select, text

from keelwatch import __version__
from keelwatch.errors import FeedError, KeelwatchError, StoreError
from keelwatch.model import Exploitability
from keelwatch.store import Store
from keelwatch.store import advisories as kb
from keelwatch.store.tables import AdvisoryRow
from keelwatch.sync.engine import (
    Snapshot,
    SyncReport,
    allocate_sync,
    apply_snapshot,
    feed_lock_key,
    save_feed_state,
    write_journal,
)

FORMAT = "keelwatch-knowledge-base"
VERSION = 1
MEMBERS = ("advisories.jsonl", "exploitability.jsonl", "feed_state.json")
COMMENT_PREFIX = f"{FORMAT} manifest-sha256=".encode()
_STATE_FIELDS = ("kind", "url", "fingerprint", "last_attempt", "last_success", "status", "error", "problems")


@dataclass(frozen=True, slots=True)
class ExportSummary:
    path: Path
    feeds: tuple[str, ...]
    advisories: int
    exploitability: int
    size: int  # bytes of the file
    manifest_sha256: str


class _HashingWriter:
    """Counts and hashes what goes into a zip member while it streams there."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.sha256, self.size, self.records = out, hashlib.sha256(), 0, 0

    def write_line(self, doc: Any) -> None:
        data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        self.out.write(data)
        self.sha256.update(data)
        self.size += len(data)
        self.records += 1

    def entry(self) -> dict[str, Any]:
        return {"sha256": self.sha256.hexdigest(), "size": self.size, "records": self.records}


def _exploit_json(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in ("cve", "kev_date_added", "kev_due_date", "kev_ransomware",
                                                  "kev_source", "epss", "epss_percentile", "epss_date",
                                                  "epss_source")}


def export_database(store: Store, path: Path | str, *, now: datetime | None = None) -> ExportSummary:
    """Write every advisory, exploitability row and feed state to one file at ``path``.

    Written to a temporary name beside ``path`` and renamed at the end: a failed export never
    leaves a half-written file under the name an import would read.
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    entries: dict[str, dict[str, Any]] = {}
    try:
        # One snapshot: the three members describe the same moment. SQLite's read transaction is
        # one already; PostgreSQL's default (read committed) sees each statement's own moment.
        with store.session(write=False) as session, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED,
                                                                    compresslevel=6) as archive:
            if store.dialect == "postgresql":
                session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
            keys = session.execute(select(AdvisoryRow.id).order_by(AdvisoryRow.source, AdvisoryRow.advisory_id)
                                   ).scalars().all()
            with archive.open("advisories.jsonl", "w") as member:
                writer = _HashingWriter(member)
                for chunk in kb.chunks(keys):
                    loaded = kb.load_advisories(session, chunk)
                    for key in chunk:
                        writer.write_line(kb.advisory_to_json(loaded[key]))
                entries["advisories.jsonl"] = writer.entry()
            with archive.open("exploitability.jsonl", "w") as member:
                writer = _HashingWriter(member)
                for row in session.execute(select(kb.EXPLOITABILITY).order_by(kb.EXPLOITABILITY.c.cve)):
                    writer.write_line(_exploit_json(row))
                entries["exploitability.jsonl"] = writer.entry()
            states: list[dict[str, Any]] = []
            for s in kb.feed_status(session):
                states.append({"name": s.name, "kind": s.kind, "url": s.url, "fingerprint": s.fingerprint,
                               "last_attempt": kb.iso_time(s.last_attempt), "last_success": kb.iso_time(s.last_success),
                               "status": s.status, "error": s.error, "problems": s.problems})
            state_bytes = json.dumps(states, indent=1, sort_keys=True).encode()
            archive.writestr("feed_state.json", state_bytes)
            entries["feed_state.json"] = {"sha256": hashlib.sha256(state_bytes).hexdigest(), "size": len(state_bytes),
                                          "records": len(states)}
            manifest = json.dumps({
                "format": FORMAT, "version": VERSION, "keelwatch": __version__,
                "created": kb.iso_time(now or datetime.now(UTC)), "feeds": [s["name"] for s in states],
                "files": entries,
            }, indent=1, sort_keys=True).encode()
            archive.writestr("manifest.json", manifest)
            digest = hashlib.sha256(manifest).hexdigest()
            archive.comment = COMMENT_PREFIX + digest.encode()
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return ExportSummary(path=path, feeds=tuple(s["name"] for s in states),
                         advisories=entries["advisories.jsonl"]["records"],
                         exploitability=entries["exploitability.jsonl"]["records"], size=path.stat().st_size,
                         manifest_sha256=digest)


# --- import ------------------------------------------------------------------------------------------


def _refuse(path: Path, problem: str) -> FeedError:
    return FeedError(f"{path}: {problem}", hint="the file is truncated, damaged or not a keelwatch export; "
                     "the database was not changed")


@dataclass(slots=True)
class _Verified:
    manifest: dict[str, Any]
    members: dict[str, bytes]


def verify_export(path: Path | str) -> dict[str, Any]:
    """Check a file's checksums without loading it; its manifest. Raises ``FeedError`` when it fails."""
    return _verify(Path(path)).manifest


def _verify(path: Path) -> _Verified:
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise FeedError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise _refuse(path, f"not a readable zip ({error})") from None
    with archive:
        comment = archive.comment
        if not comment.startswith(COMMENT_PREFIX):
            raise _refuse(path, "no keelwatch checksum in the zip comment")
        expected = comment[len(COMMENT_PREFIX):].decode("ascii", "replace")
        try:
            manifest_bytes = archive.read("manifest.json")
            if hashlib.sha256(manifest_bytes).hexdigest() != expected:
                raise _refuse(path, "the manifest does not match the file's checksum")
            manifest = json.loads(manifest_bytes)
            if manifest.get("format") != FORMAT:
                raise _refuse(path, f"not a {FORMAT} file")
            if manifest.get("version") != VERSION:
                raise FeedError(f"{path}: export format version {manifest.get('version')!r}; this keelwatch "
                                f"reads version {VERSION}", hint="import it with the keelwatch that wrote it")
            files = manifest.get("files", {})
            names = set(archive.namelist()) - {"manifest.json"}
            if set(files) != set(MEMBERS) or names != set(MEMBERS):
                raise _refuse(path, f"members {sorted(names)} are not the ones listed {sorted(files)}")
            members = {}
            for name in MEMBERS:
                data = archive.read(name)
                if len(data) != files[name]["size"] or hashlib.sha256(data).hexdigest() != files[name]["sha256"]:
                    raise _refuse(path, f"{name} does not match its checksum in the manifest")
                members[name] = data
        except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError, TypeError) as error:
            if isinstance(error, KeelwatchError):
                raise
            raise _refuse(path, f"unreadable ({type(error).__name__}: {error})") from None
    return _Verified(manifest, members)


def _lines(data: bytes) -> Iterator[dict[str, Any]]:
    for line in io.BytesIO(data):
        if line.strip():
            yield json.loads(line)


def _snapshots(path: Path, verified: _Verified) -> tuple[dict[str, Snapshot], list[dict[str, Any]]]:
    try:
        states = json.loads(verified.members["feed_state.json"])
        feeds = {s["name"] for s in states}
        snaps: dict[str, Snapshot] = {}

        def snap(source: str) -> Snapshot:
            if source not in feeds:
                raise ValueError(f"feed {source!r} has records but no feed state")
            return snaps.setdefault(source, Snapshot(source=source, complete=True))

        for name in sorted(feeds):
            snap(name)  # a feed exported empty is emptied here too
        for doc in _lines(verified.members["advisories.jsonl"]):
            # Through the model and back: a document that does not decode stops the import here.
            snap(doc["source"]).add_doc(kb.advisory_to_json(kb.advisory_from_json(doc)))
        for row in _lines(verified.members["exploitability.jsonl"]):
            if row["kev_source"] is not None:
                snap(row["kev_source"]).exploits[row["cve"]] = Exploitability(
                    cve=row["cve"], kev_date_added=row["kev_date_added"], kev_due_date=row["kev_due_date"],
                    kev_ransomware=row["kev_ransomware"])
            if row["epss_source"] is not None:
                part = snap(row["epss_source"])
                known = part.exploits.get(row["cve"]) or Exploitability(cve=row["cve"])
                part.exploits[row["cve"]] = Exploitability(
                    cve=row["cve"], kev_date_added=known.kev_date_added, kev_due_date=known.kev_due_date,
                    kev_ransomware=known.kev_ransomware, epss=row["epss"], epss_percentile=row["epss_percentile"],
                    epss_date=row["epss_date"])
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise _refuse(path, f"a record cannot be read ({type(error).__name__}: {error})") from None
    for s in snaps.values():
        if s.problems:  # an id twice in one feed: the file was not written by export_database
            raise _refuse(path, f"feed {s.source}: {s.problems[0].message}")
    return snaps, states


def import_database(store: Store, path: Path | str, *, now: datetime | None = None) -> SyncReport:
    """Load an export as one sync of its own; the store is unchanged unless all of it loads."""
    path = Path(path)
    t0 = time.monotonic()
    started = now or datetime.now(UTC)
    verified = _verify(path)
    snaps, states = _snapshots(path, verified)
    totals: dict[str, Any] = dict.fromkeys(("added", "changed", "withdrawn", "deleted", "unchanged", "exploitability"),
                                           0)
    with store.session() as session:
        if store.dialect == "postgresql":
            for name in sorted(snaps):  # sorted: two importers never wait on each other in a cycle
                if not session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                       {"key": feed_lock_key(name)}).scalar():
                    raise StoreError(f"feed {name} is being synced by another keelwatch process",
                                     hint="import again when it is done", retryable=True)
        journal: list[dict[str, Any]] = []
        for name in sorted(snaps):
            changes = apply_snapshot(session, snaps[name], now=started)
            journal.extend(changes.journal)
            for key in totals:
                totals[key] += getattr(changes, key)
        finished = now or datetime.now(UTC)
        sync_id = allocate_sync(session, feed=path.name, kind="import", url=str(path.resolve()), started=started,
                                finished=finished, status="ok", error="", fingerprint=verified.manifest.get("created"),
                                problems=0, **totals)
        write_journal(session, sync_id, journal, [])
        for state in states:
            values = {k: state[k] for k in _STATE_FIELDS}
            for moment in ("last_attempt", "last_success"):
                values[moment] = datetime.fromisoformat(values[moment]) if values[moment] else None
            total, withdrawn, exploits = kb.count_feed(session, state["name"])
            save_feed_state(session, state["name"], **values, last_sync=sync_id, advisories=total,
                            withdrawn=withdrawn, exploitability=exploits)
    return SyncReport(feed=path.name, kind="import", status="ok", sync_id=sync_id, started=started, finished=finished,
                      duration=time.monotonic() - t0, problems=0, **totals)


__all__ = ["ExportSummary", "export_database", "import_database", "verify_export"]
