"""Matching: installed packages against advisories → findings, and what could not be judged.

Public API:

- ``match_packages(packages, advisories_lookup, exploitability_lookup=None, *, image_ecosystem=None)
  -> MatchResult(findings, unknowns)`` — model in, model out, no database of its own: with a
  ``Store``, ``match_packages(packages, store, store.exploitability, image_ecosystem=…)``.
- ``normalise_name(ecosystem, name)``: the name form both sides of a match (and the store's index) use.
- ``AdvisoryIndex``: an in-memory ``advisories_lookup`` over parsed advisories.
- ``MATCHERS``: the registry, one line per matcher, first match wins.

Adding a matcher: one module with one class (``name``, ``handles``, ``searches``: see ``base.py``),
one line in ``MATCHERS`` before any matcher that would also handle its packages, and its tests in
``tests/match/``.
"""

from __future__ import annotations

from keelwatch.match.base import (
    AdvisoryLookup,
    AdvisorySource,
    CoverageAware,
    ExploitabilityLookup,
    Matcher,
    Search,
)
from keelwatch.match.distro import DistroMatcher
from keelwatch.match.index import AdvisoryIndex
from keelwatch.match.language import LanguageMatcher
from keelwatch.match.matcher import MatchResult, match_packages
from keelwatch.names import normalise_name

# Explicit, in the order they are asked: distro packages first (an OS package is judged by its
# release's data even when its name looks like a language package's).
MATCHERS: tuple[Matcher, ...] = (
    DistroMatcher(),
    LanguageMatcher(),
)


def _check(matchers: tuple[Matcher, ...]) -> None:
    names = [m.name for m in matchers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RuntimeError(f"matcher(s) registered twice: {', '.join(duplicates)}")


_check(MATCHERS)

__all__ = [
    "MATCHERS",
    "AdvisoryIndex",
    "AdvisoryLookup",
    "AdvisorySource",
    "CoverageAware",
    "ExploitabilityLookup",
    "MatchResult",
    "Matcher",
    "Search",
    "match_packages",
    "normalise_name",
]
