"""KEV feed: the real catalog, and what a broken one gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keelwatch.errors import FeedError
from keelwatch.feeds.base import Problem, Spool
from keelwatch.feeds.kev import KevFeed
from keelwatch.model import Exploitability


def test_real_catalog(feeds_dir: Path, tmp_path: Path) -> None:
    feed = KevFeed()
    spool = feed.fetch(str(feeds_dir / "kev" / "known_exploited_vulnerabilities.json"), None, tmp_path)
    assert isinstance(spool, Spool)
    records = list(feed.parse(spool, source="kev"))
    assert len(records) == 1404 and all(isinstance(r, Exploitability) for r in records)
    by_cve = {r.cve: r for r in records if isinstance(r, Exploitability)}
    assert by_cve["CVE-2021-44228"] == Exploitability("CVE-2021-44228", kev_date_added="2021-12-10",
                                                      kev_due_date="2021-12-24", kev_ransomware="Known")
    assert sum(r.kev_ransomware == "Known" for r in by_cve.values()) == 293
    assert all(r.epss is None for r in by_cve.values())  # EPSS is another feed's business


def test_bad_entries_and_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "kev.json"
    path.write_text(json.dumps({"vulnerabilities": [
        {"cveID": "CVE-2024-0001", "dateAdded": "2024-01-02", "dueDate": "2024-01-23",
         "knownRansomwareCampaignUse": "Unknown"},
        {"cveID": "not-a-cve", "dateAdded": "2024-01-02"},
        {"cveID": "CVE-2024-0002", "dateAdded": "02/01/2024"},
    ]}))
    records = list(KevFeed().parse(Spool(path, ""), source="kev"))
    assert records[0] == Exploitability("CVE-2024-0001", "2024-01-02", "2024-01-23", "Unknown")
    assert [type(r) for r in records[1:]] == [Problem, Problem]
    assert isinstance(records[2], Problem) and records[2].where == "vulnerabilities[2] (CVE-2024-0002)"
    path.write_text('{"vulnerabilities": [')
    with pytest.raises(FeedError, match="not JSON"):
        list(KevFeed().parse(Spool(path, ""), source="kev"))
    path.write_text('{"title": "something else"}')
    with pytest.raises(FeedError, match="not a KEV catalog"):
        list(KevFeed().parse(Spool(path, ""), source="kev"))
