"""PHP: the packages Composer installed, from ``<vendor-dir>/composer/installed.json``.

Composer rewrites this file on every install: Composer 2 as ``{"packages": [...], "dev": bool,
"dev-package-names": [...]}``, Composer 1 as the bare list. Each entry carries ``name``
(``vendor/project``) and ``version`` as Composer shows it (a tag may keep its ``v``: ``v5.4.10``;
Trivy and our purls keep it as written, ``version_normalized`` is Composer's internal form).
Every listed package is on disk, dev packages included (``composer install`` without
``--no-dev`` put them there), so all are reported, as Trivy does.

Trivy reads any file named ``installed.json``; we read it only inside a ``composer`` directory,
which is where Composer writes it whatever ``vendor-dir`` says (other tools use the name too).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from keelwatch.catalog.base import CatalogFile, FileView, Want
from keelwatch.catalog.purl import purl
from keelwatch.images.layers import HARDLINK, REGULAR, TarEntry
from keelwatch.model import Package

INSTALLED = "composer/installed.json"


class PhpCataloger:
    name = "php"
    version = 1
    uses_companions = False

    def wants(self, entry: TarEntry) -> Want:
        path = entry.path
        # Cheapest test first: wants() runs on every file of every layer.
        if (path.endswith(INSTALLED) and (path == INSTALLED or path.endswith("/" + INSTALLED))
                and entry.type in (REGULAR, HARDLINK)):
            return Want.PRIMARY
        return Want.NO

    def parse(self, file: CatalogFile, view: FileView) -> Iterator[Package]:
        for entry in installed_packages(file.content):
            name, version = entry["name"], entry["version"]
            vendor, _, project = name.rpartition("/")
            yield Package(ecosystem="Packagist", name=name, version=version, kind="lang",
                          purl=purl("composer", project, version, namespace=vendor or None),
                          licenses=_licenses(entry.get("license")))


def installed_packages(content: bytes) -> list[dict[str, Any]]:
    """The package entries of an installed.json in either Composer's 1 or 2 layout."""
    try:
        doc = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"installed.json is not JSON: {exc}") from None
    packages = doc.get("packages") if isinstance(doc, dict) else doc
    if not isinstance(packages, list):
        raise ValueError("installed.json has no package list (neither Composer 1's list nor 2's 'packages')")
    for i, entry in enumerate(packages):
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]
                and isinstance(entry.get("version"), str) and entry["version"]):
            raise ValueError(f"installed.json package #{i} lacks a name or version")
    return packages


def _licenses(value: object) -> tuple[str, ...]:
    # Composer normalises "license" to a list when installing; a lone string is older metadata.
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str) and v)
    return ()
