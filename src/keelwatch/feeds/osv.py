"""OSV feeds (kind ``osv``): osv.dev's per-ecosystem ``all.zip``, a directory of JSON/YAML records,
or the incremental ``modified_id.csv`` path.

Every OSV field keelwatch uses becomes a ``model.Advisory`` field: ``affected[].package``
(ecosystem, name, purl), ``ranges`` (``ECOSYSTEM``, ``SEMVER`` and ``GIT``; GIT ranges are kept with
their repository but name commits, which cannot be matched against installed versions),
``versions``, ``ecosystem_specific``/``database_specific`` (kept as JSON text, e.g. Go's
``imports``), ``severity`` (CVSS vectors with their base scores, see ``feeds/cvss.py``),
``aliases``, ``related``, ``upstream``, ``withdrawn``, ``published``, ``modified``, ``summary``,
``details`` and the reference URLs. ``credits`` and the references' types are not kept.

Bad input, as the sync needs it: a zip that cannot be read (truncated, bad CRC) raises
``FeedError`` and aborts the feed's sync; one bad record (not JSON, not an OSV object, an
unknown ecosystem, a range without ``introduced``, an unreadable timestamp) becomes a ``Problem``
and the other records go on. A withdrawn record is an ``Advisory`` with ``withdrawn`` set, never
a match.

URL forms (see ``docs/feeds.md``):

- ``…/all.zip`` (``https://``, ``http://``, ``file://`` or a path): the whole database, a complete
  snapshot; conditional requests make an unchanged zip cost one request.
- a directory of ``*.json``/``*.yaml`` records (a clone of pypa/advisory-database, say): packed
  into one zip spool; fingerprint = digest of names and contents.
- ``…/<ECOSYSTEM>/modified_id.csv``: incremental. The CSV lists ``<modified>,<id>`` newest first;
  the fingerprint is the newest ``modified`` seen. With no fingerprint the first sync downloads
  ``all.zip`` beside the CSV (complete); later syncs fetch only the ``<id>.json`` records modified
  since (``Spool.complete = False``: records absent from a delta are not deleted). More than
  ``max_delta`` changed records (default 5000) fall back to ``all.zip``.
"""

from __future__ import annotations

import csv
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from keelwatch.errors import FeedError
from keelwatch.feeds import fetch as fetching
from keelwatch.feeds.base import Problem, Record, Spool, Unchanged
from keelwatch.feeds.cvss import base_score
from keelwatch.feeds.decode import (
    EMPTY_ZIP_MAGIC,
    JSON_ERRORS,
    ZIP_MAGIC,
    dumps,
    load_yaml,
    loads,
    parse_time,
    sniff,
)
from keelwatch.model import Advisory, Affected, AffectedRange, Severity
from keelwatch.versions import ECOSYSTEMS as VERSION_ECOSYSTEMS

# The OSV schema's defined ecosystems (https://ossf.github.io/osv-schema/#defined-ecosystems), plus
# the ones keelwatch.versions orders that OSV does not list (RPM distros without OSV feeds). An
# ecosystem outside both is a record keelwatch cannot place: a Problem, not a silent skip.
OSV_ECOSYSTEMS = frozenset({
    "AlmaLinux", "Alpaquita", "Alpine", "Android", "Azure Linux", "BellSoft Hardened Containers",
    "Bioconductor", "Bitnami", "Chainguard", "ConanCenter", "CRAN", "crates.io", "Debian", "Echo",
    "GHC", "GIT", "GitHub Actions", "Go", "Hackage", "Hex", "Julia", "Kubernetes", "Linux", "Mageia",
    "Maven", "MinimOS", "npm", "NuGet", "openEuler", "openSUSE", "OSS-Fuzz", "Packagist", "Photon OS",
    "Pub", "PyPI", "Red Hat", "Rocky Linux", "RubyGems", "SUSE", "SwiftURL", "Ubuntu", "VSCode",
    "Wolfi",
}) | frozenset(name for name, _ in VERSION_ECOSYSTEMS)

RANGE_TYPES = ("ECOSYSTEM", "SEMVER", "GIT")
EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
RECORD_SUFFIXES = (".json", ".yaml", ".yml")
# One OSV record is a few KB (the largest real ones, Linux kernel records, a few hundred KB); a
# member claiming more is a zip bomb or not a record.
MAX_RECORD_BYTES = 64 << 20
DEFAULT_MAX_DELTA = 5000


class RecordError(ValueError):
    """One record is not usable OSV; becomes a ``Problem``."""


def known_ecosystem(ecosystem: str) -> bool:
    """``Debian:12`` and ``Ubuntu:Pro:22.04:LTS`` count by the part before the first colon."""
    return ecosystem.split(":", 1)[0] in OSV_ECOSYSTEMS


# --- one record ------------------------------------------------------------------------------------


def _str(doc: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = doc.get(key)
    if value is None:
        if required:
            raise RecordError(f"missing {key!r}")
        return ""
    if not isinstance(value, str):
        raise RecordError(f"{key!r} is not a string: {value!r:.80}")
    return value


def _strs(doc: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = doc.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(f"{key!r} is not a list of strings")
    return tuple(value)


def _time(doc: Mapping[str, Any], key: str, *, required: bool = False) -> datetime | None:
    value = doc.get(key)
    if value is None and required:
        raise RecordError(f"missing {key!r}")
    try:
        return parse_time(value)
    except ValueError:
        raise RecordError(f"{key!r} is not an RFC 3339 timestamp: {value!r:.80}") from None


def _specific(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, dict):
        raise RecordError(f"{key!r} is not an object")
    return dumps(value)


def _severities(doc: Mapping[str, Any], source: str) -> tuple[Severity, ...]:
    value = doc.get("severity")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RecordError("'severity' is not a list")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise RecordError("a severity is not an object")
        kind = _str(item, "type", required=True)
        score = _str(item, "score", required=True)
        # An unreadable vector keeps the severity with an unknown number (base_score None).
        out.append(Severity(type=kind, score=score, base_score=base_score(kind, score), source=source))
    return tuple(out)


def _range(item: Any) -> AffectedRange:
    if not isinstance(item, dict):
        raise RecordError("a range is not an object")
    kind = _str(item, "type", required=True)
    if kind not in RANGE_TYPES:
        raise RecordError(f"unknown range type {kind!r} (expected one of {', '.join(RANGE_TYPES)})")
    events_in = item.get("events")
    if not isinstance(events_in, list) or not events_in:
        raise RecordError(f"{kind} range has no events")
    events = []
    for event in events_in:
        if not isinstance(event, dict) or len(event) != 1:
            raise RecordError(f"not an OSV event: {event!r:.80}")
        ((name, value),) = event.items()
        if name not in EVENT_KINDS or not isinstance(value, str):
            raise RecordError(f"not an OSV event: {event!r:.80}")
        events.append((name, value))
    # The schema requires one; without it no version is ever inside, which would read as "safe".
    if not any(name == "introduced" for name, _ in events):
        raise RecordError(f"{kind} range has no 'introduced' event")
    repo = _str(item, "repo")
    if kind == "GIT" and not repo:
        raise RecordError("GIT range has no 'repo'")
    return AffectedRange(type=kind, events=tuple(events), repo=repo)


def _affected(item: Any, source: str) -> Affected:
    if not isinstance(item, dict):
        raise RecordError("an 'affected' entry is not an object")
    ranges_in = item.get("ranges") or []
    if not isinstance(ranges_in, list):
        raise RecordError("'ranges' is not a list")
    ranges = tuple(_range(r) for r in ranges_in)
    package = item.get("package")
    if package is None:
        # The schema lets an entry without a package name only commits (GIT ranges): keep it under
        # the repository, matchable by nothing that has a version.
        git = [r for r in ranges if r.type == "GIT"]
        if not git or len(git) != len(ranges):
            raise RecordError("an 'affected' entry has no 'package'")
        ecosystem, name, purl = "GIT", git[0].repo, ""
    else:
        if not isinstance(package, dict):
            raise RecordError("'package' is not an object")
        ecosystem = _str(package, "ecosystem", required=True)
        name = _str(package, "name", required=True)
        purl = _str(package, "purl")
        if not known_ecosystem(ecosystem):
            raise RecordError(f"unknown ecosystem {ecosystem!r}")
    return Affected(
        ecosystem=ecosystem,
        name=name,
        ranges=ranges,
        versions=_strs(item, "versions"),
        purl=purl,
        severity=_severities(item, source),
        ecosystem_specific=_specific(item, "ecosystem_specific"),
        database_specific=_specific(item, "database_specific"),
    )


def _references(doc: Mapping[str, Any]) -> tuple[str, ...]:
    value = doc.get("references")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RecordError("'references' is not a list")
    urls = []
    for ref in value:
        if not isinstance(ref, dict) or not isinstance(ref.get("url"), str):
            raise RecordError("a reference has no 'url'")
        urls.append(ref["url"])
    return tuple(urls)


def advisory_from_osv(doc: Any, *, source: str) -> Advisory:
    """One decoded OSV record → ``Advisory``; raises ``RecordError`` when it is not usable OSV."""
    if not isinstance(doc, dict):
        raise RecordError(f"not an OSV record (a JSON {type(doc).__name__}, expected an object)")
    advisory_id = _str(doc, "id", required=True)
    if not advisory_id.strip():
        raise RecordError("empty 'id'")
    affected_in = doc.get("affected") or []
    if not isinstance(affected_in, list):
        raise RecordError("'affected' is not a list")
    return Advisory(
        id=advisory_id,
        source=source,
        modified=_time(doc, "modified", required=True),
        published=_time(doc, "published"),
        withdrawn=_time(doc, "withdrawn"),
        aliases=_strs(doc, "aliases"),
        related=_strs(doc, "related"),
        upstream=_strs(doc, "upstream"),
        summary=_str(doc, "summary"),
        details=_str(doc, "details"),
        severity=_severities(doc, source),
        affected=tuple(_affected(a, source) for a in affected_in),
        references=_references(doc),
        database_specific=_specific(doc, "database_specific"),
    )


def decode_record(data: bytes, name: str) -> Any:
    """The bytes of one record file → Python, as JSON or (by name) YAML; raises ``RecordError``."""
    if name.endswith((".yaml", ".yml")):
        try:
            return load_yaml(data)
        except yaml.YAMLError as exc:
            raise RecordError(f"not YAML: {str(exc).splitlines()[0]}") from None
    try:
        return loads(data)
    except JSON_ERRORS as exc:
        raise RecordError(f"not JSON: {exc}") from None


def _records_of(data: bytes, where: str, source: str) -> Iterator[Record]:
    """Advisories of one file: a record, a list of records, or an API answer ``{"vulns": [...]}``."""
    try:
        doc = decode_record(data, where)
    except RecordError as exc:
        yield Problem(where, str(exc))
        return
    if isinstance(doc, dict) and "id" not in doc and isinstance(doc.get("vulns"), list):
        doc = doc["vulns"]
    docs = doc if isinstance(doc, list) else [doc]
    for i, item in enumerate(docs):
        label = where if len(docs) == 1 else f"{where}[{i}]"
        try:
            yield advisory_from_osv(item, source=source)
        except RecordError as exc:
            record_id = item.get("id") if isinstance(item, dict) else None
            yield Problem(f"{label} ({record_id})" if isinstance(record_id, str) else label, str(exc))


# --- files, zips, directories -----------------------------------------------------------------------


def _is_record_name(name: str) -> bool:
    path = PurePosixPath(name)
    return (path.suffix in RECORD_SUFFIXES and not name.endswith("/")
            and not any(part.startswith(".") or part == "__MACOSX" for part in path.parts))


def parse_zip(path: Path, *, source: str) -> Iterator[Record]:
    """Records of an ``all.zip``-shaped archive (one record per member, any directory depth)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FeedError(f"{path.name}: not a readable zip ({exc})",
                        hint="the download is truncated or corrupt; the previous data is kept") from None
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not _is_record_name(info.filename):
                continue
            where = f"{path.name}:{info.filename}"
            if info.file_size > MAX_RECORD_BYTES:
                yield Problem(where, f"member of {info.file_size} bytes is too large for one OSV record")
                continue
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                # A damaged member means a damaged download: stop the whole sync, keep the old data.
                raise FeedError(f"{where}: corrupt zip member ({exc})",
                                hint="the download is truncated or corrupt; the previous data is kept") from None
            yield from _records_of(data, where, source)


def parse_path(path: Path, *, source: str) -> Iterator[Record]:
    """Records of a zip, a directory of record files, or one JSON/YAML file (found by content/name)."""
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            relative = file.relative_to(path).as_posix()
            if _is_record_name(relative):
                yield from _records_of(file.read_bytes(), relative, source)
        return
    try:
        head = sniff(path)
    except OSError as exc:
        raise FeedError(f"cannot read {path}: {exc}") from None
    if head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)) or path.suffix == ".zip":
        yield from parse_zip(path, source=source)
        return
    yield from _records_of(path.read_bytes(), path.name, source)


# --- fetching ---------------------------------------------------------------------------------------


def _modified_rows(path: Path, where: str) -> list[tuple[datetime, str, str]]:
    """``modified_id.csv`` rows as (modified, raw timestamp, id), in file order (newest first)."""
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), 1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != 2:
                raise FeedError(f"{where}:{lineno}: expected '<modified>,<id>', got {','.join(row)[:80]!r}")
            raw, record_id = row[0].strip(), row[1].strip()
            try:
                moment = parse_time(raw)
            except ValueError:
                moment = None
            if moment is None or not record_id:
                raise FeedError(f"{where}:{lineno}: expected '<modified>,<id>', got {','.join(row)[:80]!r}")
            rows.append((moment, raw, record_id))
    return rows


class OsvFeed:
    """OSV records from a zip, a directory, one file, or osv.dev's ``modified_id.csv`` delta."""

    kind = "osv"
    OPTIONS = ("max_delta",) + fetching.FetchOptions.KEYS

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        options = dict(options or {})
        fetching.check_options(self.kind, options, self.OPTIONS)
        self.fetch_options = fetching.FetchOptions.from_mapping(options, where=self.kind)
        self.max_delta = fetching.int_option(options, "max_delta", DEFAULT_MAX_DELTA, where=self.kind)

    def fetch(self, url: str, fingerprint: str | None, workdir: Path) -> Unchanged | Spool:
        if url.rstrip("/").endswith("modified_id.csv"):
            return self._fetch_incremental(url, fingerprint, workdir)
        local = fetching.local_path(url)
        if local is not None and local.is_dir():
            return fetching.pack_directory(local, fingerprint, workdir, name="osv-records.zip",
                                           accept=_is_record_name)
        return fetching.fetch_file(url, fingerprint, workdir, self.fetch_options)

    def _fetch_incremental(self, url: str, fingerprint: str | None, workdir: Path) -> Unchanged | Spool:
        base = url.rstrip("/").rsplit("/", 1)[0]
        listing = fetching.fetch_file(url, None, workdir, self.fetch_options)
        assert isinstance(listing, Spool)  # no fingerprint sent: never Unchanged
        try:
            rows = _modified_rows(listing.path, "modified_id.csv")
        finally:
            listing.path.unlink(missing_ok=True)
        if not rows:
            raise FeedError(f"{url}: modified_id.csv lists no records", hint="is this the right URL?")
        newest_raw = max(rows)[1]
        since = _fingerprint_time(fingerprint)
        changed = [(moment, record_id) for moment, _, record_id in rows if since is None or moment > since]
        if since is not None and not changed:
            return Unchanged(fingerprint or newest_raw)
        if since is None or len(changed) > self.max_delta:
            # First sync (or too far behind): the whole database is one download, not N requests.
            spool = fetching.fetch_file(f"{base}/all.zip", None, workdir, self.fetch_options)
            assert isinstance(spool, Spool)
            spool.fingerprint = newest_raw
            spool.extra["mode"] = "full"
            return spool
        # The root listing of osv.dev names records as "<ECOSYSTEM>/<id>"; a per-ecosystem one as "<id>".
        members = {f"{record_id}.json": f"{base}/{record_id}.json" for _, record_id in changed}
        spool = fetching.fetch_bundle(members, workdir, self.fetch_options, name="osv-delta.zip")
        spool.fingerprint = newest_raw
        spool.complete = False
        spool.extra["mode"] = "delta"
        spool.extra["records"] = str(len(members))
        return spool

    def parse(self, spool: Spool, *, source: str) -> Iterator[Record]:
        return parse_path(spool.path, source=source)


def _fingerprint_time(fingerprint: str | None) -> datetime | None:
    """The stored fingerprint of an incremental feed is the newest ``modified`` it has seen."""
    if not fingerprint:
        return None
    try:
        return parse_time(fingerprint)
    except ValueError:
        return None  # a fingerprint from another URL form (an ETag): start over with all.zip


__all__ = ["OSV_ECOSYSTEMS", "OsvFeed", "RecordError", "advisory_from_osv", "known_ecosystem", "parse_path",
           "parse_zip"]
