"""Rust: binaries built with cargo-auditable, and ``Cargo.lock`` files.

cargo-auditable links a section ``.dep-v0`` (Mach-O: ``__DATA,.dep-v0``) into the executable:
zlib-compressed JSON ``{"packages": [{"name", "version", "source", "kind"?, "dependencies"?,
"root"?}, …]}`` (schema: ``cargo-auditable.schema.json`` in rust-secure-code/cargo-auditable;
parsing notes in its ``PARSING.md``). Packages of ``kind: "build"`` ran at build time only
(build scripts, proc-macros) and are not in the binary: skipped, as Trivy and cargo-audit do.
The root package (the binary's own crate) is reported like the others, as Trivy does.

``Cargo.lock`` (TOML, ``[[package]]`` tables with ``name``, ``version``, ``source``) lists every
package the workspace resolved, build-dependencies included: without the ``Cargo.toml`` files it
cannot say which ones ship. Lockfiles inside cargo's download caches (``.cargo/registry``,
``.cargo/git``, Debian's ``/usr/share/cargo/registry``) belong to crate *sources* kept for
building, not to anything installed, and are left alone.
"""

from __future__ import annotations

import json
import posixpath
import tomllib
import zlib
from collections.abc import Iterator
from typing import Any

from keelwatch.catalog.base import CatalogFile, FileView, Want
from keelwatch.catalog.binfmt import parse_binary
from keelwatch.catalog.purl import purl
from keelwatch.images.layers import HARDLINK, REGULAR, TarEntry
from keelwatch.model import Package

SECTION = ".dep-v0"
# PARSING.md: "8 MiB should be more than enough to hold any legitimate audit data".
MAX_AUDIT_JSON = 8 << 20
# A Rust program linking std is some hundreds of KB even stripped and size-optimised (ours:
# 345 KB); 64 KiB keeps a margin and skips the small scripts that carry an executable bit.
MIN_SIZE = 64 << 10
LOCKFILE = "Cargo.lock"
# Crate sources cargo (or Debian) keeps for building: their lockfiles describe no installed program.
_SOURCE_CACHES = (".cargo/registry/", ".cargo/git/", "share/cargo/registry/")


class RustCataloger:
    name = "rust"
    version = 1
    uses_companions = False

    def wants(self, entry: TarEntry) -> Want:
        path = entry.path
        if path.endswith(LOCKFILE):
            if (posixpath.basename(path) != LOCKFILE or entry.type not in (REGULAR, HARDLINK)
                    or any(cache in "/" + path for cache in _SOURCE_CACHES)):
                return Want.NO
            return Want.PRIMARY
        # Binaries: as in golang.py, regular files only (a hard link's target is cataloged itself).
        if entry.size >= MIN_SIZE and entry.mode & 0o111 and entry.type == REGULAR:
            return Want.PRIMARY
        return Want.NO

    def parse(self, file: CatalogFile, view: FileView) -> Iterator[Package]:
        if posixpath.basename(file.path) == LOCKFILE:
            yield from _lockfile(file.content)
            return
        data = read_audit_data(file.content)
        if data is None:
            return
        for entry in audit_packages(data):
            if entry.get("kind", "runtime") == "build":
                continue  # ran during the build (build script, proc-macro): not in the binary
            yield _package(entry["name"], entry["version"], files=(file.path,))


def read_audit_data(content: bytes) -> dict[str, Any] | None:
    """The decoded ``.dep-v0`` JSON of a binary; None when it is not a binary or has no such section."""
    binary = parse_binary(content)
    if binary is None:
        return None
    section = binary.section(SECTION)
    if section is None or section.size == 0:
        return None
    compressed = binary.section_bytes(section)
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, MAX_AUDIT_JSON)
    except zlib.error as exc:
        raise ValueError(f"{SECTION} is not zlib data: {exc}") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"{SECTION} inflates past {MAX_AUDIT_JSON} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{SECTION} is not UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{SECTION} JSON is not an object")
    return data


def audit_packages(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``packages`` list, each checked to have string name and version (the schema's required fields)."""
    packages = data.get("packages")
    if not isinstance(packages, list):
        raise ValueError(f"{SECTION} JSON has no packages list")
    for i, entry in enumerate(packages):
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]
                and isinstance(entry.get("version"), str) and entry["version"]):
            raise ValueError(f"{SECTION} package #{i} lacks a name or version")
    return packages


def _lockfile(content: bytes) -> Iterator[Package]:
    try:
        lock = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"not a Cargo.lock: {exc}") from None
    entries = lock.get("package", [])
    if not isinstance(entries, list):
        raise ValueError("Cargo.lock: package is not an array of tables")
    for i, entry in enumerate(entries):
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                and isinstance(entry.get("version"), str)):
            raise ValueError(f"Cargo.lock: package #{i} lacks a name or version")
        yield _package(entry["name"], entry["version"])


def _package(name: str, version: str, files: tuple[str, ...] = ()) -> Package:
    return Package(ecosystem="crates.io", name=name, version=version, kind="lang",
                   purl=purl("cargo", name, version), files=files)
