"""An obviously-correct oracle for "which OSV records affect this package version", independent of keelwatch.

It reads the raw OSV JSON from the shared zips with ``json`` (not ``keelwatch.feeds.osv``), compares
names with ``packaging.utils.canonicalize_name`` or as published (not ``keelwatch.match.names``),
orders versions with ``packaging.version`` for PyPI and with the line-by-line ports of dpkg's and
SemVer's comparison code in ``tests/versions/oracles.py`` (themselves checked against dpkg), and
decides ranges by a different formulation than keelwatch's sorted walk:

    v is inside a range iff (no limit, or v < some limit) and there is an ``introduced`` I <= v
    (I = "0" is below everything) such that no ``fixed`` F has I <= F <= v and no
    ``last_affected`` L has I <= L < v.

That is the OSV schema's evaluation stated as intervals: each ``introduced`` opens one, the first
``fixed`` at or after it closes it (``fixed`` = first safe version), the first ``last_affected`` at
or after it closes it after that version. A record affects the package when any of its entries for
that ecosystem and name lists the version in ``versions`` or holds it in an ECOSYSTEM/SEMVER range.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: for versions.oracles
from versions.oracles import dpkg, semver  # noqa: E402

Compare = Callable[[str, str], int]


class Undecidable(Exception):
    """The record cannot be decided for this version: keelwatch must report an Unknown."""


def raw_records(path: Path) -> list[dict]:
    with zipfile.ZipFile(path) as archive:
        return [json.loads(archive.read(n)) for n in sorted(archive.namelist()) if n.endswith(".json")]


def _pep440(a: str, b: str) -> int:
    try:
        va, vb = Version(a), Version(b)
    except InvalidVersion as exc:
        raise Undecidable(f"not a PEP 440 version: {exc}") from None
    return (va > vb) - (va < vb)


_MAVEN_QUALIFIERS = {"alpha": 0, "a": 0, "beta": 1, "b": 1, "milestone": 2, "m": 2, "rc": 3, "cr": 3,
                     "snapshot": 4, "": 5, "ga": 5, "final": 5, "release": 5, "sp": 6}
_MAVEN = re.compile(r"^(\d+(?:\.\d+)*)(?:[-.]?([a-z]+)[-.]?(\d*))?$")


def _maven_parse(version: str) -> tuple[list[int], int, int]:
    match = _MAVEN.match(version.lower())
    if not match or (match.group(2) or "") not in _MAVEN_QUALIFIERS:
        raise Undecidable(f"not a Maven version of the simple form N[.N…][-qualifier[N]]: {version!r}")
    numbers = [int(x) for x in match.group(1).split(".")]
    while numbers and numbers[-1] == 0:
        numbers.pop()  # Maven: 1.0 == 1 == 1.0.0
    return numbers, _MAVEN_QUALIFIERS[match.group(2) or ""], int(match.group(3) or 0)


def _maven(a: str, b: str) -> int:
    """Maven's order for numbers with an optional well-known qualifier (the shapes in the shared subset).

    Maven's ComparableVersion: trailing zeros do not count, and alpha < beta < milestone < rc <
    snapshot < release (ga, final) < sp. Anything else is undecidable here.
    """
    ta, tb = _maven_parse(a), _maven_parse(b)
    return (ta > tb) - (ta < tb)


def _semver(a: str, b: str) -> int:
    return semver(a, b)


COMPARE: dict[str, Compare] = {
    "PyPI": _pep440,
    "Debian": dpkg,
    "Go": _semver,
    "npm": _semver,
    "Maven": _maven,
}


def canonical(ecosystem: str, name: str) -> str:
    return canonicalize_name(name) if ecosystem == "PyPI" else name


@dataclass(frozen=True)
class Package:
    """What the oracle is asked about: the (source) name and version a record must name."""

    ecosystem: str  # as records write it: PyPI, Debian:11, Go
    name: str
    version: str


def _inside(version: str, events: list[dict], cmp: Compare) -> str | None:
    """The interval of ``events`` holding ``version``, spelled out; None when outside."""
    introduced = [e["introduced"] for e in events if "introduced" in e]
    fixed = [e["fixed"] for e in events if "fixed" in e]
    last = [e["last_affected"] for e in events if "last_affected" in e]
    limits = [e["limit"] for e in events if "limit" in e]
    if limits and "*" not in limits and not any(cmp(version, lim) < 0 for lim in limits):
        return None

    def at_or_after(bound: str, opened: str) -> bool:
        return opened == "0" or cmp(opened, bound) <= 0

    for opened in introduced:
        if opened != "0" and cmp(opened, version) > 0:
            continue
        if any(at_or_after(f, opened) and cmp(f, version) <= 0 for f in fixed):
            continue
        if any(at_or_after(la, opened) and cmp(la, version) < 0 for la in last):
            continue
        closers = [f"fixed {f}" for f in fixed if cmp(f, version) > 0 and at_or_after(f, opened)]
        closers += [f"last_affected {la}" for la in last if cmp(la, version) >= 0 and at_or_after(la, opened)]
        closers.sort(key=lambda c: _Key(c.split(" ", 1)[1], cmp))
        return f"introduced {opened} → {closers[0] if closers else 'no fix'}"
    return None


class _Key:
    def __init__(self, version: str, cmp: Compare) -> None:
        self.version, self.cmp = version, cmp

    def __lt__(self, other: _Key) -> bool:
        return self.cmp(self.version, other.version) < 0


def why_affected(package: Package, affected: dict) -> str | None:
    """Why the entry covers ``package`` (None when it does not); raises ``Undecidable``."""
    cmp = COMPARE[package.ecosystem.split(":", 1)[0]]
    reasons = []
    listed = affected.get("versions") or []
    if package.version in listed or any(_equal(package.version, v, cmp) for v in listed):
        reasons.append(f"versions list names {package.version}")
    ordered = [r for r in affected.get("ranges") or [] if r["type"] in ("ECOSYSTEM", "SEMVER")]
    problems = []
    for rng in ordered:
        try:
            inside = _inside(package.version, rng["events"], cmp)
        except Undecidable as exc:
            problems.append(str(exc))
            continue
        if inside:
            reasons.append(f"{rng['type']} range {inside} contains {package.version}")
    if reasons:
        return "; ".join(reasons)
    if problems:
        raise Undecidable("; ".join(problems))
    if not ordered and not listed:
        raise Undecidable("no ECOSYSTEM/SEMVER range and no versions list")
    return None


def _equal(a: str, b: str, cmp: Compare) -> bool:
    try:
        return cmp(a, b) == 0
    except (Undecidable, ValueError):
        return False


@dataclass(frozen=True)
class Expectation:
    advisory: str
    package: Package
    verdict: str  # affected | unknown
    why: str


def expectations(packages: Iterable[Package], records: Iterable[dict]) -> list[Expectation]:
    """Every (record, package) the oracle says is affected or undecidable; withdrawn records never match."""
    by_name: dict[tuple[str, str], list[tuple[dict, dict]]] = {}
    for record in records:
        if record.get("withdrawn"):
            continue
        for affected in record.get("affected", []):
            pkg = affected.get("package") or {}
            key = (pkg.get("ecosystem", ""), canonical(pkg.get("ecosystem", "").split(":")[0], pkg.get("name", "")))
            by_name.setdefault(key, []).append((record, affected))
    out: list[Expectation] = []
    for package in sorted(set(packages), key=lambda p: (p.ecosystem, p.name, p.version)):
        key = (package.ecosystem, canonical(package.ecosystem.split(":")[0], package.name))
        decided: dict[str, list[str]] = {}
        undecided: dict[str, str] = {}
        for record, affected in by_name.get(key, []):
            try:
                why = why_affected(package, affected)
            except Undecidable as exc:
                undecided[record["id"]] = str(exc)
                continue
            if why:
                decided.setdefault(record["id"], []).append(why)
        for advisory, whys in decided.items():
            out.append(Expectation(advisory, package, "affected", " | ".join(whys)))
        for advisory, why in undecided.items():
            if advisory not in decided:
                out.append(Expectation(advisory, package, "unknown", why))
    return out
