"""Alpine packages (and the other apk distributions, Wolfi and Chainguard): ``lib/apk/db/installed``.

The installed database of apk-tools is one stanza per package, blank-line separated, one
``X:value`` field a line (apk-tools ``doc/apk-package.5``): ``P`` name, ``V`` version, ``A`` arch,
``o`` origin (the aports source package, which Alpine's advisories name), ``L`` license, ``F`` a
directory the package owns and each following ``R`` a file in it. apk-tools 3 may keep the same
file under ``usr/lib/apk/db/``.

Ecosystem (decided in ``complete``, once os-release is known): Alpine releases by branch
(``Alpine:v3.19``, from ``VERSION_ID`` 3.19.1); Wolfi and Chainguard are rolling, and OSV names
them without a version. An apk database with no os-release keelwatch knows is taken as Alpine of
an unknown branch (``Alpine``), as dpkg takes one as Debian: the family is known, the release not.
The purl is Trivy's shape: ``pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=3.19.1``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from keelwatch.catalog.base import CatalogFile, FileView, Want
from keelwatch.catalog.purl import purl
from keelwatch.images.layers import TarEntry
from keelwatch.model import OSRelease, Package

INSTALLED_PATHS = frozenset({"lib/apk/db/installed", "usr/lib/apk/db/installed"})
# os-release IDs whose packages apk installs, and whose OSV ecosystems carry no release.
_ROLLING = {"wolfi": "Wolfi", "chainguard": "Chainguard"}


def parse_installed(text: str) -> Iterator[list[tuple[str, str]]]:
    """Stanzas as (field letter, value) pairs in file order: ``R`` lines mean "in the last ``F``"."""
    fields: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if fields:
                yield fields
            fields = []
            continue
        # Every line apk writes is one letter, a colon, the value: anything else is not its database.
        if len(line) < 2 or line[1] != ":":
            raise ValueError(f"line {number} of the apk database is not a field: {line[:80]!r}")
        fields.append((line[0], line[2:]))
    if fields:
        yield fields


class ApkCataloger:
    name = "apk"
    version = 1
    uses_companions = False

    def wants(self, entry: TarEntry) -> Want:
        return Want.PRIMARY if entry.path in INSTALLED_PATHS else Want.NO

    def parse(self, file: CatalogFile, view: FileView) -> Iterator[Package]:
        packages = []
        for fields in parse_installed(file.content.decode("utf-8", "replace")):
            name, version = _first(fields, "P"), _first(fields, "V")
            if not name or not version:
                raise ValueError(f"apk database stanza without a name or version: {name or version or '?'}")
            license_ = _first(fields, "L")
            packages.append(Package(
                ecosystem="", name=name, version=version, kind="os",
                source_name=_first(fields, "o") or name, source_version=version,
                arch=_first(fields, "A"), files=_files(fields), licenses=(license_,) if license_ else (),
            ))
        # Parsed fully before yielding: a corrupt stanza fails the file as one warning, not half of it.
        yield from packages

    def complete(self, package: Package, os: OSRelease | None) -> Package:
        known = os is not None and (os.id == "alpine" or os.id in _ROLLING)
        if os is not None and os.id in _ROLLING:
            ecosystem, namespace = _ROLLING[os.id], os.id
        else:
            ecosystem = (os.ecosystem if os is not None and known else None) or "Alpine"
            namespace = "alpine"
        # Another distribution's release number would mislabel Alpine packages: no distro then.
        distro = os.version_id if os is not None and known else ""
        return dataclasses.replace(
            package, ecosystem=ecosystem,
            purl=purl("apk", package.name, package.version, namespace=namespace,
                      qualifiers={"arch": package.arch, "distro": distro}),
        )


def _first(fields: list[tuple[str, str]], key: str) -> str:
    return next((value.strip() for k, value in fields if k == key), "")


def _files(fields: list[tuple[str, str]]) -> tuple[str, ...]:
    """Files owned, root-relative: each ``R`` is a file in the directory of the ``F`` before it."""
    directory = ""
    files = []
    for key, value in fields:
        if key == "F":
            directory = value.strip().strip("/")
        elif key == "R":
            files.append(f"{directory}/{value}" if directory else value)
    return tuple(files)
