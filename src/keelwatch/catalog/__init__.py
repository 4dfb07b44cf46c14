"""Catalogers: one per file, one class each, listed here one line per cataloger.

The registry is an explicit tuple (no import-time self-registration): a duplicate name fails at
import, and a test fails if a cataloger module is not listed.
"""

from __future__ import annotations

from keelwatch.catalog.apk import ApkCataloger
from keelwatch.catalog.base import Cataloger, CatalogFile, FileView, Want
from keelwatch.catalog.dotnet import DotnetCataloger
from keelwatch.catalog.dpkg import DpkgCataloger
from keelwatch.catalog.golang import GolangCataloger
from keelwatch.catalog.java import JavaCataloger
from keelwatch.catalog.npm import NpmCataloger
from keelwatch.catalog.php import PhpCataloger
from keelwatch.catalog.python import PythonCataloger
from keelwatch.catalog.rpm import RpmCataloger
from keelwatch.catalog.ruby import RubyCataloger
from keelwatch.catalog.rust import RustCataloger

CATALOGERS: tuple[Cataloger, ...] = (
    ApkCataloger(),
    DotnetCataloger(),
    DpkgCataloger(),
    GolangCataloger(),
    JavaCataloger(),
    NpmCataloger(),
    PhpCataloger(),
    PythonCataloger(),
    RpmCataloger(),
    RubyCataloger(),
    RustCataloger(),
)


def _index(catalogers: tuple[Cataloger, ...]) -> dict[str, Cataloger]:
    by_name: dict[str, Cataloger] = {}
    for cataloger in catalogers:
        if cataloger.name in by_name:
            raise RuntimeError(f"cataloger {cataloger.name!r} registered twice")
        by_name[cataloger.name] = cataloger
    return by_name


CATALOGERS_BY_NAME = _index(CATALOGERS)


def select(names: list[str] | None = None) -> tuple[Cataloger, ...]:
    """All catalogers, or those named (unknown names are an error, not silence)."""
    if not names:
        return CATALOGERS
    unknown = [n for n in names if n not in CATALOGERS_BY_NAME]
    if unknown:
        raise ValueError(f"unknown cataloger(s): {', '.join(unknown)} (known: {', '.join(CATALOGERS_BY_NAME)})")
    return tuple(CATALOGERS_BY_NAME[n] for n in names)


__all__ = ["CATALOGERS", "CatalogFile", "Cataloger", "FileView", "Want", "select"]
