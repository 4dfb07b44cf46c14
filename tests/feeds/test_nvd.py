"""NVD feed: the real records' edge cases, the real page, and paging an API on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keelwatch.errors import FeedError
from keelwatch.feeds.base import Problem, Spool, Unchanged
from keelwatch.feeds.fetch import fingerprint_fields
from keelwatch.feeds.nvd import NvdFeed, parse_path
from keelwatch.model import Advisory, Severity

from .httpserver import Route, TestServer


@pytest.fixture(scope="module")
def records(feeds_dir: Path) -> dict[str, Advisory]:
    out = {}
    for record in parse_path(feeds_dir / "nvd" / "records", source="nvd"):
        assert isinstance(record, Advisory), record
        out[record.id] = record
    assert len(out) == 25
    return out


def test_rejected_is_withdrawn(records: dict[str, Advisory]) -> None:
    adv = records["CVE-2022-23529"]
    assert adv.withdrawn == adv.modified == datetime(2023, 1, 27, 22, 15, 8, 253000, tzinfo=UTC)
    assert adv.severity == () and adv.affected == ()
    assert json.loads(adv.database_specific)["vulnStatus"] == "Rejected"
    assert adv.details.startswith("** REJECT **")


def test_awaiting_analysis_without_metrics(records: dict[str, Advisory]) -> None:
    adv = records["CVE-2024-24790"]
    assert adv.severity == () and adv.withdrawn is None
    assert adv.published == datetime(2024, 6, 5, 16, 15, 10, 560000, tzinfo=UTC)
    assert "https://pkg.go.dev/vuln/GO-2024-2887" in adv.references
    assert json.loads(adv.database_specific)["vulnStatus"] == "Awaiting Analysis"


def test_only_cvss_30(records: dict[str, Advisory]) -> None:
    assert records["CVE-2024-3651"].severity == (
        Severity("CVSS_V3", "CVSS:3.0/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 6.2, "security@huntr.dev (Secondary)"),)


def test_only_a_secondary_score(records: dict[str, Advisory]) -> None:
    assert records["CVE-2023-4911"].severity == (
        Severity("CVSS_V3", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, "secalert@redhat.com (Secondary)"),)


def test_v31_and_v2_with_sources(records: dict[str, Advisory]) -> None:
    adv = records["CVE-2014-0160"]
    assert adv.severity == (
        Severity("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5, "nvd@nist.gov (Primary)"),
        Severity("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5,
                 "134c704f-9b21-4f2e-91b3-4a467353bcc0 (Secondary)"),
        Severity("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:N/A:N", 5.0, "nvd@nist.gov (Primary)"),
    )
    log4shell = records["CVE-2021-44228"]
    assert [s.base_score for s in log4shell.severity] == [10.0, 10.0, 9.3]
    specific = json.loads(log4shell.database_specific)
    assert specific["cisaExploitAdd"] == "2021-12-10" and specific["cwes"] == ["CWE-20", "CWE-400", "CWE-502",
                                                                               "CWE-917"]


def test_every_nvd_score_agrees_with_our_formula(records: dict[str, Advisory]) -> None:
    from keelwatch.feeds.cvss import base_score

    for adv in records.values():
        for s in adv.severity:
            assert base_score(s.type, s.score) == s.base_score, (adv.id, s)


def test_real_page(feeds_dir: Path) -> None:
    advisories = [a for a in parse_path(feeds_dir / "nvd" / "page-sample.json", source="nvd")
                  if isinstance(a, Advisory)]
    assert len(advisories) == 38
    assert advisories[0].id == "CVE-2023-27314"


def test_a_bad_record_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "page.json"
    path.write_text(json.dumps({"resultsPerPage": 2, "startIndex": 0, "totalResults": 2, "vulnerabilities": [
        {"cve": {"id": "CVE-2024-0001", "lastModified": "2024-01-01T00:00:00.000", "vulnStatus": "Analyzed"}},
        {"cve": {"id": "CVE-2024-0002", "lastModified": "last tuesday"}}]}))
    first, second = parse_path(path, source="nvd")
    assert isinstance(first, Advisory) and isinstance(second, Problem)
    assert second.where == "page.json[1] (CVE-2024-0002)"


def _api(feeds_dir: Path) -> tuple[Route, list[dict[str, list[str]]]]:
    """An API over the real page's 38 CVEs that honours resultsPerPage, startIndex and lastMod dates."""
    page = json.loads((feeds_dir / "nvd" / "page-sample.json").read_text())
    asked: list[dict[str, list[str]]] = []

    def answer(query: dict[str, list[str]]) -> bytes:
        asked.append(query)
        items = page["vulnerabilities"]
        if "lastModStartDate" in query:
            since = datetime.fromisoformat(query["lastModStartDate"][0])
            items = [v for v in items
                     if datetime.fromisoformat(v["cve"]["lastModified"]).replace(tzinfo=UTC) > since]
        start, per = int(query["startIndex"][0]), int(query["resultsPerPage"][0])
        return json.dumps({"resultsPerPage": len(items[start:start + per]), "startIndex": start,
                           "totalResults": len(items), "format": "NVD_CVE", "version": "2.0",
                           "vulnerabilities": items[start:start + per]}).encode()

    return Route(dynamic=answer), asked


def test_api_paging_then_incremental(server: TestServer, feeds_dir: Path, tmp_path: Path) -> None:
    route, asked = _api(feeds_dir)
    server.routes["/rest/json/cves/2.0"] = route
    feed = NvdFeed({"results_per_page": 10, "page_delay": 0, "api_key": "k"})
    url = server.url("/rest/json/cves/2.0")
    spool = feed.fetch(url, None, tmp_path)
    assert isinstance(spool, Spool) and spool.complete and spool.extra == {"mode": "full", "pages": "4"}
    assert [q["startIndex"] for q in asked] == [["0"], ["10"], ["20"], ["30"]]
    assert server.seen[0].headers["apikey"] == "k"
    ids = [r.id for r in feed.parse(spool, source="nvd") if isinstance(r, Advisory)]
    assert len(ids) == len(set(ids)) == 38
    # Next sync: only what changed since; nothing has → Unchanged, with the new sync time.
    again = feed.fetch(url, spool.fingerprint, tmp_path)
    assert isinstance(again, Unchanged) and "lastModStartDate" in asked[-1]
    assert fingerprint_fields(again.fingerprint)["synced"] >= fingerprint_fields(spool.fingerprint)["synced"]
    # A fingerprint from long ago (beyond NVD's 120-day window): a full download again.
    old = json.dumps({"synced": "2023-10-10T00:00:00Z"})
    delta = NvdFeed({"results_per_page": 10, "page_delay": 0, "incremental": True}).fetch(url, old, tmp_path)
    assert isinstance(delta, Spool) and delta.complete


def test_api_delta_is_incomplete(server: TestServer, feeds_dir: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import keelwatch.feeds.nvd as nvd

    route, asked = _api(feeds_dir)
    server.routes["/api"] = route

    class Then(datetime):
        @classmethod
        def now(cls, tz: object = None) -> Then:
            return cls(2023, 10, 20, tzinfo=UTC)

    monkeypatch.setattr(nvd, "datetime", Then)
    since = json.dumps({"synced": "2023-10-18T17:00:00Z"})  # the page's records were modified 10-12..10-18
    delta = NvdFeed({"page_delay": 0}).fetch(server.url("/api"), since, tmp_path)
    assert isinstance(delta, Spool) and not delta.complete and delta.extra["mode"] == "delta"
    assert asked[-1]["lastModStartDate"] == ["2023-10-18T17:00:00.000+00:00"]
    ids = {r.id for r in NvdFeed().parse(delta, source="nvd") if isinstance(r, Advisory)}
    assert 0 < len(ids) < 38


def test_a_static_file_is_not_paged(server: TestServer, feeds_dir: Path, tmp_path: Path) -> None:
    server.routes["/nvd/page.json"] = Route((feeds_dir / "nvd" / "page-sample.json").read_bytes(), etag='"p"')
    feed = NvdFeed()
    spool = feed.fetch(server.url("/nvd/page.json"), None, tmp_path)
    assert isinstance(spool, Spool)
    assert sum(isinstance(r, Advisory) for r in feed.parse(spool, source="nvd")) == 38
    # The same file given as if it were the API: refused, not looped over.
    server.routes["/static"] = Route(json.dumps({"resultsPerPage": 1, "startIndex": 0, "totalResults": 5,
                                                 "vulnerabilities": []}).encode())
    with pytest.raises(FeedError, match="asked for startIndex 1, got 0"):
        NvdFeed({"page_delay": 0}).fetch(server.url("/static"), None, tmp_path)


def test_rate_limit_403_is_retried(server: TestServer, feeds_dir: Path, tmp_path: Path) -> None:
    route, _ = _api(feeds_dir)
    route.fail = [403]
    server.routes["/api"] = route
    spool = NvdFeed({"page_delay": 0, "backoff": 0.01}).fetch(server.url("/api"), None, tmp_path)
    assert isinstance(spool, Spool)
