"""Distro packages (dpkg, apk, rpm): judged by their release's own advisories, through the source package.

Debian's tracker, Ubuntu's and Alpine's secdb write advisories per *source* package (``openssl``),
never per binary (``libssl1.1``), with the *source* version that fixed it: so a binary is looked
up by its source name and compared at its source version. dpkg itself defines that version as the
``Source: name (version)`` one when given and the binary's own version otherwise
(``${source:Version}``, lib/dpkg/pkg-format.c); Trivy compares exactly that
(``utils.FormatSrcVersion``, with its dpkg analyzer filling the source version from the binary's
as dpkg does) and Grype searches the upstream (source) package at its upstream version. It matters
for binNMUs — ``libbz2-1.0`` ``1.0.8-5+b1`` is built from ``bzip2`` ``1.0.8-5``, and a fix is
published as a source version — and for binaries whose version differs from the source's (an epoch
only the binary carries would otherwise put it above every fix).
Our catalogers set ``source_version`` to the binary version when the database names no other.

RPM distros (Red Hat, AlmaLinux, Rocky, SUSE …) publish per *binary* package, some per source:
like Grype's rpm matcher we search both names, each at its own version.

Data is per release (``Debian:11``); a package whose release is unknown cannot be judged by any
release's data, and says so.
"""

from __future__ import annotations

from keelwatch.match.base import Search
from keelwatch.model import Package, Unknown
from keelwatch.names import ecosystem_family, normalise_name

# Ecosystem families whose advisories name source packages only.
_PER_SOURCE = frozenset({"Debian", "Ubuntu", "Alpine", "Alpaquita", "BellSoft Hardened Containers", "Chainguard",
                         "MinimOS", "Wolfi"})
# Ecosystem families whose advisories may name binary or source packages: search both.
_PER_BINARY_AND_SOURCE = frozenset({"AlmaLinux", "Amazon Linux", "Azure Linux", "CentOS", "Fedora", "Mageia",
                                    "Mariner", "openEuler", "openSUSE", "Oracle Linux", "Photon OS", "Red Hat",
                                    "Rocky Linux", "SUSE"})
# Rolling distros: one ecosystem, no release suffix to ask for.
_ROLLING = frozenset({"Wolfi", "Chainguard", "MinimOS"})
DISTRO_FAMILIES = _PER_SOURCE | _PER_BINARY_AND_SOURCE


class DistroMatcher:
    name = "distro"

    def handles(self, package: Package) -> bool:
        return package.kind == "os" or ecosystem_family(package.ecosystem) in DISTRO_FAMILIES

    def searches(self, package: Package, image_ecosystem: str | None) -> tuple[Search, ...] | Unknown:
        ecosystem = _release_ecosystem(package.ecosystem, image_ecosystem)
        family = ecosystem_family(ecosystem)
        if not ecosystem or family not in DISTRO_FAMILIES:
            return Unknown(kind="no-release", package=package, ecosystem=package.ecosystem,
                           reason=f"distro unknown (ecosystem {package.ecosystem or 'empty'!r}): "
                                  f"no distro's data can judge its packages")
        if ":" not in ecosystem and family not in _ROLLING:
            return Unknown(kind="no-release", package=package, ecosystem=ecosystem,
                           reason=f"{family} release unknown: advisories are per release, so none can judge "
                                  f"its packages")
        source = package.source_name or package.name
        # The source version when the database names one; the binary's otherwise (a source
        # without a version in dpkg's ``Source:`` field has the binary's version).
        source_version = package.source_version or package.version
        source_search = Search(ecosystem, normalise_name(ecosystem, source), source_version,
                               "direct" if source == package.name else "source")
        if family in _PER_SOURCE or source == package.name:
            return (source_search,)
        return (Search(ecosystem, normalise_name(ecosystem, package.name), package.version, "direct"), source_search)


def _release_ecosystem(ecosystem: str, image_ecosystem: str | None) -> str:
    """The package's ecosystem with its release; the image's when the cataloger could not tell it."""
    if not image_ecosystem:
        return ecosystem
    if not ecosystem or (":" not in ecosystem and ecosystem_family(image_ecosystem) == ecosystem):
        return image_ecosystem
    return ecosystem
