""".NET: the ``*.deps.json`` the SDK writes beside every built app or library.

``libraries`` names every package the build resolved (``"Name/Version": {"type": "package" |
"project" | "runtimepack", …}``); ``targets[runtimeTarget.name]`` says, per library, which
assemblies the app loads at run time (``runtime``, ``runtimeTargets``, ``native``). A resolved
package with none of those is a build-time tool (compilers, analyzers, SourceLink) or a
reference-only facade: nothing of it is deployed, so, like Trivy, we leave it out. When the
runtime target's section is missing we cannot tell and report every library.

Like Trivy we report the ``project`` entries too (the app or library itself, and projects it
references: their name and version are what the build gave them), and the bundled runtime of a
self-contained app (``runtimepack.Microsoft.NETCore.App.Runtime.linux-x64/8.0.1``) under its pack
name without the SDK's ``runtimepack.`` prefix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from keelwatch.catalog.base import CatalogFile, FileView, Want
from keelwatch.catalog.purl import purl
from keelwatch.images.layers import HARDLINK, REGULAR, TarEntry
from keelwatch.model import Package

SUFFIX = ".deps.json"
_TYPES = {"package", "project", "runtimepack"}
_RUNTIME_PACK = "runtimepack."
_RUNTIME_ASSETS = ("runtime", "runtimeTargets", "native")


class DotnetCataloger:
    name = "dotnet"
    version = 1
    uses_companions = False

    def wants(self, entry: TarEntry) -> Want:
        if entry.path.endswith(SUFFIX) and entry.type in (REGULAR, HARDLINK):
            return Want.PRIMARY
        return Want.NO

    def parse(self, file: CatalogFile, view: FileView) -> Iterator[Package]:
        for name, version in runtime_libraries(file.content):
            yield Package(ecosystem="NuGet", name=name, version=version, kind="lang",
                          purl=purl("nuget", name, version))


def runtime_libraries(content: bytes) -> list[tuple[str, str]]:
    """(name, version) of the libraries a deps.json says the app loads, in file order."""
    try:
        doc = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"deps.json is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("deps.json is not a JSON object")
    libraries = doc.get("libraries", {})
    if not isinstance(libraries, dict):
        raise ValueError("deps.json 'libraries' is not an object")
    target = _runtime_target(doc)
    out = []
    for key, library in libraries.items():
        name, sep, version = key.partition("/")
        if not sep or not name or not version or not isinstance(library, dict):
            raise ValueError(f"deps.json library {key!r} is not 'Name/Version'")
        if str(library.get("type", "")).lower() not in _TYPES:
            continue  # e.g. "reference": an assembly from the framework or a file, not a package
        if target is not None and not _has_runtime_assets(target.get(key)):
            continue
        out.append((name.removeprefix(_RUNTIME_PACK), version))
    return out


def _runtime_target(doc: dict[str, Any]) -> dict[str, Any] | None:
    runtime_target = doc.get("runtimeTarget")
    name = runtime_target.get("name") if isinstance(runtime_target, dict) else None
    targets = doc.get("targets")
    if not isinstance(name, str) or not isinstance(targets, dict):
        return None
    section = targets.get(name)
    return section if isinstance(section, dict) else None


def _has_runtime_assets(entry: object) -> bool:
    # A library the target section does not list at all: keep it rather than drop it unseen.
    if entry is None:
        return True
    return isinstance(entry, dict) and any(entry.get(asset) for asset in _RUNTIME_ASSETS)
