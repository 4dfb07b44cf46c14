"""Installed npm packages: every ``package.json`` that names a package (``name`` and ``version``).

That is what Trivy's ``node-pkg`` analyzer reads in an image, at any depth: the packages under
``node_modules/`` (nested ``a/node_modules/b`` and scoped ``@scope/name`` included) and the
application's own ``package.json`` beside them (Trivy lists ``keelwatch-demo-node-app`` in
node-app). A ``package.json`` without a name or version (``{"type": "module"}`` in a package's
subdirectory, a workspace root) is not a package and yields nothing.

Lock files are not read from images, as Trivy and Syft don't either: a ``package-lock.json``
says what an install *would* put in ``node_modules``, and in an image the installed tree is the
truth. Reporting a lock's packages only when they are not installed would need to know, when
the lock is parsed, whether a ``node_modules`` exists; but Dockerfiles copy the lock in one
layer and run ``npm ci`` in the next, and the walker parses a file once, in the layer that
wrote it. ``parse_lock`` reads all three lockfile versions for the day the walker can settle
that at the end of the image (an app shipped as a bundle, with a lock and no node_modules, is
the case it would catch).

Files owned: an npm package owns its directory, which no file of the package lists; the
package's ``location`` (its ``package.json``) names that directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from keelwatch.catalog.base import CatalogFile, FileView, Want
from keelwatch.catalog.purl import purl
from keelwatch.images.layers import TarEntry
from keelwatch.model import Package

PACKAGE_JSON = "package.json"
_SUFFIX = "/" + PACKAGE_JSON
NODE_MODULES = "node_modules/"


def npm_purl(name: str, version: str) -> str:
    # ``@scope/name`` → namespace ``@scope``; the purl library writes the ``@`` as ``%40``.
    namespace, _, bare = name.rpartition("/")
    return purl("npm", bare, version, namespace=namespace or None)


def licenses(manifest: dict[str, Any]) -> tuple[str, ...]:
    """``license`` as a string (SPDX expression) or, in old manifests, an object or ``licenses`` list."""
    found: list[str] = []
    for value in (manifest.get("license"), *(_as_list(manifest.get("licenses")))):
        if isinstance(value, dict):
            value = value.get("type")
        if isinstance(value, str) and value.strip():
            found.append(value.strip())
    return tuple(dict.fromkeys(found))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _load(content: bytes) -> Any:
    try:
        return json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc


class NpmCataloger:
    name = "npm"
    version = 1
    uses_companions = False

    def wants(self, entry: TarEntry) -> Want:
        path = entry.path
        if path.endswith(_SUFFIX) or path == PACKAGE_JSON:
            return Want.PRIMARY
        return Want.NO

    def parse(self, file: CatalogFile, view: FileView) -> Iterator[Package]:
        manifest = _load(file.content)
        if not isinstance(manifest, dict):
            return
        name, version = manifest.get("name"), manifest.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name.strip() or not version.strip():
            return  # not a package: a directory marker, a workspace root, a tool's config
        name, version = name.strip(), version.strip()
        yield Package(ecosystem="npm", name=name, version=version, purl=npm_purl(name, version),
                      licenses=licenses(manifest))


def parse_lock(content: bytes, *, include_dev: bool = False) -> list[Package]:
    """The packages a ``package-lock.json`` (or ``npm-shrinkwrap.json``) would install.

    Lockfile 2 and 3 (npm ≥ 7) key each package by its install path (``node_modules/a/node_modules/b``);
    lockfile 1 (npm 5, 6) nests ``dependencies`` the way the tree nests. Version 2 carries both
    forms; the ``packages`` form is read. Dev dependencies are left out unless asked for (as Trivy
    does by default); workspace links and non-registry sources (``file:``, git) are left out.
    """
    lock = _load(content)
    if not isinstance(lock, dict):
        raise ValueError("a package-lock.json is a JSON object")
    found: dict[str, Package] = {}  # install path → package
    packages = lock.get("packages")
    if isinstance(packages, dict) and packages:
        for path, entry in packages.items():
            if not isinstance(entry, dict) or NODE_MODULES not in path or entry.get("link"):
                continue
            if entry.get("dev") and not include_dev:
                continue
            name = entry.get("name") or path.rpartition(NODE_MODULES)[2]
            _add(found, path, name, entry.get("version"))
    else:
        _walk_v1(lock.get("dependencies"), "", found, include_dev)
    return [found[path] for path in sorted(found)]


def _walk_v1(dependencies: Any, prefix: str, found: dict[str, Package], include_dev: bool) -> None:
    if not isinstance(dependencies, dict):
        return
    for name, entry in dependencies.items():
        if not isinstance(entry, dict) or (entry.get("dev") and not include_dev):
            continue
        path = f"{prefix}{NODE_MODULES}{name}"
        version = entry.get("version")
        if isinstance(version, str) and version.startswith("npm:"):  # an alias: "npm:real-name@1.2.3"
            name, _, version = version[len("npm:"):].rpartition("@")
        _add(found, path, name, version)
        _walk_v1(entry.get("dependencies"), path + "/", found, include_dev)


def _add(found: dict[str, Package], path: str, name: Any, version: Any) -> None:
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version or ":" in version:
        return  # "file:../lib", "git+https://…": not a registry version an advisory could name
    found[path] = Package(ecosystem="npm", name=name, version=version, purl=npm_purl(name, version))
