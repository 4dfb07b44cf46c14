"""Debian's security tracker JSON (kind ``debian-tracker``) → OSV-shaped advisories.

Source: https://security-tracker.debian.org/tracker/data/json, one object
``{source_package: {CVE: {"description", "scope", "debianbug", "releases": {codename: {"status",
"repositories", "fixed_version", "urgency", "nodsa", "nodsa_reason"}}}}}`` (documented only by the
tracker's code, ``lib/python/security_db.py``; scanners that read it: Trivy's
``vuln-list-update/debian``, Anchore's vunnel ``providers/debian``).

**Id scheme**: one advisory per CVE, id ``DEBIAN-<CVE id>`` (``DEBIAN-CVE-2023-0286``; a tracker
``TEMP-…`` id likewise), the same id osv.dev gives its records derived from this tracker. It
holds one ``affected`` entry per (source package × release) the tracker lists, so a CVE that
touches ``openssl`` and ``openssl1.0`` is one advisory with both. ``upstream`` names the CVE.

Per release, by ``status``:

- ``resolved`` with a ``fixed_version`` → ``Debian:N``, range ``introduced 0`` → ``fixed``.
- ``resolved`` with ``fixed_version`` ``"0"`` → *not affected* (the tracker's ``<not-affected>``):
  no affected entry, but listed in the advisory's ``database_specific.not_affected`` so "Debian
  says no" stays distinguishable from "Debian says nothing".
- ``open`` → affected with no fix (range ``introduced 0`` only); ``nodsa``/``nodsa_reason``
  (``ignored``, ``postponed``) are kept in the entry's ``database_specific``.
- ``undetermined`` → affected with no fix, ``database_specific.status = "undetermined"``: the
  tracker does not know yet, so keelwatch must not call the package clean.

``urgency`` (``unimportant``, ``low``, ``medium``, ``high``; a trailing ``*``/``**`` marks an
urgency the tracker guessed) becomes a ``Severity("Debian", label)`` on the entry; ``not yet
assigned`` and ``end-of-life`` are no severity and stay in ``database_specific.urgency``.
Codenames map to releases (wheezy 7 … trixie 13, forky 14, duke 15); ``sid`` (unstable) and
``experimental`` are skipped — no image reports them as a numbered release; the ``codenames``
option adds future ones (``codenames = {"forky" = "14"}``). An unknown codename is reported once
as a ``Problem``.

The file is tens of MB: packages are decoded one at a time (``decode.iter_object_items``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from keelwatch.errors import ConfigError, FeedError
from keelwatch.feeds.base import Problem, Record, Spool
from keelwatch.feeds.decode import dumps, iter_object_items, read_maybe_gzip
from keelwatch.feeds.fetch import SingleFileFeed
from keelwatch.model import Advisory, Affected, AffectedRange, Severity

DEFAULT_URL = "https://security-tracker.debian.org/tracker/data/json"
CODENAMES = {"wheezy": "7", "jessie": "8", "stretch": "9", "buster": "10", "bullseye": "11", "bookworm": "12",
             "trixie": "13", "forky": "14", "duke": "15"}
SKIPPED = frozenset({"sid", "experimental"})
URGENCIES = frozenset({"unimportant", "low", "medium", "high"})


@dataclass
class _Cve:
    description: str = ""
    scope: str = ""
    bugs: set[int] = field(default_factory=set)
    affected: list[Affected] = field(default_factory=list)
    not_affected: list[dict[str, str]] = field(default_factory=list)


class DebianTrackerFeed(SingleFileFeed):
    """The tracker's JSON dump (``https://``, ``file://`` or a path; gzipped or not)."""

    kind = "debian-tracker"
    OPTIONS = ("codenames",) + SingleFileFeed.OPTIONS

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        extra = self.options.get("codenames", {})
        if not isinstance(extra, Mapping) or not all(isinstance(v, str | int) for v in extra.values()):
            raise ConfigError("feed debian-tracker: option 'codenames' must map codenames to release numbers")
        self.codenames = {**CODENAMES, **{k: str(v) for k, v in extra.items()}}

    def parse(self, spool: Spool, *, source: str) -> Iterator[Record]:
        try:
            text = read_maybe_gzip(spool.path).decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise FeedError(f"{spool.path.name}: cannot read ({exc})",
                            hint="the download is truncated or corrupt; the previous data is kept") from None
        cves: dict[str, _Cve] = {}
        unknown: set[str] = set()
        problems: list[Problem] = []
        try:
            for package, entries in iter_object_items(text):
                if not isinstance(entries, dict):
                    problems.append(Problem(package, "package entry is not an object"))
                    continue
                for cve_id, entry in entries.items():
                    self._entry(package, cve_id, entry, cves, unknown, problems)
        except json.JSONDecodeError as exc:
            raise FeedError(f"{spool.path.name}: not the tracker's JSON ({exc})",
                            hint="is the url …/tracker/data/json? a truncated download is not parsed") from None
        yield from problems
        for codename in sorted(unknown):
            yield Problem(f"release {codename}", f"unknown Debian codename {codename!r}: its data is skipped "
                          "(add it with the codenames option)")
        for cve_id in sorted(cves):
            if cves[cve_id].affected or cves[cve_id].not_affected:  # "releases": [] says nothing to store
                yield _advisory(cve_id, cves[cve_id], source)

    def _entry(self, package: str, cve_id: str, entry: Any, cves: dict[str, _Cve], unknown: set[str],
               problems: list[Problem]) -> None:
        where = f"{package}/{cve_id}"
        if not isinstance(entry, dict):
            problems.append(Problem(where, "CVE entry is not an object"))
            return
        releases = entry.get("releases") or {}  # the tracker writes [] for "no release data"
        if not isinstance(releases, dict):
            problems.append(Problem(where, "'releases' is not an object"))
            return
        cve = cves.setdefault(cve_id, _Cve())
        if isinstance(entry.get("description"), str) and not cve.description:
            cve.description = entry["description"]
        if isinstance(entry.get("scope"), str) and not cve.scope:
            cve.scope = entry["scope"]
        if isinstance(entry.get("debianbug"), int):
            cve.bugs.add(entry["debianbug"])
        for codename in sorted(releases):
            release = releases[codename]
            if codename in SKIPPED:
                continue
            number = self.codenames.get(codename)
            if number is None:
                unknown.add(codename)
                continue
            ecosystem = f"Debian:{number}"
            if not isinstance(release, dict):
                problems.append(Problem(f"{where}/{codename}", "release entry is not an object"))
                continue
            status = release.get("status")
            fixed = release.get("fixed_version")
            urgency = release["urgency"] if isinstance(release.get("urgency"), str) else ""
            specific = {k: release[k] for k in ("status", "urgency", "nodsa", "nodsa_reason")
                        if isinstance(release.get(k), str) and release[k]}
            label = urgency.rstrip("*")
            severity = (Severity("Debian", label, None, "debian"),) if label in URGENCIES else ()
            if status == "resolved" and fixed == "0":
                cve.not_affected.append({"ecosystem": ecosystem, "name": package})
                continue
            if status == "resolved":
                if not isinstance(fixed, str) or not fixed:
                    problems.append(Problem(f"{where}/{codename}", "resolved without a fixed_version"))
                    continue
                events: tuple[tuple[str, str], ...] = (("introduced", "0"), ("fixed", fixed))
            elif status in ("open", "undetermined"):
                events = (("introduced", "0"),)
            else:
                problems.append(Problem(f"{where}/{codename}", f"unknown status {status!r}"))
                continue
            cve.affected.append(Affected(
                ecosystem=ecosystem, name=package, ranges=(AffectedRange("ECOSYSTEM", events),),
                purl=f"pkg:deb/debian/{package}?arch=source", severity=severity, database_specific=dumps(specific)))


def _advisory(cve_id: str, cve: _Cve, source: str) -> Advisory:
    specific: dict[str, Any] = {}
    if cve.scope:
        specific["scope"] = cve.scope
    if cve.not_affected:
        specific["not_affected"] = cve.not_affected
    return Advisory(
        id=f"DEBIAN-{cve_id}",
        source=source,
        upstream=(cve_id,) if cve_id.startswith("CVE-") else (),
        details=cve.description,
        affected=tuple(sorted(cve.affected, key=lambda a: (a.name, _release_order(a.ecosystem)))),
        references=(f"https://security-tracker.debian.org/tracker/{cve_id}",
                    *(f"https://bugs.debian.org/{bug}" for bug in sorted(cve.bugs))),
        database_specific=dumps(specific) if specific else "",
    )


def _release_order(ecosystem: str) -> tuple[int, str]:
    number = ecosystem.partition(":")[2]
    return (int(number), "") if number.isdigit() else (1 << 30, number)
