"""The knowledge base in the database: advisories, exploitability, feed state and the change journal.

Functions take a ``Session`` so they join a caller's transaction (the sync engine writes a whole
feed in one); ``Store`` wraps the queries in one transaction each.

One codec, ``advisory_to_json`` / ``advisory_from_json``, serves three purposes: the content hash a
sync compares, the rows written, and the export file's JSON lines. So an advisory that goes
through an export and an import hashes the same, and a re-import of unchanged data journals nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.orm import Session

from keelwatch.model import Advisory, Affected, AffectedRange, Exploitability, Severity
from keelwatch.names import ecosystem_base, normalise_name
from keelwatch.store.tables import (
    AdvisoryRow,
    AffectedRow,
    ExploitabilityRow,
    FeedStateRow,
    JournalRow,
    SyncRow,
)

# Core tables for bulk statements: executemany without the ORM's per-row bookkeeping.
ADVISORIES: Table = AdvisoryRow.__table__  # type: ignore[assignment]
AFFECTED: Table = AffectedRow.__table__  # type: ignore[assignment]
EXPLOITABILITY: Table = ExploitabilityRow.__table__  # type: ignore[assignment]
JOURNAL: Table = JournalRow.__table__  # type: ignore[assignment]

# Well under SQLite's bound-parameter limit (32,766) and PostgreSQL's (65,535) per statement.
IN_CHUNK = 1000

# The matcher's index key: (ecosystem, normalise_name), from keelwatch.names, shared with the matcher.


def advisory_key(source: str, advisory_id: str) -> int:
    """A signed 64-bit key for (feed, advisory id): computed by any writer, no lookup needed."""
    digest = hashlib.blake2b(f"{source}\x00{advisory_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# --- the codec ----------------------------------------------------------------------------------------


def iso_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def _severity_json(severity: Iterable[Severity]) -> list[dict[str, Any]]:
    return [{"type": s.type, "score": s.score, "base_score": s.base_score, "source": s.source} for s in severity]


def _severity_model(items: Iterable[dict[str, Any]]) -> tuple[Severity, ...]:
    return tuple(Severity(type=s["type"], score=s["score"], base_score=s.get("base_score"),
                          source=s.get("source", "")) for s in items)


def _ranges_json(ranges: Iterable[AffectedRange]) -> list[dict[str, Any]]:
    out = []
    for r in ranges:
        item: dict[str, Any] = {"type": r.type, "events": [list(e) for e in r.events]}
        if r.repo:
            item["repo"] = r.repo
        out.append(item)
    return out


def _ranges_model(items: Iterable[dict[str, Any]]) -> tuple[AffectedRange, ...]:
    return tuple(AffectedRange(type=r["type"], events=tuple((k, v) for k, v in r["events"]), repo=r.get("repo", ""))
                 for r in items)


def affected_to_json(a: Affected) -> dict[str, Any]:
    return {
        "ecosystem": a.ecosystem, "name": a.name, "ranges": _ranges_json(a.ranges), "versions": list(a.versions),
        "purl": a.purl, "severity": _severity_json(a.severity), "ecosystem_specific": a.ecosystem_specific,
        "database_specific": a.database_specific,
    }


def affected_from_json(doc: dict[str, Any]) -> Affected:
    return Affected(
        ecosystem=doc["ecosystem"], name=doc["name"], ranges=_ranges_model(doc.get("ranges", ())),
        versions=tuple(doc.get("versions", ())), purl=doc.get("purl", ""),
        severity=_severity_model(doc.get("severity", ())), ecosystem_specific=doc.get("ecosystem_specific", ""),
        database_specific=doc.get("database_specific", ""),
    )


def advisory_to_json(advisory: Advisory) -> dict[str, Any]:
    """The advisory as plain JSON values: what is hashed, exported, and journaled from."""
    return {
        "id": advisory.id, "source": advisory.source, "modified": iso_time(advisory.modified),
        "published": iso_time(advisory.published), "withdrawn": iso_time(advisory.withdrawn),
        "aliases": list(advisory.aliases), "related": list(advisory.related), "upstream": list(advisory.upstream),
        "summary": advisory.summary, "details": advisory.details, "severity": _severity_json(advisory.severity),
        "affected": [affected_to_json(a) for a in advisory.affected], "references": list(advisory.references),
        "database_specific": advisory.database_specific,
    }


def advisory_from_json(doc: dict[str, Any]) -> Advisory:
    return Advisory(
        id=doc["id"], source=doc["source"], modified=_parse_time(doc.get("modified")),
        published=_parse_time(doc.get("published")), withdrawn=_parse_time(doc.get("withdrawn")),
        aliases=tuple(doc.get("aliases", ())), related=tuple(doc.get("related", ())),
        upstream=tuple(doc.get("upstream", ())), summary=doc.get("summary", ""), details=doc.get("details", ""),
        severity=_severity_model(doc.get("severity", ())),
        affected=tuple(affected_from_json(a) for a in doc.get("affected", ())),
        references=tuple(doc.get("references", ())), database_specific=doc.get("database_specific", ""),
    )


def content_hash(doc: dict[str, Any]) -> str:
    """sha256 of an ``advisory_to_json`` document, without its source: what a sync compares."""
    body = {k: v for k, v in doc.items() if k != "source"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                          .encode()).hexdigest()


def advisory_rows(doc: dict[str, Any], digest: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``advisories`` row and the ``affected`` rows of one ``advisory_to_json`` document."""
    key = advisory_key(doc["source"], doc["id"])
    row = {
        "id": key, "advisory_id": doc["id"], "source": doc["source"], "modified": _parse_time(doc["modified"]),
        "published": _parse_time(doc["published"]), "withdrawn": _parse_time(doc["withdrawn"]),
        "aliases": doc["aliases"], "related": doc["related"], "upstream": doc["upstream"],
        "summary": doc["summary"], "details": doc["details"], "severity": doc["severity"],
        "references": doc["references"], "database_specific": doc["database_specific"], "content_hash": digest,
    }
    affected = [{
        "advisory": key, "position": i, "ecosystem": a["ecosystem"], "ecosystem_base": ecosystem_base(a["ecosystem"]),
        "name": a["name"], "match_name": normalise_name(a["ecosystem"], a["name"]), "ranges": a["ranges"],
        "versions": a["versions"], "purl": a["purl"], "severity": a["severity"],
        "ecosystem_specific": a["ecosystem_specific"], "database_specific": a["database_specific"],
    } for i, a in enumerate(doc["affected"])]
    return row, affected


def ranges_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """What the journal keeps of an advisory's reach: each package's ranges, and how many versions it lists."""
    return {"affected": [{"ecosystem": a["ecosystem"], "name": a["name"],
                          "ranges": [{"type": r["type"], "events": r["events"]} for r in a["ranges"]],
                          "versions": len(a["versions"])} for a in doc["affected"]]}


def affected_packages(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """(ecosystem, match name) of every package the advisory names: the index keys to re-match."""
    return {(a["ecosystem"], normalise_name(a["ecosystem"], a["name"])) for a in doc["affected"]}


# Top-level fields a journal entry names by themselves; "affected" is split into finer names below.
_PLAIN_FIELDS = ("modified", "published", "withdrawn", "aliases", "related", "upstream", "summary", "details",
                 "severity", "references", "database_specific")


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Which fields differ between two ``advisory_to_json`` documents, for the journal.

    ``affected`` is reported as what the matcher cares about: ``packages`` (a package added or
    removed), ``ranges``, ``versions``, ``severity`` (a package's own severity counts as severity),
    and ``affected`` for the rest (purl, ecosystem_specific, database_specific).
    """
    fields = {f for f in _PLAIN_FIELDS if old[f] != new[f]}
    if old["affected"] != new["affected"]:
        def by_package(doc: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
            out: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for a in doc["affected"]:
                out.setdefault((a["ecosystem"], a["name"]), []).append(a)
            return out

        before, after = by_package(old), by_package(new)
        if before.keys() != after.keys():
            fields.add("packages")
        for package in before.keys() & after.keys():
            for part in ("ranges", "versions", "severity"):
                if [a[part] for a in before[package]] != [a[part] for a in after[package]]:
                    fields.add(part)
            for part in ("purl", "ecosystem_specific", "database_specific"):
                if [a[part] for a in before[package]] != [a[part] for a in after[package]]:
                    fields.add("affected")
        if not fields & {"packages", "ranges", "versions", "severity", "affected"}:
            fields.add("affected")  # same content, another order
    return sorted(fields)


# --- values the queries return ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One change of the knowledge base, as the re-matcher reads it.

    ``change`` is added, changed, withdrawn, deleted (a complete snapshot no longer has it) or
    exploitability (``advisory_id`` is then a CVE and ``fields`` says kev and/or epss).
    ``packages`` are the (ecosystem, match name) pairs the advisory named before or after: the
    images to re-match are those carrying one of them. ``before``/``after`` hold the ranges summary
    (``ranges_summary``) or the KEV/EPSS values; None where there is no such side.
    """

    id: int
    sync_id: int
    time: datetime  # when the sync committed
    source: str
    advisory_id: str
    change: str
    fields: tuple[str, ...]
    packages: tuple[tuple[str, str], ...]
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """A feed's freshness and contents as ``keelwatch db status`` shows them."""

    name: str
    kind: str
    url: str
    status: str  # ok or failed (the last attempt)
    last_attempt: datetime | None
    last_success: datetime | None
    error: str
    fingerprint: str | None
    last_sync: int | None
    advisories: int
    withdrawn: int
    exploitability: int
    problems: int

    def age(self, now: datetime | None = None) -> timedelta | None:
        """Time since the last success; None when the feed never synced."""
        if self.last_success is None:
            return None
        return (now or datetime.now(UTC)) - self.last_success


# --- reading --------------------------------------------------------------------------------------------


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


_ADVISORY_COLUMNS = (AdvisoryRow.id, AdvisoryRow.advisory_id, AdvisoryRow.source, AdvisoryRow.modified,
                     AdvisoryRow.published, AdvisoryRow.withdrawn, AdvisoryRow.aliases, AdvisoryRow.related,
                     AdvisoryRow.upstream, AdvisoryRow.summary, AdvisoryRow.details, AdvisoryRow.severity,
                     AdvisoryRow.references, AdvisoryRow.database_specific)
_AFFECTED_COLUMNS = (AffectedRow.advisory, AffectedRow.ecosystem, AffectedRow.name, AffectedRow.ranges,
                     AffectedRow.versions, AffectedRow.purl, AffectedRow.severity, AffectedRow.ecosystem_specific,
                     AffectedRow.database_specific)


def load_advisories(session: Session, keys: Iterable[int]) -> dict[int, Advisory]:
    """Advisories by key, with their affected packages in published order (two queries a chunk)."""
    wanted = sorted(set(keys))
    out: dict[int, Advisory] = {}
    for chunk in chunks(wanted):
        affected: dict[int, list[Affected]] = {}
        for a in session.execute(select(*_AFFECTED_COLUMNS).where(AffectedRow.advisory.in_(chunk))
                                 .order_by(AffectedRow.advisory, AffectedRow.position)):
            affected.setdefault(a.advisory, []).append(Affected(
                ecosystem=a.ecosystem, name=a.name, ranges=_ranges_model(a.ranges), versions=tuple(a.versions),
                purl=a.purl, severity=_severity_model(a.severity), ecosystem_specific=a.ecosystem_specific,
                database_specific=a.database_specific))
        for r in session.execute(select(*_ADVISORY_COLUMNS).where(AdvisoryRow.id.in_(chunk))):
            out[r.id] = Advisory(
                id=r.advisory_id, source=r.source, modified=r.modified, published=r.published, withdrawn=r.withdrawn,
                aliases=tuple(r.aliases), related=tuple(r.related), upstream=tuple(r.upstream), summary=r.summary,
                details=r.details, severity=_severity_model(r.severity), affected=tuple(affected.get(r.id, ())),
                references=tuple(r.references), database_specific=r.database_specific)
    return out


def advisories_for(session: Session, ecosystem: str, names: Iterable[str], *,
                   include_withdrawn: bool = False) -> list[Advisory]:
    """Advisories naming any of ``names`` in ``ecosystem``: the matcher's index lookup.

    ``Debian:12`` (with a release) matches that release exactly; ``Debian`` (a bare base) matches
    every release of it. Names are normalised here (``normalise_name``), so callers pass them as
    cataloged. Withdrawn advisories never match, so they are left out unless asked for. Sorted by
    (source, id).
    """
    match_names = sorted({normalise_name(ecosystem, n) for n in names})
    column = AffectedRow.ecosystem if ":" in ecosystem else AffectedRow.ecosystem_base
    keys: set[int] = set()
    for chunk in chunks(match_names):
        keys.update(session.execute(select(AffectedRow.advisory).distinct()
                                    .where(column == ecosystem, AffectedRow.match_name.in_(chunk))).scalars())
    found = load_advisories(session, keys).values()
    return sorted((a for a in found if include_withdrawn or a.withdrawn is None), key=lambda a: (a.source, a.id))


def cve_records(session: Session, cves: Iterable[str]) -> dict[str, list[Advisory]]:
    """NVD's records of these CVEs (feeds of kind ``nvd``), by CVE: the CVSS of last resort."""
    wanted = sorted(set(cves))
    nvd_feeds = list(session.execute(select(FeedStateRow.name).where(FeedStateRow.kind == "nvd")).scalars())
    if not wanted or not nvd_feeds:
        return {}
    keys: list[int] = []
    for chunk in chunks(wanted):
        keys.extend(session.execute(select(AdvisoryRow.id).where(AdvisoryRow.advisory_id.in_(chunk),
                                                                 AdvisoryRow.source.in_(nvd_feeds))).scalars())
    out: dict[str, list[Advisory]] = {}
    for advisory in sorted(load_advisories(session, keys).values(), key=lambda a: (a.source, a.id)):
        out.setdefault(advisory.id, []).append(advisory)
    return out


def ecosystems(session: Session) -> set[str]:
    """Every ecosystem some stored advisory names (withdrawn or not): what the store has data for."""
    return set(session.execute(select(AffectedRow.ecosystem).distinct()).scalars())


def get_advisory(session: Session, advisory_id: str, source: str | None = None) -> Advisory | None:
    """One advisory by id; from ``source`` when given, else the first feed (by name) that has it."""
    query = select(AdvisoryRow.id).where(AdvisoryRow.advisory_id == advisory_id)
    if source is not None:
        query = query.where(AdvisoryRow.source == source)
    key = session.execute(query.order_by(AdvisoryRow.source).limit(1)).scalar()
    return None if key is None else load_advisories(session, [key]).get(key)


def exploitability_row_to_model(r: Any) -> Exploitability:
    return Exploitability(cve=r.cve, kev_date_added=r.kev_date_added, kev_due_date=r.kev_due_date,
                          kev_ransomware=r.kev_ransomware, epss=r.epss, epss_percentile=r.epss_percentile,
                          epss_date=r.epss_date)


def exploitability(session: Session, cves: Iterable[str]) -> dict[str, Exploitability]:
    """KEV and EPSS facts for the CVEs that have any; CVEs without are absent from the result."""
    wanted = sorted(set(cves))
    out: dict[str, Exploitability] = {}
    for chunk in chunks(wanted):
        for r in session.execute(select(ExploitabilityRow).where(ExploitabilityRow.cve.in_(chunk))).scalars():
            out[r.cve] = exploitability_row_to_model(r)
    return out


def changes_since(session: Session, since: int | datetime | None) -> list[JournalEntry]:
    """Journal entries of syncs after sync ``since`` (an id), or that finished at or after a time.

    Sync ids grow in commit order (the engine allocates them under a lock held to the commit), so a
    reader that remembers the last id it processed never misses a change committed later.
    """
    query = (select(JournalRow, SyncRow.finished).join(SyncRow, SyncRow.id == JournalRow.sync)
             .order_by(JournalRow.sync, JournalRow.id))
    if isinstance(since, datetime):
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        query = query.where(SyncRow.finished >= since)
    elif since is not None:
        query = query.where(JournalRow.sync > since)
    return [JournalEntry(
        id=j.id, sync_id=j.sync, time=finished, source=j.source, advisory_id=j.advisory_id, change=j.change,
        fields=tuple(j.fields), packages=tuple((e, n) for e, n in j.packages), before=j.before, after=j.after,
    ) for j, finished in session.execute(query)]


def feed_status(session: Session) -> list[FeedStatus]:
    rows = session.execute(select(FeedStateRow).order_by(FeedStateRow.name)).scalars()
    return [FeedStatus(name=r.name, kind=r.kind, url=r.url, status=r.status, last_attempt=r.last_attempt,
                       last_success=r.last_success, error=r.error, fingerprint=r.fingerprint, last_sync=r.last_sync,
                       advisories=r.advisories, withdrawn=r.withdrawn, exploitability=r.exploitability,
                       problems=r.problems) for r in rows]


def latest_sync_id(session: Session) -> int | None:
    return session.execute(select(func.max(SyncRow.id))).scalar()


# --- writing (the sync engine's building blocks) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredAdvisory:
    key: int
    content_hash: str
    withdrawn: bool


def stored_advisories(session: Session, source: str) -> dict[str, StoredAdvisory]:
    """What a feed holds now, by advisory id: enough to tell added, changed and unchanged apart."""
    rows = session.execute(select(AdvisoryRow.advisory_id, AdvisoryRow.id, AdvisoryRow.content_hash,
                                  AdvisoryRow.withdrawn.is_not(None)).where(AdvisoryRow.source == source))
    return {advisory_id: StoredAdvisory(key, digest, bool(withdrawn)) for advisory_id, key, digest, withdrawn in rows}


def delete_advisories(session: Session, keys: Sequence[int]) -> None:
    """Remove advisories and their affected rows (deleted explicitly: no reliance on cascades)."""
    for chunk in chunks(sorted(keys)):
        session.execute(delete(AffectedRow).where(AffectedRow.advisory.in_(chunk)))
        session.execute(delete(AdvisoryRow).where(AdvisoryRow.id.in_(chunk)))


def insert_advisories(session: Session, rows: Sequence[dict[str, Any]], affected: Sequence[dict[str, Any]]) -> None:
    """Bulk insert (one executemany per table) of rows made by ``advisory_rows``."""
    if rows:
        session.execute(insert(ADVISORIES), list(rows))
    if affected:
        session.execute(insert(AFFECTED), list(affected))


def count_feed(session: Session, source: str) -> tuple[int, int, int]:
    """(advisories, withdrawn advisories, exploitability rows) a feed holds."""
    total, withdrawn = session.execute(
        select(func.count(), func.count(AdvisoryRow.withdrawn)).where(AdvisoryRow.source == source)).one()
    exploits = session.execute(select(func.count()).select_from(ExploitabilityRow).where(
        (ExploitabilityRow.kev_source == source) | (ExploitabilityRow.epss_source == source))).scalar()
    return int(total), int(withdrawn), int(exploits or 0)

