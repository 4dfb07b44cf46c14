"""New match results against stored findings → what to write, and the opened / closed / changed events.

Shared by a scan (all of an image's packages) and a re-match (only the packages a feed change
touched). A finding keeps its key, and so its history, while it lives: a new result is the same
finding as a stored one when both concern the same installed package and share any advisory id or
alias (an advisory renamed or joined by a GHSA under the same CVE stays one finding). Anything
else new is *opened*; a stored finding no result claims is *closed*; a kept finding whose
user-visible facts moved (severity, CVSS, fixed versions, KEV, EPSS, ids) is *changed*, with the
fields as ``[before, after]``.

EPSS moves a little every day for every CVE: its change is an event only when the score moves by
at least ``EPSS_EVENT_STEP`` (the stored value is kept current either way), so a daily EPSS sync
does not turn into one event per finding of the fleet.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from keelwatch.model import Finding
from keelwatch.store.findings import ImageWrite, StoredFinding, event_row, finding_key, finding_row

#: An EPSS move smaller than this (absolute, on the 0..1 score) updates the finding silently.
EPSS_EVENT_STEP = 0.01

# Fields compared for a "changed" event, as (event field name, how to read it off a Finding).
_WATCHED = (
    ("severity", lambda f: f.severity),
    ("cvss_score", lambda f: f.cvss_score),
    ("fixed_versions", lambda f: list(f.fixed_versions)),
    ("kev", lambda f: f.kev),
    ("kev_date_added", lambda f: f.kev_date_added),
    ("advisory_ids", lambda f: list(f.advisory_ids)),
    ("aliases", lambda f: list(f.aliases)),
)
# Stored silently: they change what a finding says, not whether anybody must act.
_QUIET = ("summary", "details", "severity_source", "cvss_vector", "cvss_source", "upstream", "fix_available",
          "epss_percentile", "layer_digest", "package", "installed_version")


def _names(finding: Finding) -> set[str]:
    return {finding.id, *finding.advisory_ids, *finding.aliases}


def changes_between(before: Finding, after: Finding) -> dict[str, list[Any]]:
    """The watched fields that differ, as field → [before, after] (EPSS only past its step)."""
    out: dict[str, list[Any]] = {}
    for name, read in _WATCHED:
        a, b = read(before), read(after)
        if a != b:
            out[name] = [a, b]
    if before.epss != after.epss:
        moved = before.epss is None or after.epss is None or abs(after.epss - before.epss) >= EPSS_EVENT_STEP
        if moved:
            out["epss"] = [before.epss, after.epss]
    return out


def _same_content(before: Finding, after: Finding) -> bool:
    return before == after or (not changes_between(before, after) and before.epss == after.epss
                               and all(getattr(before, f) == getattr(after, f) for f in _QUIET))


def plan_write(image_digest: str, results: Iterable[Finding], stored: Iterable[StoredFinding], *,
               package_uids: Collection[str] | None, sync: int | None, now: datetime) -> ImageWrite:
    """The ``ImageWrite`` that turns ``stored`` into ``results``, with its events.

    ``stored`` must be every stored finding of the packages concerned (``package_uids``, or the
    whole image when None); ``results`` the new match of exactly those packages.
    """
    by_package: dict[str, list[StoredFinding]] = {}
    for s in stored:
        by_package.setdefault(s.finding.package.id, []).append(s)
    claimed: set[str] = set()
    used_keys = {s.key for items in by_package.values() for s in items}
    findings: list[StoredFinding] = []
    events: list[dict[str, Any]] = []
    for result in results:
        names = _names(result)
        previous = next((s for s in by_package.get(result.package.id, ())
                         if s.key not in claimed and names & _names(s.finding)), None)
        if previous is None:
            key = finding_key(image_digest, result.id, result.package.id)
            n = 1
            while key in used_keys:  # the same id reopened beside a kept finding: keep keys unique
                n += 1
                key = finding_key(image_digest, f"{result.id}#{n}", result.package.id)
            used_keys.add(key)
            findings.append(StoredFinding(key=key, image_digest=image_digest, finding=result, first_seen=now,
                                          last_seen=now, updated=now))
            events.append(event_row("opened", key, image_digest, result, sync=sync, time=now))
            continue
        claimed.add(previous.key)
        changes = changes_between(previous.finding, result)
        updated = previous.updated if _same_content(previous.finding, result) else now
        findings.append(StoredFinding(key=previous.key, image_digest=image_digest, finding=result,
                                      first_seen=previous.first_seen, last_seen=now, updated=updated))
        if changes:
            events.append(event_row("changed", previous.key, image_digest, result, sync=sync, time=now,
                                    changes=changes))
    for items in by_package.values():
        for s in items:
            if s.key not in claimed:
                events.append(event_row("closed", s.key, image_digest, s.finding, sync=sync, time=now))
    return ImageWrite(image_digest=image_digest, findings=findings, events=events, package_uids=package_uids)


def is_noop(write: ImageWrite, stored: Iterable[StoredFinding]) -> bool:
    """True when ``write`` would store exactly what is stored (no events, no content change)."""
    if write.events:
        return False
    before = {s.key: _as_stored(s) for s in stored}
    return len(before) == len(write.findings) and all(
        before.get(s.key) == _as_stored(s) for s in write.findings)


def _as_stored(stored: StoredFinding) -> dict[str, Any]:
    """What the store keeps of a finding, times aside (a fresh match carries more than the row)."""
    row = finding_row(stored)
    for column in ("first_seen", "last_seen", "updated"):
        del row[column]
    return row
