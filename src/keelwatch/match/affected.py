"""Does one OSV ``affected`` entry cover one installed version? (The OSV schema's evaluation rules.)

A version is affected when it is in the entry's ``versions`` list *or* inside one of its
``ECOSYSTEM``/``SEMVER`` ranges (``keelwatch.versions.in_range`` walks the events: ``introduced``,
``fixed``, ``last_affected``, ``limit``). An entry with ``introduced: 0`` and no fix is "affected,
no fix yet" (Debian's ``<unfixed>``); "not affected" is the absence of an entry.

What cannot be decided raises ``Unevaluable`` so the caller records an Unknown, never "clean":

- ``GIT`` ranges need the commit the package was built from, which an installed package does not
  carry; they are skipped, and an entry that has nothing but ``GIT`` ranges (and no ``versions``)
  cannot be judged at all.
- an entry with neither ranges nor versions (osv-scanner warns "probably a mistake" and skips it).
- a range whose bounds do not parse in the ecosystem, or an unknown range type.
- an installed version that does not parse, unless the ``versions`` list names it verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from keelwatch.errors import VersionError
from keelwatch.model import Affected, AffectedRange
from keelwatch.versions import in_range, sort_key

_ORDERED = ("ECOSYSTEM", "SEMVER")


class Unevaluable(Exception):
    """An affected entry (or the installed version) that cannot be decided: an Unknown, with this reason."""


@dataclass(frozen=True, slots=True)
class Verdict:
    ranges: tuple[AffectedRange, ...]  # the ranges containing the version
    listed: bool  # the version is in the entry's ``versions`` list
    fixed: tuple[str, ...]  # fix versions above the installed one, from the ranges that decided


def judge(ecosystem: str, version: str, parseable: bool, affected: Affected) -> Verdict | None:
    """The verdict for ``version`` against ``affected``; None when not affected.

    ``parseable`` says whether ``version`` has a sort key in ``ecosystem`` (the caller checked once).
    """
    listed = version in affected.versions
    ordered = [r for r in affected.ranges if r.type in _ORDERED]
    unknown_types = sorted({r.type for r in affected.ranges if r.type not in _ORDERED and r.type != "GIT"})
    if not listed and not parseable and (ordered or affected.versions):
        raise Unevaluable(f"installed version {version!r} cannot be ordered in {ecosystem}")
    hits: list[AffectedRange] = []
    problems: list[str] = []
    if parseable:
        for rng in ordered:
            try:
                if in_range(ecosystem, version, _events(rng.events)):
                    hits.append(rng)
            except VersionError as exc:
                problems.append(f"{rng.type} range {_spell(rng)}: {exc}")
    if not listed and parseable and affected.versions:
        listed = _listed_equal(ecosystem, version, affected.versions)
    if hits or listed:
        return Verdict(tuple(hits), listed, _fixed_above(ecosystem, version, hits or ordered))
    if problems:
        raise Unevaluable("; ".join(problems))
    if not ordered and not affected.versions:
        if affected.ranges and not unknown_types:
            raise Unevaluable("only GIT ranges (commits), no versions: cannot be matched to an installed version")
        if unknown_types:
            raise Unevaluable(f"only ranges of unknown type {', '.join(unknown_types)}")
        raise Unevaluable("no ranges and no versions")
    return None


@lru_cache(maxsize=1 << 16)
def _events(events: tuple[tuple[str, str], ...]) -> tuple[dict[str, str], ...]:
    """The model's (kind, version) pairs in the OSV form ``in_range`` reads, built once per distinct range."""
    return tuple({kind: value} for kind, value in events)


def _listed_equal(ecosystem: str, version: str, versions: tuple[str, ...]) -> bool:
    """The list names the version in another spelling (PEP 440 ``1.0`` == ``1.0.0``)."""
    if not versions:
        return False
    target = sort_key(ecosystem, version)
    keys = _listed_keys(ecosystem, versions)
    if keys is not None:
        return target in keys
    return any(key == target for key in _keys(ecosystem, versions))


# PyPI lists run to hundreds of versions per entry: key each list once per process (content-keyed, so
# equal lists from separate store reads share the entry) and answer membership by hashing.
@lru_cache(maxsize=1 << 14)
def _listed_keys(ecosystem: str, versions: tuple[str, ...]) -> frozenset[Any] | None:
    try:
        return frozenset(_keys(ecosystem, versions))
    except TypeError:
        return None  # a scheme whose keys do not hash: compare one by one


def _keys(ecosystem: str, versions: tuple[str, ...]) -> list[Any]:
    out = []
    for listed in versions:
        try:
            out.append(sort_key(ecosystem, listed))
        except VersionError:
            continue  # a legacy string the ecosystem cannot order: only a verbatim match finds it
    return out


def _fixed_above(ecosystem: str, version: str, ranges: list[AffectedRange]) -> tuple[str, ...]:
    """``fixed`` events above the installed version, in the ecosystem's order.

    Fixes at or below it belong to older branches (Go's ``fixed 1.23.8, introduced 1.24.0-0,
    fixed 1.24.2`` for an installed 1.24.1): not an upgrade path, so not reported.
    """
    try:
        installed = sort_key(ecosystem, version)
    except VersionError:
        installed = None
    keyed: dict[str, Any] = {}
    for rng in ranges:
        for kind, value in rng.events:
            if kind != "fixed" or value in keyed:
                continue
            try:
                key = sort_key(ecosystem, value)
            except VersionError:
                continue
            if installed is None or key > installed:
                keyed[value] = key
    return tuple(sorted(keyed, key=keyed.__getitem__))


def _spell(rng: AffectedRange) -> str:
    return ", ".join(f"{kind} {value}" for kind, value in rng.events)
