"""EPSS feed: the real head and tail of one daily file, gzipped as FIRST publishes it."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from keelwatch.errors import FeedError
from keelwatch.feeds.base import Problem, Spool
from keelwatch.feeds.epss import EpssFeed
from keelwatch.model import Exploitability


@pytest.fixture
def daily_gz(feeds_dir: Path, tmp_path: Path) -> Path:
    # head = comment line + header + 296 rows; tail = the last 133 rows (no header), as NOTE.md says.
    head = (feeds_dir / "epss" / "epss_scores-current.2026-09-29.head.csv").read_bytes()
    tail = (feeds_dir / "epss" / "epss_scores-current.2026-09-29.tail.csv").read_bytes()
    path = tmp_path / "epss_scores-current.csv.gz"
    path.write_bytes(gzip.compress(head + tail))
    return path


def test_real_rows_gzipped(daily_gz: Path, tmp_path: Path) -> None:
    feed = EpssFeed()
    spool = feed.fetch(daily_gz.as_uri(), None, tmp_path / "work")
    assert isinstance(spool, Spool)
    records = list(feed.parse(spool, source="epss"))
    assert len(records) == 296 + 133 and all(isinstance(r, Exploitability) for r in records)
    assert records[0] == Exploitability("CVE-1999-0001", epss=0.03351, epss_percentile=0.88255, epss_date="2026-09-29")
    assert records[-1] == Exploitability("CVE-2026-9999", epss=0.00408, epss_percentile=0.32517,
                                         epss_date="2026-09-29")
    assert all(r.kev_date_added == "" for r in records if isinstance(r, Exploitability))


def test_plain_csv_and_the_old_format(tmp_path: Path) -> None:
    path = tmp_path / "epss.csv"
    path.write_text("cve,epss\nCVE-2021-44228,0.97565\n")  # 2021 files: no comment line, no percentile
    (record,) = EpssFeed().parse(Spool(path, ""), source="epss")
    assert record == Exploitability("CVE-2021-44228", epss=0.97565)


def test_bad_rows_and_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "epss.csv"
    path.write_text("#model_version:v1,score_date:2026-01-01T00:00:00Z\ncve,epss,percentile\n"
                    "CVE-2024-0001,0.5,0.5\nCVE-2024-0002,1.5,0.5\nCVE-2024-0003,abc,0.1\nfoo,0.1,0.1\nCVE-2024-0004,0.1\n")
    records = list(EpssFeed().parse(Spool(path, ""), source="epss"))
    assert records[0] == Exploitability("CVE-2024-0001", epss=0.5, epss_percentile=0.5, epss_date="2026-01-01")
    assert [type(r) for r in records[1:]] == [Problem] * 4
    assert isinstance(records[1], Problem) and records[1].where == "epss.csv:4"
    path.write_text("<html>not found</html>\n")
    with pytest.raises(FeedError, match="not an EPSS file"):
        list(EpssFeed().parse(Spool(path, ""), source="epss"))
    path.write_bytes(gzip.compress(b"#x\ncve,epss,percentile\n" + b"CVE-2024-0001,0.5,0.5\n" * 1000)[:-12])
    with pytest.raises(FeedError, match="cannot read"):
        list(EpssFeed().parse(Spool(path, ""), source="epss"))
