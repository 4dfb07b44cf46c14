"""The one small protocol every matcher implements, and the lookup callables the core is given.

A matcher (Grype's shape: ``grype/matcher/dpkg``, ``…/python``) only decides *what to search for*
a package: which ecosystem, which name, which version, found how. Everything after that — looking
advisories up, deciding ranges, grouping aliases, building findings — is the same for every
ecosystem and lives in ``matcher.py``; version order lives in ``keelwatch.versions``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from keelwatch.model import Advisory, Exploitability, Package, Unknown

#: ``(ecosystem, normalised names) -> advisories`` naming any of them in that ecosystem. It may
#: return more than asked (withdrawn records, other ecosystems' entries, names that only fold to
#: the same case): the matcher filters by its own rules.
AdvisoryLookup = Callable[[str, Sequence[str]], Sequence[Advisory]]

#: ``CVE ids -> {cve: what KEV and EPSS say}`` for those anybody says something about; one call per
#: match run (``Store.exploitability`` fits). A plain mapping is accepted as well.
ExploitabilityLookup = Callable[[Iterable[str]], Mapping[str, Exploitability]]
# CVE ids → the CVE records (NVD) that score them, for findings whose advisories give no CVSS.
CveLookup = Callable[[Iterable[str]], Mapping[str, Sequence[Advisory]]]


class AdvisorySource(Protocol):
    """An object holding advisories (``Store``, ``AdvisoryIndex``): its ``advisories_for`` is the lookup."""

    def advisories_for(self, ecosystem: str, names: Sequence[str]) -> Sequence[Advisory]: ...


class CoverageAware(Protocol):
    """Optional ability of a lookup: which ecosystems the store holds any advisory for at all.

    Without it "no advisory names this package" and "the store knows nothing about Debian:12"
    look the same; with it the second becomes a visible ``Unknown`` (Clair answered
    "0 vulnerabilities" when its feeds were missing: quay/clair#1158).
    """

    def ecosystems(self) -> Collection[str]: ...


@dataclass(frozen=True, slots=True)
class Search:
    """One question to the advisory data: is ``version`` of ``name`` affected in ``ecosystem``?"""

    ecosystem: str
    name: str  # normalised (``names.normalise_name``)
    version: str
    kind: str  # "direct": the package's own name; "source": its distro source package


class Matcher(Protocol):
    #: Registry name = module name (``match/distro.py`` → ``distro``).
    name: str

    def handles(self, package: Package) -> bool:
        """Whether this matcher judges ``package`` (the first matcher in the registry that does, wins)."""
        ...

    def searches(self, package: Package, image_ecosystem: str | None) -> tuple[Search, ...] | Unknown:
        """What to look up for ``package``; an ``Unknown`` when that cannot be said (no release known)."""
        ...
