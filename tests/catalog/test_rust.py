"""The Rust cataloger: which files it reads, what it finds in a cargo-auditable binary and a real
Cargo.lock, and corrupt audit data or lockfiles as errors."""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from pathlib import Path

import pytest

from keelwatch.catalog.base import CatalogFile, Want
from keelwatch.catalog.rust import RustCataloger, read_audit_data
from keelwatch.images.layers import TarEntry

FIXTURES = Path(__file__).parent / "fixtures" / "rust"
BINARY = gzip.decompress((FIXTURES / "kw-audit-demo.elf.gz").read_bytes())
LOCK = (FIXTURES / "Cargo.lock").read_bytes()
AUDIT_JSON = json.loads((FIXTURES / "dep-v0.json").read_text())


class NoView:
    def read(self, path):
        return None

    def under(self, directory):
        return []


def parse(content: bytes, path: str = "usr/local/bin/kw-audit-demo"):
    return list(RustCataloger().parse(CatalogFile(path, content, mode=0o755), NoView()))


def found(content: bytes, path: str = "usr/local/bin/kw-audit-demo"):
    return [(p.ecosystem, p.name, p.version, p.purl) for p in parse(content, path)]


def with_audit_section(payload: bytes) -> bytes:
    """The fixture binary with its .dep-v0 section replaced by ``payload`` (appended, header patched)."""
    data = bytearray(BINARY)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    names = struct.unpack_from("<IIQQQQIIQQ", data, shoff + shstrndx * shentsize)[4]
    for i in range(shnum):
        at = shoff + i * shentsize
        if data[names + struct.unpack_from("<I", data, at)[0]:].startswith(b".dep-v0\0"):
            struct.pack_into("<QQ", data, at + 24, len(data), len(payload))  # sh_offset, sh_size
            return bytes(data) + payload
    raise AssertionError("fixture has no .dep-v0")


# --- selection ---------------------------------------------------------------------------------------------------


def test_selection_is_executables_and_lockfiles_outside_crate_caches():
    c = RustCataloger()
    entries = [
        TarEntry("usr/local/bin/kw-audit-demo", "file", 0o755, 345624),
        TarEntry("app/server", "file", 0o750, 2 << 20),
        TarEntry("app/server-link", "hardlink", 0o755, 0, linkname="app/server"),  # target cataloged itself
        TarEntry("app/lock-link/Cargo.lock", "hardlink", 0o644, 0, linkname="app/Cargo.lock"),
        TarEntry("app/Cargo.lock", "file", 0o644, 777),
        TarEntry("src/project/Cargo.lock", "file", 0o644, 10_000),
        TarEntry("usr/local/bin/tiny-script", "file", 0o755, 900),  # too small for a Rust program
        TarEntry("usr/local/lib/libthing.rlib", "file", 0o644, 2 << 20),  # not executable
        TarEntry("app/Cargo.toml", "file", 0o644, 400),
        TarEntry("app/NotCargo.lock", "file", 0o644, 400),
        TarEntry("root/.cargo/registry/src/index.crates.io-6f17d22bba15001f/ripgrep-14.1.0/Cargo.lock",
                 "file", 0o644, 9_000),
        TarEntry("root/.cargo/git/checkouts/foo-1234/abcdef/Cargo.lock", "file", 0o644, 9_000),
        TarEntry("usr/share/cargo/registry/memchr-2.5.0/Cargo.lock", "file", 0o644, 2_000),
        TarEntry("app/Cargo.lock", "symlink", 0o777, 0, linkname="../Cargo.lock"),
    ]
    wanted = [(e.path, e.type) for e in entries if c.wants(e) is Want.PRIMARY]
    assert wanted == [("usr/local/bin/kw-audit-demo", "file"), ("app/server", "file"),
                      ("app/lock-link/Cargo.lock", "hardlink"), ("app/Cargo.lock", "file"),
                      ("src/project/Cargo.lock", "file")]
    assert not [e for e in entries if c.wants(e) is Want.COMPANION]
    assert c.uses_companions is False


# --- content ------------------------------------------------------------------------------------------------------


def test_audit_section_of_a_real_binary():
    assert read_audit_data(BINARY) == AUDIT_JSON
    # autocfg is a build-dependency (it ran in build.rs): not in the binary, left out.
    assert found(BINARY) == [
        ("crates.io", "itoa", "1.0.1", "pkg:cargo/itoa@1.0.1"),
        ("crates.io", "kw-audit-demo", "0.1.0", "pkg:cargo/kw-audit-demo@0.1.0"),
        ("crates.io", "memchr", "2.5.0", "pkg:cargo/memchr@2.5.0"),
    ]
    assert {(p.kind, p.files) for p in parse(BINARY)} == {("lang", ("usr/local/bin/kw-audit-demo",))}


def test_real_lockfile_lists_every_resolved_package():
    assert found(LOCK, "app/Cargo.lock") == [
        ("crates.io", "autocfg", "1.1.0", "pkg:cargo/autocfg@1.1.0"),
        ("crates.io", "itoa", "1.0.1", "pkg:cargo/itoa@1.0.1"),
        ("crates.io", "kw-audit-demo", "0.1.0", "pkg:cargo/kw-audit-demo@0.1.0"),
        ("crates.io", "memchr", "2.5.0", "pkg:cargo/memchr@2.5.0"),
    ]


def test_version_1_lockfile():
    # Cargo before 1.41 wrote checksums in [metadata] and "name version (source)" dependency strings.
    text = b"""[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "serde 1.0.104 (registry+https://github.com/rust-lang/crates.io-index)",
]

[[package]]
name = "serde"
version = "1.0.104"
source = "registry+https://github.com/rust-lang/crates.io-index"

[metadata]
"checksum serde 1.0.104 (registry+https://github.com/rust-lang/crates.io-index)" = \
""" + b'"414115f25f818d7dfccec8ee535d76949ae78584fc4f79a6f45a904bf8ab4449"\n'
    assert [(n, v) for _, n, v, _ in found(text, "Cargo.lock")] == [("app", "0.1.0"), ("serde", "1.0.104")]
    assert found(b"# empty workspace\n", "Cargo.lock") == []


def test_audit_json_variants():
    # Newer cargo-auditable writes a "format" revision; sources may be git or another registry.
    doc = {"format": 1, "packages": [
        {"name": "app", "version": "1.0.0", "source": "local", "root": True, "dependencies": [1, 2, 3]},
        {"name": "serde", "version": "1.0.200", "source": "crates.io"},
        {"name": "forked", "version": "0.3.0", "source": "git"},
        {"name": "serde_derive", "version": "1.0.200", "source": "crates.io", "kind": "build"},
        {"name": "internal", "version": "2.0.0", "source": {"Other": "sparse+https://example.com"}},
    ]}
    payload = zlib.compress(json.dumps(doc).encode())
    assert [(n, v) for _, n, v, _ in found(with_audit_section(payload))] == [
        ("app", "1.0.0"), ("serde", "1.0.200"), ("forked", "0.3.0"), ("internal", "2.0.0")]


def test_binaries_without_audit_data_give_nothing():
    no_section = BINARY.replace(b".dep-v0\0", b".dep-vX\0")
    assert found(no_section) == []
    assert found(b"#!/bin/sh\nexec true\n" * 5000) == []


# --- corrupt input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("payload", "message"), [
    (b"not zlib at all", "not zlib"),
    (zlib.compress(b"\xff\xfe not utf-8"), "not UTF-8 JSON"),
    (zlib.compress(b"[1, 2, 3]"), "not an object"),
    (zlib.compress(b'{"nothing": "here"}'), "no packages list"),
    (zlib.compress(b'{"packages": [{"name": "x"}]}'), "lacks a name or version"),
    (zlib.compress(b'{"packages": [{"name": "x", "version": 1}]}'), "lacks a name or version"),
    (zlib.compress(b" " * (9 << 20)), "inflates past"),  # a zlib bomb: stopped at 8 MiB
])
def test_corrupt_audit_data_is_an_error(payload, message):
    with pytest.raises(ValueError, match=message):
        parse(with_audit_section(payload))


@pytest.mark.parametrize("text", [
    b"[[package]]\nname = \"x\"\n",  # no version
    b"[[package]\nname = ",  # not TOML
    b"package = 3\n",
    b"\xff\xfe",
])
def test_corrupt_lockfile_is_an_error(text):
    with pytest.raises(ValueError):
        parse(text, "app/Cargo.lock")
