"""Packages in, findings and unknowns out: the part of matching every ecosystem shares.

``match_packages`` touches no database: advisories come from an ``AdvisoryLookup`` callable (the
store's index, or ``AdvisoryIndex`` over parsed feeds), KEV/EPSS from an ``ExploitabilityLookup``.

How it runs, and why it is fast:

1. Each package goes to the first registered matcher that handles it, which says what to search
   (``Search``: ecosystem, normalised name, version, direct or via source package).
2. Searches are deduplicated: an image has many binaries of one source (``libssl3`` and
   ``openssl``), a fleet has the same ``urllib3 1.26.4`` everywhere; each distinct (ecosystem,
   name, version) is decided once and fanned out. Names go to the lookup in one batch per
   ecosystem. Versions are ordered through ``keelwatch.versions.sort_key``, which parses each
   distinct string once per process.
3. Every candidate advisory's affected entries for that name are judged (``affected.judge``).
   Withdrawn advisories never match. What cannot be decided becomes an ``Unknown``, never "clean".
4. Per package, advisories that are aliases of each other become one finding (below).

Deduplication — one finding per package per *alias group*, the osv-scanner rule: two advisories
belong together when one's id or aliases meet the other's (transitively: PYSEC-x aliases CVE-y,
GHSA-z aliases CVE-y → one group). Every id is kept (``advisory_ids``, ``aliases``) so a query for
any of them finds the finding; fixed versions, match details and severity are the union of the
group's. The finding's ``id`` is the record closest to the package's maintainers: an ecosystem or
distro database's own id (PYSEC, GO, RUSTSEC, DSA …) before GitHub's GHSA before a bare CVE
record, then the lowest id — so it stays put when a GHSA for the same CVE arrives later. OSV
``upstream`` is not an alias (a DSA's upstream lists every CVE the update fixed): it never merges.
Grype keeps one match per record id and Trivy one per CVE; merging by alias avoids both the
double count (PYSEC + GHSA for one bug) and losing the record that carries the ecosystem's ranges.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from keelwatch.errors import VersionError
from keelwatch.match import severity
from keelwatch.match.affected import Unevaluable, Verdict, judge
from keelwatch.match.base import AdvisoryLookup, AdvisorySource, CveLookup, ExploitabilityLookup, Matcher, Search
from keelwatch.model import Advisory, Affected, Exploitability, Finding, MatchDetail, Package, Unknown
from keelwatch.names import normalise_name
from keelwatch.versions import sort_key

# Unknown kinds that concern a whole ecosystem: reported once, with the number of packages.
_ECOSYSTEM_WIDE = ("no-data", "no-release", "no-matcher")


@dataclass(slots=True)
class MatchResult:
    findings: list[Finding] = field(default_factory=list)
    unknowns: list[Unknown] = field(default_factory=list)


class MatchCache:
    """Decisions kept across ``match_packages`` calls against one unchanged advisory snapshot.

    A fleet carries the same ``urllib3 1.26.4`` in thousands of images: with one cache shared by
    the calls for every image of a re-match, each distinct (ecosystem, name, version) is looked up
    and judged once, and every further image only builds its findings. Valid only while the
    advisories it was filled from do not change: make a new one per re-match or scan.
    """

    __slots__ = ("outcomes", "no_data")

    def __init__(self) -> None:
        self.outcomes: dict[Search, _Outcome] = {}
        self.no_data: set[str] = set()  # ecosystems the lookup returned nothing for, ever

    def __len__(self) -> int:
        return len(self.outcomes)


@dataclass(slots=True)
class _Hit:
    advisory: Advisory
    details: list[MatchDetail] = field(default_factory=list)
    affected: list[Affected] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    fixed_ecosystem: str = ""


@dataclass(slots=True)
class _Outcome:
    """What one distinct search found: hits by advisory id, and what could not be decided."""

    hits: dict[str, _Hit] = field(default_factory=dict)
    undecided: dict[str, str] = field(default_factory=dict)  # advisory id → reason
    bad_version: str = ""  # why the installed version cannot be ordered, when it cannot


def match_packages(
    packages: Iterable[Package],
    advisories_lookup: AdvisoryLookup | AdvisorySource,
    exploitability_lookup: ExploitabilityLookup | Mapping[str, Exploitability] | None = None,
    *,
    image_ecosystem: str | None = None,
    covered_ecosystems: Collection[str] | None = None,
    matchers: Sequence[Matcher] | None = None,
    cache: MatchCache | None = None,
    cve_lookup: CveLookup | None = None,
) -> MatchResult:
    """Findings and unknowns for ``packages``, deterministic in order.

    ``advisories_lookup`` is a callable ``(ecosystem, names) -> advisories`` or an object with an
    ``advisories_for`` method (a ``Store``, an ``AdvisoryIndex``); ``exploitability_lookup`` a
    callable ``cves -> {cve: Exploitability}`` (``Store.exploitability``) or a mapping.

    ``image_ecosystem`` (``OSRelease.ecosystem``, e.g. ``Debian:12``) completes OS packages whose
    cataloger could not tell the release. ``covered_ecosystems`` are those the advisory data holds
    any record for; by default the lookup's own ``ecosystems()``. An ecosystem outside them gives
    one "no advisory data" Unknown instead of an empty, falsely clean result. A lookup that cannot
    say: an ecosystem for which it returns nothing for any package is reported the same way.

    ``cache`` (a ``MatchCache``) carries decisions over to the next call against the same data.
    ``cve_lookup`` (CVE → NVD records) scores findings whose advisories carry no CVSS at all.
    """
    if matchers is None:
        from keelwatch.match import MATCHERS

        matchers = MATCHERS
    if covered_ecosystems is None and hasattr(advisories_lookup, "ecosystems"):
        covered_ecosystems = advisories_lookup.ecosystems()
    lookup: AdvisoryLookup = getattr(advisories_lookup, "advisories_for", advisories_lookup)  # type: ignore[arg-type]

    cache = cache if cache is not None else MatchCache()
    outcomes = cache.outcomes
    unknowns: list[Unknown] = []
    plans: list[tuple[Package, tuple[Search, ...]]] = []
    pending: dict[str, set[Search]] = defaultdict(set)  # ecosystem → searches not decided yet
    for package in packages:
        matcher = next((m for m in matchers if m.handles(package)), None)
        if matcher is None:
            unknowns.append(Unknown(kind="no-matcher", ecosystem=package.ecosystem, package=package,
                                    reason=f"no matcher judges ecosystem {package.ecosystem or 'empty'!r}"))
            continue
        searches = matcher.searches(package, image_ecosystem)
        if isinstance(searches, Unknown):
            unknowns.append(searches)
            continue
        plans.append((package, searches))
        for search in searches:
            if search not in outcomes:
                pending[search.ecosystem].add(search)

    # Look up each ecosystem's undecided names once, and index the candidates by normalised name.
    # The lookup may return more than asked (a store index that folds case, other ecosystems'
    # entries): only entries whose own normalised name is one we asked for count.
    no_data = cache.no_data
    for ecosystem in sorted(pending):
        if covered_ecosystems is not None and ecosystem not in covered_ecosystems:
            no_data.add(ecosystem)
            continue
        wanted = {s.name for s in pending[ecosystem]}
        returned = lookup(ecosystem, sorted(wanted))
        if covered_ecosystems is None and not returned and not any(s.ecosystem == ecosystem for s in outcomes):
            no_data.add(ecosystem)
            continue
        candidates: dict[str, list[tuple[Advisory, Affected]]] = defaultdict(list)
        for advisory in returned:
            if advisory.withdrawn is not None:
                continue
            for affected in advisory.affected:
                if affected.ecosystem != ecosystem:
                    continue
                name = normalise_name(ecosystem, affected.name)
                if name in wanted:
                    candidates[name].append((advisory, affected))
        for search in sorted(pending[ecosystem], key=lambda s: (s.name, s.version, s.kind)):
            outcomes[search] = _decide(search, candidates.get(search.name, ()))

    findings: list[Finding] = []
    for package, searches in plans:
        if any(s.ecosystem in no_data for s in searches):
            unknowns.append(Unknown(kind="no-data", ecosystem=searches[0].ecosystem, package=package,
                                    reason=f"no advisory data for {searches[0].ecosystem}"))
            continue
        hits: dict[str, _Hit] = {}
        undecided: dict[str, str] = {}
        bad_version = ""
        for search in searches:
            outcome = outcomes[search]
            for advisory_id, hit in outcome.hits.items():
                if advisory_id in hits:
                    merged = hits[advisory_id]
                    merged.details.extend(hit.details)
                    merged.affected.extend(hit.affected)
                    merged.fixed.extend(v for v in hit.fixed if v not in merged.fixed)
                else:
                    hits[advisory_id] = _Hit(hit.advisory, list(hit.details), list(hit.affected), list(hit.fixed),
                                             hit.fixed_ecosystem)
            undecided.update(outcome.undecided)
            bad_version = bad_version or outcome.bad_version
        for advisory_id in hits:
            undecided.pop(advisory_id, None)  # decided by another entry or another search
        if undecided:
            unknowns.extend(_undecided_unknowns(package, searches, undecided, bad_version))
        for group in _alias_groups(hits):
            findings.append(_finding(package, [hits[i] for i in group]))

    if cve_lookup is not None and findings:
        findings = _with_cve_scores(findings, cve_lookup)
    if exploitability_lookup is not None and findings:
        findings = _with_exploitability(findings, exploitability_lookup)
    findings.sort(key=lambda f: (*_package_order(f.package), _id_order(f.id)))
    return MatchResult(findings, _summarise(unknowns))


def _decide(search: Search, candidates: Iterable[tuple[Advisory, Affected]]) -> _Outcome:
    outcome = _Outcome()
    candidates = list(candidates)
    if not candidates:
        return outcome
    parseable = False
    if search.version:
        try:
            sort_key(search.ecosystem, search.version)
            parseable = True
        except VersionError as exc:
            outcome.bad_version = str(exc)
    else:
        outcome.bad_version = "version unknown"
    for advisory, affected in candidates:
        try:
            verdict = judge(search.ecosystem, search.version, parseable, affected)
        except Unevaluable as exc:
            reason = outcome.undecided.get(advisory.id)
            outcome.undecided[advisory.id] = f"{reason}; {exc}" if reason else str(exc)
            continue
        if verdict is None:
            continue
        hit = outcome.hits.get(advisory.id)
        if hit is None:
            hit = outcome.hits[advisory.id] = _Hit(advisory, fixed_ecosystem=search.ecosystem)
        hit.details.append(_detail(search, advisory, verdict))
        hit.affected.append(affected)
        hit.fixed.extend(v for v in verdict.fixed if v not in hit.fixed)
    return outcome


def _detail(search: Search, advisory: Advisory, verdict: Verdict) -> MatchDetail:
    return MatchDetail(advisory_id=advisory.id, source=advisory.source, kind=search.kind, ecosystem=search.ecosystem,
                       name=search.name, version=search.version, ranges=verdict.ranges, listed=verdict.listed)


def _undecided_unknowns(package: Package, searches: tuple[Search, ...], undecided: dict[str, str],
                        bad_version: str) -> list[Unknown]:
    ecosystem = searches[0].ecosystem
    if bad_version:
        # One reason for all: the version, not the advisories, is what cannot be read.
        return [Unknown(kind="bad-version", ecosystem=ecosystem, package=package,
                        advisory_ids=tuple(sorted(undecided, key=_id_order)),
                        reason=f"{package.name} {package.version or '(no version)'}: {bad_version}; "
                               f"{len(undecided)} advisories for it cannot be checked")]
    return [Unknown(kind="unevaluable", ecosystem=ecosystem, package=package, advisory_ids=(advisory_id,),
                    reason=f"{advisory_id} for {package.name}: {reason}")
            for advisory_id, reason in sorted(undecided.items(), key=lambda kv: _id_order(kv[0]))]


def _summarise(unknowns: list[Unknown]) -> list[Unknown]:
    """Ecosystem-wide unknowns once per ecosystem (with a package count); the rest in package order."""
    wide: dict[tuple[str, str], list[Unknown]] = defaultdict(list)
    rest: list[Unknown] = []
    for unknown in unknowns:
        if unknown.kind in _ECOSYSTEM_WIDE:
            wide[(unknown.kind, unknown.ecosystem)].append(unknown)
        else:
            rest.append(unknown)
    out = [Unknown(kind=kind, ecosystem=ecosystem, package_count=len(items),
                   reason=f"{items[0].reason} ({len(items)} packages not judged)")
           for (kind, ecosystem), items in sorted(wide.items())]
    rest.sort(key=lambda u: (*(_package_order(u.package) if u.package else ()), u.kind, u.advisory_ids))
    return out + rest


# --- alias groups and findings --------------------------------------------------------------------------


def _alias_groups(hits: dict[str, _Hit]) -> list[list[str]]:
    """Advisory ids of ``hits`` grouped transitively by shared id/aliases (union-find)."""
    parent = {advisory_id: advisory_id for advisory_id in hits}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[str, str] = {}
    for advisory_id in sorted(hits):
        for name in (advisory_id, *hits[advisory_id].advisory.aliases):
            if name in owner:
                a, b = root(owner[name]), root(advisory_id)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[name] = advisory_id
    groups: dict[str, list[str]] = defaultdict(list)
    for advisory_id in hits:
        groups[root(advisory_id)].append(advisory_id)
    return [sorted(g, key=_representative_order) for g in groups.values()]


def _finding(package: Package, group: list[_Hit]) -> Finding:
    primary = group[0].advisory
    ids = tuple(h.advisory.id for h in group)
    names = {a for h in group for a in (h.advisory.id, *h.advisory.aliases)} - {primary.id}
    aliases = tuple(sorted(names, key=_alias_order))
    upstream = tuple(sorted({u for h in group for u in h.advisory.upstream}, key=_alias_order))
    fixed = _sorted_versions(group)
    pick = severity.pick((h.advisory, h.affected) for h in group)
    details = tuple(sorted((d for h in group for d in h.details),
                           key=lambda d: (_id_order(d.advisory_id), d.kind, d.name, d.version)))
    return Finding(
        id=primary.id, package=package, installed_version=package.version, advisory_ids=ids, aliases=aliases,
        upstream=upstream, summary=next((h.advisory.summary for h in group if h.advisory.summary), ""),
        fixed_versions=fixed, fix_available=bool(fixed), severity=pick.label, severity_source=pick.source,
        cvss_score=pick.cvss_score, cvss_vector=pick.cvss_vector, cvss_source=pick.cvss_source,
        layer_digest=package.layer_digest, details=details,
    )


def _sorted_versions(group: list[_Hit]) -> tuple[str, ...]:
    keyed: dict[str, Any] = {}
    for hit in group:
        for version in hit.fixed:
            if version not in keyed:
                keyed[version] = sort_key(hit.fixed_ecosystem, version)  # parsed already by judge
    return tuple(sorted(keyed, key=keyed.__getitem__))


def _cves(finding: Finding) -> list[str]:
    """The CVE ids a finding stands for: KEV and EPSS are keyed by CVE (a DSA's are its upstream)."""
    return sorted({n for n in (*finding.advisory_ids, *finding.aliases, *finding.upstream) if n.startswith("CVE-")})


def _with_cve_scores(findings: list[Finding], lookup: CveLookup) -> list[Finding]:
    """A CVSS from the CVEs' NVD records for findings whose advisories give none (PyPA's rarely do).

    The label follows the usual rule: a vendor rating the advisories gave stays; a finding that
    had none is labelled from NVD's score, with ``severity_source`` saying which CVSS version.
    """
    unscored = [f for f in findings if f.cvss_score is None]
    wanted = sorted({cve for f in unscored for cve in _cves(f)})
    if not wanted:
        return findings
    records = lookup(wanted)
    out = []
    for finding in findings:
        nvd = [a for c in _cves(finding) for a in records.get(c, ())] if finding.cvss_score is None else []
        scored = severity.pick((a, ()) for a in nvd) if nvd else None
        if scored is None or scored.cvss_score is None:
            out.append(finding)
            continue
        label, source = finding.severity, finding.severity_source
        if label == "unknown":
            label, source = scored.label, scored.source
        out.append(replace(finding, severity=label, severity_source=source, cvss_score=scored.cvss_score,
                           cvss_vector=scored.cvss_vector, cvss_source=scored.cvss_source))
    return out


def _with_exploitability(findings: list[Finding],
                         lookup: ExploitabilityLookup | Mapping[str, Exploitability]) -> list[Finding]:
    """KEV flag (earliest date added) and EPSS (highest score, with its percentile) over each finding's CVEs."""
    wanted = sorted({cve for f in findings for cve in _cves(f)})
    facts: Mapping[str, Exploitability] = lookup if isinstance(lookup, Mapping) else lookup(wanted)
    out = []
    for finding in findings:
        known = [facts[c] for c in _cves(finding) if c in facts]
        if not known:
            out.append(finding)
            continue
        kev = min((f.kev_date_added for f in known if f.kev_date_added), default="")
        best = max((f for f in known if f.epss is not None), key=lambda f: (f.epss, f.cve), default=None)
        out.append(replace(finding, kev=bool(kev), kev_date_added=kev,
                           epss=best.epss if best else None, epss_percentile=best.epss_percentile if best else None))
    return out


# --- orders ---------------------------------------------------------------------------------------------

_DIGITS = re.compile(r"(\d+)")


@lru_cache(maxsize=1 << 16)
def _id_order(advisory_id: str) -> tuple[object, ...]:
    """Natural order: PYSEC-2021-9 before PYSEC-2021-10."""
    return tuple(int(p) if p.isdigit() else p for p in _DIGITS.split(advisory_id))


@lru_cache(maxsize=1 << 16)
def _representative_order(advisory_id: str) -> tuple[object, ...]:
    prefix = advisory_id.split("-", 1)[0]
    rank = {"GHSA": 1, "CVE": 2}.get(prefix, 0)
    return (rank, _id_order(advisory_id))


@lru_cache(maxsize=1 << 16)
def _alias_order(name: str) -> tuple[object, ...]:
    return (0 if name.startswith("CVE-") else 1, _id_order(name))


def _package_order(package: Package) -> tuple[str, ...]:
    return (package.ecosystem, package.name, package.version, package.location, package.arch, package.purl)
