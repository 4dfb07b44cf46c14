"""Language packages (PyPI, npm, Go, Maven, crates.io, RubyGems, Packagist, NuGet …): by ecosystem and name.

One search per package: its own normalised name at its own version. Go binaries carry the
toolchain as the module ``stdlib``, which is what the Go vulnerability database calls the standard
library. Go advisories also list the vulnerable packages and symbols
(``ecosystem_specific.imports``); keelwatch matches at module level, as Trivy and Grype do: a
binary that links the module at an affected version is reported even if it never calls the
vulnerable symbol (govulncheck's call-graph analysis needs the program, not a binary's build info).
"""

from __future__ import annotations

from keelwatch.match.base import Search
from keelwatch.model import Package, Unknown
from keelwatch.names import normalise_name


class LanguageMatcher:
    name = "language"

    def handles(self, package: Package) -> bool:
        return package.kind != "os" and bool(package.ecosystem)

    def searches(self, package: Package, image_ecosystem: str | None) -> tuple[Search, ...] | Unknown:
        ecosystem = package.ecosystem
        return (Search(ecosystem, normalise_name(ecosystem, package.name), package.version, "direct"),)
