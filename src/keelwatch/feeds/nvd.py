"""NVD's CVE API 2.0 (kind ``nvd``) → one ``Advisory`` per CVE carrying NVD's CVSS metrics.

What it is for: a severity when the distro or ecosystem advisory gives none. NVD advisories have
**no affected packages**: NVD describes products with CPE configurations, and keelwatch does not
match CPEs to packages — fuzzy CPE matching is what gave Grype years of false positives
(anchore/grype #342, #580, #1349). The matcher reaches these advisories through the CVE ids other
advisories name (aliases, upstream).

Input shapes (https://nvd.nist.gov/developers/vulnerabilities): a page answer
``{"resultsPerPage", "startIndex", "totalResults", "vulnerabilities": [{"cve": {…}}]}``, one
``{"cve": {…}}`` wrapper, or a bare ``cve`` object (as github.com/fkie-cad/nvd-json-data-feeds
stores them), gzipped or not; a directory of such files; or a zip of them (the spool of a paged
fetch).

Mapping:

- ``metrics.cvssMetricV40`` / ``V31`` / ``V30`` / ``V2`` → ``Severity(CVSS_V4 | CVSS_V3 | CVSS_V3 |
  CVSS_V2, vector, NVD's baseScore)``, in that order and, within a version, as NVD lists them
  (Primary first). ``Severity.source`` names who scored and how NVD ranks it:
  ``"nvd@nist.gov (Primary)"``, ``"secalert@redhat.com (Secondary)"``. NVD's own number is kept;
  it is recomputed from the vector only when NVD gives none.
- ``vulnStatus == "Rejected"`` → ``withdrawn`` = ``lastModified`` (the record stays visible with
  its reason, and never lends a severity to a match).
- English description → ``details``; reference URLs; ``vulnStatus``, ``sourceIdentifier``, the
  CWE ids and CISA's KEV fields → ``database_specific``.

Fetching from the API (``https://services.nvd.nist.gov/rest/json/cves/2.0``) pages with
``startIndex``/``resultsPerPage`` and waits ``page_delay`` seconds between requests (NVD asks
for 6 s without an API key; 403/429/503 are retried with backoff). The fingerprint records when
the last sync started; the next asks only for CVEs modified since (``lastModStartDate``, at
most NVD's 120-day window, ``Spool.complete = False``); older or absent → a full download.
"""

from __future__ import annotations

import dataclasses
import math
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from keelwatch.errors import ConfigError, FeedError
from keelwatch.feeds import fetch as fetching
from keelwatch.feeds.base import Problem, Record, Spool, Unchanged
from keelwatch.feeds.cvss import base_score
from keelwatch.feeds.decode import GZIP_MAGIC, JSON_ERRORS, ZIP_MAGIC, dumps, loads, parse_time, read_maybe_gzip
from keelwatch.model import Advisory, Severity

API_URL = "https://services.nvd.nist.gov/rest/json/cves/2.0"
# metrics key → OSV severity type, in the order severities are listed (newest CVSS first).
METRICS = (("cvssMetricV40", "CVSS_V4"), ("cvssMetricV31", "CVSS_V3"), ("cvssMetricV30", "CVSS_V3"),
           ("cvssMetricV2", "CVSS_V2"))
MAX_WINDOW = timedelta(days=120)  # NVD refuses lastMod ranges longer than this
STATIC_SUFFIXES = (".json", ".json.gz", ".zip")


class RecordError(ValueError):
    pass


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"{what} is not a string")
    return value


def _time(cve: Mapping[str, Any], key: str) -> datetime | None:
    try:
        return parse_time(cve.get(key))
    except ValueError:
        raise RecordError(f"{key!r} is not a timestamp: {cve.get(key)!r:.60}") from None


def _severities(metrics: Any) -> tuple[Severity, ...]:
    if not metrics:
        return ()
    if not isinstance(metrics, dict):
        raise RecordError("'metrics' is not an object")
    out = []
    for key, kind in METRICS:
        entries = metrics.get(key) or []
        if not isinstance(entries, list):
            raise RecordError(f"metrics.{key} is not a list")
        # Primary (NVD's own analysis) before Secondary (a CNA's), each group as NVD lists it.
        for entry in sorted(entries, key=lambda e: 0 if isinstance(e, dict) and e.get("type") == "Primary" else 1):
            data = entry.get("cvssData") if isinstance(entry, dict) else None
            if not isinstance(data, dict) or not isinstance(data.get("vectorString"), str):
                raise RecordError(f"metrics.{key}: an entry has no cvssData.vectorString")
            vector = data["vectorString"]
            score = data.get("baseScore")
            number = float(score) if isinstance(score, int | float) else base_score(kind, vector)
            who = _text(entry.get("source"), "metric source") or "nvd"
            rank = _text(entry.get("type"), "metric type")
            out.append(Severity(type=kind, score=vector, base_score=number,
                                source=f"{who} ({rank})" if rank else who))
    return tuple(out)


def advisory_from_cve(cve: Any, *, source: str) -> Advisory:
    """One API 2.0 ``cve`` object → ``Advisory``; raises ``RecordError`` when it is not one."""
    if not isinstance(cve, dict):
        raise RecordError("not a CVE object")
    cve_id = cve.get("id")
    if not isinstance(cve_id, str) or not cve_id.startswith("CVE-"):
        raise RecordError(f"'id' is not a CVE id: {cve_id!r:.60}")
    status = _text(cve.get("vulnStatus"), "vulnStatus")
    modified = _time(cve, "lastModified")
    descriptions = cve.get("descriptions") or []
    if not isinstance(descriptions, list):
        raise RecordError("'descriptions' is not a list")
    details = next((d.get("value", "") for d in descriptions if isinstance(d, dict) and d.get("lang") == "en"), "")
    references = cve.get("references") or []
    if not isinstance(references, list):
        raise RecordError("'references' is not a list")
    cwes = sorted({str(d["value"]) for w in cve.get("weaknesses") or [] if isinstance(w, dict)
                   for d in w.get("description") or [] if isinstance(d, dict)
                   and isinstance(d.get("value"), str) and d["value"].startswith("CWE-")})
    specific: dict[str, Any] = {"vulnStatus": status, "sourceIdentifier": cve.get("sourceIdentifier", "")}
    if cwes:
        specific["cwes"] = cwes
    for key in ("cisaExploitAdd", "cisaActionDue", "cisaVulnerabilityName"):
        if cve.get(key):
            specific[key] = cve[key]
    return Advisory(
        id=cve_id,
        source=source,
        modified=modified,
        published=_time(cve, "published"),
        withdrawn=modified if status == "Rejected" else None,
        details=_text(details, "description"),
        severity=_severities(cve.get("metrics")),
        references=tuple(r["url"] for r in references if isinstance(r, dict) and isinstance(r.get("url"), str)),
        database_specific=dumps(specific),
    )


def _cves_of(doc: Any) -> list[Any]:
    """The ``cve`` objects of a page answer, a ``{"cve": …}`` wrapper, a bare record, or a list of these."""
    if isinstance(doc, list):
        return [c for item in doc for c in _cves_of(item)]
    if isinstance(doc, dict):
        if isinstance(doc.get("vulnerabilities"), list):
            return [item.get("cve") if isinstance(item, dict) and "cve" in item else item
                    for item in doc["vulnerabilities"]]
        if isinstance(doc.get("cve"), dict):
            return [doc["cve"]]
    return [doc]


def _records_of(data: bytes, where: str, source: str) -> Iterator[Record]:
    try:
        doc = loads(data)
    except JSON_ERRORS as exc:
        yield Problem(where, f"not JSON: {exc}")
        return
    for i, cve in enumerate(_cves_of(doc)):
        try:
            yield advisory_from_cve(cve, source=source)
        except RecordError as exc:
            cve_id = cve.get("id") if isinstance(cve, dict) else None
            yield Problem(f"{where}[{i}]" + (f" ({cve_id})" if isinstance(cve_id, str) else ""), str(exc))


def _is_json_name(name: str) -> bool:
    path = PurePosixPath(name)
    return name.endswith((".json", ".json.gz")) and not any(p.startswith(".") for p in path.parts)


def parse_path(path: Path, *, source: str) -> Iterator[Record]:
    """Records of a zip of JSON files, a directory of them, or one JSON file (gzipped or not)."""
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            if _is_json_name(file.name):
                yield from _records_of(read_maybe_gzip(file), file.name, source)
        return
    with path.open("rb") as fh:
        head = fh.read(4)
    if head == ZIP_MAGIC:
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise FeedError(f"{path.name}: not a readable zip ({exc})") from None
        with archive:
            for info in archive.infolist():
                if info.is_dir() or not _is_json_name(info.filename):
                    continue
                try:
                    data = archive.read(info)
                    if data[:2] == GZIP_MAGIC:
                        data = zlib.decompress(data, 16 + zlib.MAX_WBITS)
                except (zipfile.BadZipFile, zlib.error, OSError) as exc:
                    raise FeedError(f"{path.name}:{info.filename}: corrupt ({exc})") from None
                yield from _records_of(data, f"{path.name}:{info.filename}", source)
        return
    try:
        data = read_maybe_gzip(path)
    except (OSError, EOFError) as exc:
        raise FeedError(f"{path.name}: cannot read ({exc})") from None
    yield from _records_of(data, path.name, source)


def _api_time(moment: datetime) -> str:
    """The timestamp form NVD's lastMod parameters accept (ISO 8601 with milliseconds and offset)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


class NvdFeed:
    """NVD CVE records: the paged API, a static JSON file, or a directory of record files."""

    kind = "nvd"
    OPTIONS = ("api_key", "results_per_page", "page_delay", "incremental") + fetching.FetchOptions.KEYS

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        options = dict(options or {})
        fetching.check_options(self.kind, options, self.OPTIONS)
        api_key = options.get("api_key", "")
        if not isinstance(api_key, str):
            raise ConfigError("feed nvd: option 'api_key' must be a string")
        headers = {"apiKey": api_key} if api_key else {}
        base = fetching.FetchOptions.from_mapping(options, where=self.kind)
        # NVD answers 403 (not 429) when a client exceeds its rate limit: retried with backoff.
        self.fetch_options = dataclasses.replace(base, headers={**headers, **base.headers},
                                                 retry_statuses=frozenset({403}))
        self.results_per_page = fetching.int_option(options, "results_per_page", 2000, where=self.kind) or 2000
        self.page_delay = fetching.float_option(options, "page_delay", 0.6 if api_key else 6.0, where=self.kind)
        self.incremental = fetching.bool_option(options, "incremental", True, where=self.kind)

    def fetch(self, url: str, fingerprint: str | None, workdir: Path) -> Unchanged | Spool:
        local = fetching.local_path(url)
        if local is not None:
            if local.is_dir():
                return fetching.pack_directory(local, fingerprint, workdir, name="nvd-records.zip",
                                               accept=_is_json_name)
            return fetching.fetch_file(url, fingerprint, workdir, self.fetch_options)
        if urlsplit(url).path.endswith(STATIC_SUFFIXES):
            return fetching.fetch_file(url, fingerprint, workdir, self.fetch_options)
        return self._fetch_api(url, fingerprint, workdir)

    def _fetch_api(self, url: str, fingerprint: str | None, workdir: Path) -> Unchanged | Spool:
        started = datetime.now(UTC)
        last = fetching.fingerprint_fields(fingerprint).get("synced")
        since = None
        if self.incremental and isinstance(last, str):
            try:
                since = parse_time(last)
            except ValueError:
                since = None
        if since is not None and started - since > MAX_WINDOW:
            since = None  # beyond NVD's window: a full download
        window = {"lastModStartDate": _api_time(since), "lastModEndDate": _api_time(started)} if since else {}
        pages: list[tuple[str, Path]] = []
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            with fetching.Fetcher(self.fetch_options, workdir) as fetcher:
                start, total, expected_pages = 0, None, None
                while total is None or start < total:
                    if pages and self.page_delay:
                        time.sleep(self.page_delay)  # NVD's published rate limit, not a guess
                    params = {**window, "resultsPerPage": self.results_per_page, "startIndex": start}
                    result = fetcher.file(url, None, params=params)
                    assert isinstance(result, Spool)
                    pages.append((f"page-{len(pages):05d}.json", result.path))
                    header = _page_header(result.path, url, start)
                    total, per_page = header
                    if expected_pages is None:
                        expected_pages = math.ceil(total / max(per_page, 1)) + 1
                    if len(pages) > expected_pages or (per_page == 0 and start < total):
                        raise FeedError(f"{url}: paging does not advance (startIndex {start}, totalResults {total})")
                    start += per_page
            new = fetching.make_fingerprint(synced=started.strftime("%Y-%m-%dT%H:%M:%SZ"))
            if since is not None and total == 0:
                return Unchanged(new)
            dest = workdir / "nvd-pages.zip"
            fetching.write_bundle(dest, pages)
            return Spool(path=dest, fingerprint=new, url=url, complete=since is None,
                         extra={"mode": "delta" if since else "full", "pages": str(len(pages))})
        finally:
            for _, path in pages:
                path.unlink(missing_ok=True)

    def parse(self, spool: Spool, *, source: str) -> Iterator[Record]:
        return parse_path(spool.path, source=source)


def _page_header(path: Path, url: str, asked: int) -> tuple[int, int]:
    """(totalResults, resultsPerPage) of one API answer, checking it is the page asked for."""
    try:
        doc = loads(read_maybe_gzip(path))
    except JSON_ERRORS as exc:
        raise FeedError(f"{url}: the API answered with something that is not JSON ({exc})", retryable=True) from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), int) for k in
                                            ("totalResults", "resultsPerPage", "startIndex")):
        raise FeedError(f"{url}: not an NVD API 2.0 answer (no totalResults/resultsPerPage/startIndex)",
                        hint="is the url the CVE API (…/rest/json/cves/2.0)?")
    if doc["startIndex"] != asked:
        raise FeedError(f"{url}: asked for startIndex {asked}, got {doc['startIndex']}",
                        hint="a static file is not an API: give its URL ending in .json")
    return doc["totalResults"], doc["resultsPerPage"]
