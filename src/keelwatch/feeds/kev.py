"""CISA's Known Exploited Vulnerabilities catalog (kind ``kev``) → ``Exploitability`` per CVE.

The catalog is one JSON document (https://www.cisa.gov/known-exploited-vulnerabilities-catalog,
schema at https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities_schema.json):
``{"catalogVersion", "dateReleased", "count", "vulnerabilities": [{"cveID", "dateAdded", "dueDate",
"knownRansomwareCampaignUse", …}]}``. Each entry gives the date CISA added the CVE, the federal
remediation due date and whether ransomware campaigns are known to use it ("Known"/"Unknown").

Records carry only the KEV fields (``epss`` stays ``None``): EPSS comes from its own feed and
the store joins both by CVE. A full snapshot every time: a CVE that leaves the catalog is gone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from keelwatch.errors import FeedError
from keelwatch.feeds.base import Problem, Record, Spool
from keelwatch.feeds.decode import JSON_ERRORS, loads, read_maybe_gzip
from keelwatch.feeds.fetch import SingleFileFeed
from keelwatch.model import Exploitability

CVE_ID = re.compile(r"^CVE-\d{4}-\d{4,}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _entry(item: Any) -> Exploitability:
    if not isinstance(item, dict):
        raise ValueError("not an object")
    cve = item.get("cveID")
    if not isinstance(cve, str) or not CVE_ID.match(cve.strip()):
        raise ValueError(f"cveID is not a CVE id: {cve!r:.60}")
    added, due = item.get("dateAdded"), item.get("dueDate", "")
    if not isinstance(added, str) or not DATE.match(added):
        raise ValueError(f"dateAdded is not a date: {added!r:.60}")
    if not isinstance(due, str) or (due and not DATE.match(due)):
        raise ValueError(f"dueDate is not a date: {due!r:.60}")
    ransomware = item.get("knownRansomwareCampaignUse", "")
    return Exploitability(cve=cve.strip(), kev_date_added=added, kev_due_date=due,
                          kev_ransomware=ransomware if isinstance(ransomware, str) else "")


class KevFeed(SingleFileFeed):
    """The KEV JSON file (``https://``, ``file://`` or a path; gzipped or not)."""

    kind = "kev"

    def parse(self, spool: Spool, *, source: str) -> Iterator[Record]:
        try:
            doc = loads(read_maybe_gzip(spool.path))
        except JSON_ERRORS as exc:
            raise FeedError(f"{spool.path.name}: not JSON ({exc})", hint="is the url the KEV JSON feed?") from None
        except OSError as exc:
            raise FeedError(f"{spool.path.name}: {exc}") from None
        entries = doc.get("vulnerabilities") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise FeedError(f"{spool.path.name}: not a KEV catalog (no 'vulnerabilities' list)",
                            hint="is the url the KEV JSON feed?")
        for i, item in enumerate(entries):
            try:
                yield _entry(item)
            except ValueError as exc:
                cve = item.get("cveID") if isinstance(item, dict) else None
                yield Problem(f"vulnerabilities[{i}]" + (f" ({cve})" if isinstance(cve, str) else ""), str(exc))
