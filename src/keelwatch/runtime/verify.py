"""Runtime SBOM verification: what ran in a container, against what its image promised. Pure.

Each path seen at runtime (executables, mapped libraries, open jars and scripts) is resolved
through the image's symlinks and looked up:

- owned by package P (its catalog file list, or for packages that list no files, the directory
  of the manifest they were read from, as npm's ``node_modules/x/package.json``): P is **in use**;
- in the image's layers but owned by no package: **unpackaged** code;
- not in the image at all (written at runtime, a mounted volume, a deleted or memfd file):
  **drift**, with the path.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keelwatch.model import Package
from keelwatch.runtime.layerfiles import ImageFiles

MAX_LINK_HOPS = 40  # as the kernel's ELOOP limit


def resolve(path: str, links: Mapping[str, str]) -> str:
    """A root-relative path with every symlink in it followed inside the image (never above its root)."""
    parts = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = "/".join((*done, part))
        target = links.get(candidate)
        if target is None:
            done.append(part)
            continue
        hops += 1
        if hops > MAX_LINK_HOPS:
            return "/".join((*done, part, *parts))  # a loop: keep the path as it is
        if target.startswith("/"):
            done = []
        parts = [p for p in target.split("/") if p and p != "."] + parts
    return "/".join(done)


def resolve_parent(path: str, links: Mapping[str, str]) -> str:
    """``path`` with the symlinks above it followed, the last component kept as it is."""
    directory, _, name = path.rstrip("/").rpartition("/")
    resolved = resolve(directory, links) if directory else ""
    return f"{resolved}/{name}" if resolved else name


@dataclass(frozen=True, slots=True)
class InUse:
    package: Package
    paths: tuple[str, ...]  # the runtime paths that showed it in use, sorted


@dataclass(slots=True)
class Verification:
    in_use: list[InUse] = field(default_factory=list)
    unpackaged: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "in_use_packages": [
                {"ecosystem": u.package.ecosystem, "name": u.package.name, "version": u.package.version,
                 "purl": u.package.purl, "id": u.package.id, "paths": list(u.paths)}
                for u in self.in_use
            ],
            "unpackaged": list(self.unpackaged),
            "drift": [{"path": p, "severity": "high"} for p in self.drift],
        }


class OwnerIndex:
    """Resolved path → the packages that own it, built once per image."""

    def __init__(self, packages: Iterable[Package], image: ImageFiles):
        self.links = image.links
        self.files = image.files
        self.by_path: dict[str, list[Package]] = {}
        self.by_dir: dict[str, list[Package]] = {}
        for package in packages:
            if package.files:
                for path in package.files:
                    # Owning a symlink is not owning its target (python3-minimal ships the
                    # /usr/bin/python3 link, python3.11-minimal the interpreter): only the
                    # directories above an owned path are resolved.
                    self.by_path.setdefault(resolve_parent(path, self.links), []).append(package)
            elif package.location:
                self.by_dir.setdefault(resolve(posixpath.dirname(package.location), self.links), []).append(package)

    def owners(self, resolved: str) -> list[Package]:
        found = self.by_path.get(resolved)
        if found:
            return found
        directory = resolved
        while directory:  # the nearest directory-owning package (nested node_modules win)
            directory = posixpath.dirname(directory)
            found = self.by_dir.get(directory)
            if found:
                return found
        return []


def verify(seen: Iterable[str], packages: Iterable[Package], image: ImageFiles) -> Verification:
    """Classify every path seen at runtime (absolute, as sensors report them)."""
    return verify_with(seen, OwnerIndex(packages, image))


def verify_with(seen: Iterable[str], index: OwnerIndex) -> Verification:
    used: dict[str, tuple[Package, set[str]]] = {}
    unpackaged: set[str] = set()
    drift: set[str] = set()
    for raw in seen:
        path = raw.removesuffix(" (deleted)")
        if raw != path or not path.startswith("/") or path.startswith("/memfd:"):
            drift.add(raw)  # deleted from disk, anonymous memory, or no path: not what the image shipped
            continue
        resolved = resolve(path.lstrip("/"), index.links)
        owners = index.owners(resolved)
        if owners:
            for package in owners:
                used.setdefault(package.id, (package, set()))[1].add(path)
        elif resolved in index.files:
            unpackaged.add(path)
        else:
            drift.add(path)
    in_use = sorted((InUse(p, tuple(sorted(paths))) for p, paths in used.values()),
                    key=lambda u: (u.package.ecosystem, u.package.name, u.package.version, u.package.location))
    return Verification(in_use, sorted(unpackaged), sorted(drift))
