"""FIRST's EPSS scores (kind ``epss``) → ``Exploitability`` per CVE.

The daily file (https://www.first.org/epss/data_stats; ``epss_scores-current.csv.gz`` on
epss.empiricalsecurity.com) is a CSV, usually gzipped: a comment line
``#model_version:v2026.06.15,score_date:2026-09-29T12:00:22Z``, the header ``cve,epss,percentile``,
then one row per CVE with probabilities in [0, 1]. Files from before the v2 model (2022) have no
comment line, and the oldest no ``percentile`` column: both still read. ``epss_date`` is the
score date's day (``2026-09-29``), taken from the comment line when there is one.

Rows are read one at a time from the (decompressed) stream: the file has ~300,000 of them.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterator
from typing import IO

from keelwatch.errors import FeedError
from keelwatch.feeds.base import Problem, Record, Spool
from keelwatch.feeds.decode import GZIP_MAGIC
from keelwatch.feeds.fetch import SingleFileFeed
from keelwatch.model import Exploitability

CVE_ID = re.compile(r"^CVE-\d{4}-\d{4,}$")


def _probability(text: str, what: str) -> float:
    value = float(text)  # ValueError for junk
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} {text!r} is not between 0 and 1")
    return value


def _comment_fields(line: str) -> dict[str, str]:
    """``#model_version:v2026.06.15,score_date:2026-09-29T12:00:22Z`` → its key:value pairs."""
    out = {}
    for part in line.lstrip("#").strip().split(","):
        key, sep, value = part.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


class EpssFeed(SingleFileFeed):
    """The EPSS CSV file (``https://``, ``file://`` or a path; gzipped or not)."""

    kind = "epss"

    def parse(self, spool: Spool, *, source: str) -> Iterator[Record]:
        try:
            with spool.path.open("rb") as raw:
                gzipped = raw.read(2) == GZIP_MAGIC
                raw.seek(0)
                stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if gzipped else raw  # type: ignore[assignment]
                text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
                yield from self._rows(text, spool.path.name)
        except (OSError, EOFError, UnicodeDecodeError) as exc:  # gzip.BadGzipFile is an OSError
            raise FeedError(f"{spool.path.name}: cannot read ({exc})",
                            hint="the download is truncated or corrupt; the previous data is kept") from None

    def _rows(self, text: io.TextIOWrapper, name: str) -> Iterator[Record]:
        first = text.readline()
        score_date = ""
        if first.startswith("#"):
            fields = _comment_fields(first)
            score_date = fields.get("score_date", "")[:10]
            header_line = text.readline()
        else:
            header_line = first
        header = [h.strip() for h in header_line.strip().split(",")]
        if header[:2] != ["cve", "epss"]:
            raise FeedError(f"{name}: not an EPSS file (header {header_line.strip()[:60]!r}, "
                            "expected 'cve,epss,percentile')", hint="is the url the EPSS CSV?")
        has_percentile = len(header) > 2 and header[2] == "percentile"
        lineno = 2 if score_date or first.startswith("#") else 1
        for row in csv.reader(text):
            lineno += 1
            if not row:
                continue
            try:
                cve = row[0].strip()
                if not CVE_ID.match(cve):
                    raise ValueError(f"not a CVE id: {cve[:40]!r}")
                epss = _probability(row[1], "epss")
                percentile = _probability(row[2], "percentile") if has_percentile else None
            except (ValueError, IndexError) as exc:
                yield Problem(f"{name}:{lineno}", f"bad row {','.join(row)[:80]!r}: {exc}")
                continue
            yield Exploitability(cve=cve, epss=epss, epss_percentile=percentile, epss_date=score_date)
