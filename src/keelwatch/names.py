"""Package names as each ecosystem compares them: one normal form for a package and its advisories.

An advisory names a package as its author typed it (``PyYAML``, ``pyyaml``, ``Py_YAML`` are one
project on PyPI); a cataloger names it as the installed metadata spells it. Both sides go through
``normalise_name`` before they meet, in the matcher and in the store's (ecosystem, name) index, so
the two must be the same function: this one, which (like ``model`` and ``versions``) imports
nothing else of keelwatch, so both the store and the matcher may use it.

The rules follow each registry's own notion of "the same name", never a guess that could join two
different projects (fuzzy matching is how Grype collected years of false positives):

- PyPI: PEP 503 — lowercase, runs of ``-``, ``_``, ``.`` become one ``-``.
- npm: case-sensitive, as published; a scope stays part of the name (``@babel/core``). The registry
  refuses new upper-case names but old ones (``JSONStream``) exist beside their lower-case squatters.
- Maven: ``group:artifact`` as published (Maven Central paths are case-sensitive); a coordinate
  written with ``/`` (a purl's namespace/name) is rewritten with ``:``.
- Go: module paths as-is (``/v2`` is a different module); the toolchain is ``stdlib``.
- Debian, Ubuntu, Alpine, RPM distros: the package name as the distro writes it (Debian policy
  keeps them lowercase already; RPM names are case-sensitive). Which name (binary or source) is
  looked up is the distro matcher's business, not this function's.
- crates.io: lowercase, ``_`` as ``-``: crates.io refuses a new crate whose name differs from an
  existing one only by case or ``-``/``_``, so this joins nothing that could be two crates.
- RubyGems: as published: rubygems.org's uniqueness check on gem names is case-sensitive, so two
  gems may differ only by case; lowercasing could join them.
- Packagist: lowercase ``vendor/name`` (Composer requires lowercase; old mixed-case input exists).
- NuGet: case-insensitive ids, compared lowercase (NuGet's own rule).
- Hex, Pub: lowercase (both registries only allow lowercase names).
- anything else: as published, stripped of surrounding space.
"""

from __future__ import annotations

import re
from functools import lru_cache

_PEP503 = re.compile(r"[-_.]+")


def _pypi(name: str) -> str:
    return _PEP503.sub("-", name).lower()


def _maven(name: str) -> str:
    # pkg:maven/group/artifact spells the separator as '/'; OSV and our catalogers use ':'.
    if ":" not in name and name.count("/") == 1:
        return name.replace("/", ":")
    return name


def _crates(name: str) -> str:
    return name.lower().replace("_", "-")


def _lower(name: str) -> str:
    return name.lower()


def _as_published(name: str) -> str:
    return name


# OSV ecosystem (the part before any ':') → rule. Missing means "as published".
_RULES = {
    "PyPI": _pypi,
    "Maven": _maven,
    "crates.io": _crates,
    "Packagist": _lower,
    "NuGet": _lower,
    "Hex": _lower,
    "Pub": _lower,
}


def ecosystem_family(ecosystem: str) -> str:
    """``Debian:12`` → ``Debian``; ``PyPI`` → ``PyPI`` (OSV puts a release after the first colon)."""
    return ecosystem.split(":", 1)[0]


# The store calls the family the "base" (its ``affected.ecosystem_base`` column).
ecosystem_base = ecosystem_family


@lru_cache(maxsize=1 << 16)
def normalise_name(ecosystem: str, name: str) -> str:
    """The form of ``name`` under which ``ecosystem`` considers two spellings the same package."""
    rule = _RULES.get(ecosystem_family(ecosystem), _as_published)
    return rule(name.strip())


__all__ = ["ecosystem_base", "ecosystem_family", "normalise_name"]
