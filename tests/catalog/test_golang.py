"""The Go cataloger: which files it reads, exactly what it finds in real (hollowed) Go binaries,
the module-info text format, corrupt input, and accuracy against Trivy on the shared go-tools image."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import tarfile
from pathlib import Path

import pytest

from keelwatch.catalog.base import CatalogFile, Want
from keelwatch.catalog.golang import (
    MAGIC,
    GolangCataloger,
    ldflags_version,
    packages,
    parse_modinfo,
    read_build_info,
    stdlib_version,
)
from keelwatch.catalog.walker import catalog_image
from keelwatch.images import open_image
from keelwatch.images.layers import TarEntry

FIXTURES = Path(__file__).parent / "fixtures" / "golang"
SHFMT = gzip.decompress((FIXTURES / "shfmt-3.13.0-go1.26.1.elf.gz").read_bytes())
ESBUILD = gzip.decompress((FIXTURES / "esbuild-0.13.15-go1.17.2.elf.gz").read_bytes())
FZF = gzip.decompress((FIXTURES / "fzf-0.38.0-debian-go1.19.8.elf.gz").read_bytes())


class NoView:
    def read(self, path):
        return None

    def under(self, directory):
        return []


def parse(content: bytes, path: str = "usr/local/bin/tool"):
    return list(GolangCataloger().parse(CatalogFile(path, content, mode=0o755), NoView()))


def found(content: bytes, path: str = "usr/local/bin/tool"):
    return [(p.name, p.version, p.purl) for p in parse(content, path)]


# --- selection ---------------------------------------------------------------------------------------------------


def test_selection_is_executables_big_enough_for_a_go_runtime():
    c = GolangCataloger()
    mib = 1 << 20
    entries = [
        TarEntry("usr/local/bin/shfmt", "file", 0o755, 3 * mib),
        TarEntry("app/server", "file", 0o700, 12 * mib),  # owner-only execute still counts
        TarEntry("ko-app/tool", "file", 0o555, 9 * mib),
        TarEntry("usr/lib/libgo-c-shared.so", "file", 0o755, 2 * mib),  # -buildmode=c-shared carries build info too
        # A hard link's header has size 0; its target (same layer) is cataloged under its own path.
        TarEntry("usr/bin/linked", "hardlink", 0o755, 0, linkname="usr/local/bin/shfmt"),
        TarEntry("usr/local/bin/data.bin", "file", 0o644, 3 * mib),  # not executable
        TarEntry("usr/bin/small-script", "file", 0o755, 20 << 10),  # too small for a Go runtime
        TarEntry("usr/bin/just-below", "file", 0o755, (128 << 10) - 1),
        TarEntry("usr/bin/link", "symlink", 0o777, 0, linkname="shfmt"),
        TarEntry("usr/local/bin", "dir", 0o755, 0),
        TarEntry("dev/fuse", "chardev", 0o755, 0),
    ]
    wanted = {e.path: c.wants(e) for e in entries}
    assert {p for p, w in wanted.items() if w is Want.PRIMARY} == {
        "usr/local/bin/shfmt", "app/server", "ko-app/tool", "usr/lib/libgo-c-shared.so"}
    assert not [p for p, w in wanted.items() if w is Want.COMPANION]
    assert c.uses_companions is False


# --- content: real binaries -------------------------------------------------------------------------------------


def test_go_1_26_inline_build_info():
    assert found(SHFMT) == [
        ("stdlib", "v1.26.1", "pkg:golang/stdlib@v1.26.1"),
        ("github.com/google/renameio/v2", "v2.0.2", "pkg:golang/github.com/google/renameio/v2@v2.0.2"),
        ("github.com/rogpeppe/go-internal", "v1.14.1", "pkg:golang/github.com/rogpeppe/go-internal@v1.14.1"),
        ("golang.org/x/sys", "v0.42.0", "pkg:golang/golang.org/x/sys@v0.42.0"),
        ("golang.org/x/term", "v0.40.0", "pkg:golang/golang.org/x/term@v0.40.0"),
        ("mvdan.cc/editorconfig", "v0.3.0", "pkg:golang/mvdan.cc/editorconfig@v0.3.0"),
        ("mvdan.cc/sh/v3", "v3.13.0", "pkg:golang/mvdan.cc/sh/v3@v3.13.0"),
    ]
    packages_ = parse(SHFMT, "usr/local/bin/shfmt")
    assert {(p.ecosystem, p.kind, p.files) for p in packages_} == {("Go", "lang", ("usr/local/bin/shfmt",))}


def test_go_1_17_pointer_build_info():
    # Before Go 1.18 the header holds addresses; they resolve through the program headers.
    assert found(ESBUILD) == [
        ("stdlib", "v1.17.2", "pkg:golang/stdlib@v1.17.2"),
        ("golang.org/x/sys", "v0.0.0-20210908233432-aa78b53d3365",
         "pkg:golang/golang.org/x/sys@v0.0.0-20210908233432-aa78b53d3365"),
        # Built from a checkout with plain `go build`: "(devel)" is no version, and no -ldflags stamp one.
        ("github.com/evanw/esbuild", "", "pkg:golang/github.com/evanw/esbuild"),
    ]


def test_gopath_build_has_only_the_toolchain():
    # Debian builds Go packages in GOPATH mode: the binary records the toolchain and settings, no modules.
    version, modinfo = read_build_info(FZF)
    assert version == "go1.19.8"
    info = parse_modinfo(modinfo, version)
    assert (info.path, info.main, info.deps) == ("github.com/junegunn/fzf", None, [])
    assert info.setting("CGO_ENABLED") == "1"
    assert found(FZF) == [("stdlib", "v1.19.8", "pkg:golang/stdlib@v1.19.8")]


def test_section_headers_stripped_falls_back_to_the_data_segment():
    # sstrip-style tools drop the section table; the linker still put the blob at the start of the
    # first writable, non-executable PT_LOAD segment, where debug/buildinfo looks next.
    data = bytearray(SHFMT)
    struct.pack_into("<Q", data, 0x28, 0)  # e_shoff
    struct.pack_into("<HH", data, 0x3C, 0, 0)  # e_shnum, e_shstrndx
    assert found(bytes(data)) == found(SHFMT)


def _blob(binary: bytes) -> bytes:
    """The build-info blob of the shfmt fixture (Go 1.18+ format: self-contained, no pointers)."""
    at = binary.index(MAGIC)
    end = binary.index(b"\n\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2", at) + 17  # modinfo end sentinel
    return binary[at:end]


def _pe(blob: bytes) -> bytes:
    """A minimal PE32+ whose only section is an initialised read-write .data holding ``blob``."""
    pe_off, opt_size, raw_ptr = 0x40, 240, 0x200
    dos = bytearray(pe_off)
    dos[:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, pe_off)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x8664, 1, 0, 0, 0, opt_size, 0x22)
    optional = bytearray(opt_size)
    struct.pack_into("<H", optional, 0, 0x20B)
    struct.pack_into("<Q", optional, 24, 0x140000000)
    section = b".data\0\0\0" + struct.pack("<IIIIIIHHI", len(blob), 0x1000, len(blob), raw_ptr, 0, 0, 0, 0,
                                           0xC0000040)
    head = bytes(dos) + coff + bytes(optional) + section
    return head + bytes(raw_ptr - len(head)) + blob


def _macho(blob: bytes) -> bytes:
    """A minimal 64-bit Mach-O with a __DATA,__go_buildinfo section holding ``blob``."""
    data_off = 0x200
    header = struct.pack("<IiiIIIII", 0xFEEDFACF, 0x01000007, 3, 2, 1, 152, 0, 0)
    segment = struct.pack("<II16sQQQQiiII", 0x19, 152, b"__DATA", 0x100001000, len(blob), data_off, len(blob),
                          3, 3, 1, 0)
    section = struct.pack("<16s16sQQIIIIIIII", b"__go_buildinfo", b"__DATA", 0x100001000, len(blob), data_off,
                          4, 0, 0, 0, 0, 0, 0)
    head = header + segment + section
    return head + bytes(data_off - len(head)) + blob


@pytest.mark.parametrize("make", [_pe, _macho], ids=["pe", "macho"])
def test_windows_and_mac_layouts(make):
    assert found(make(_blob(SHFMT))) == found(SHFMT)


def test_files_that_are_not_go_binaries_give_nothing():
    assert found(b"#!/bin/sh\necho hello\n" * 10000) == []
    assert found(b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(4096)) == []  # a Java class file, not a fat Mach-O
    # An ELF without build info: the shfmt layout with the blob's magic wiped.
    no_magic = SHFMT.replace(MAGIC, b"\0" * len(MAGIC))
    assert found(no_magic) == []
    # The magic must sit on a 16-byte boundary of the data region, as the linker aligns it.
    at = SHFMT.index(MAGIC)
    shifted = SHFMT[:at] + b"\0" * 4 + SHFMT[at:at + 0x300] + SHFMT[at + 0x304:]
    assert found(shifted) == []


# --- corrupt input ----------------------------------------------------------------------------------------------


def test_string_length_past_the_end_is_an_error():
    data = bytearray(SHFMT)
    at = SHFMT.index(MAGIC) + 32
    data[at:at + 5] = b"\xff\xff\xff\xff\x07"  # varint length of the version string: ~2 GiB
    with pytest.raises(ValueError, match="past the end"):
        parse(bytes(data))


def test_pointer_to_nowhere_is_an_error():
    data = bytearray(ESBUILD)
    at = ESBUILD.index(MAGIC)
    struct.pack_into("<Q", data, at + 16, 0x10)  # the version string header's address: unmapped
    with pytest.raises(ValueError, match="not mapped"):
        parse(bytes(data))


def test_truncated_elf_header_is_an_error():
    with pytest.raises(ValueError, match="truncated"):
        parse(SHFMT[:40])
    with pytest.raises(ValueError):
        parse(SHFMT[:0x200])  # section headers cut off


def test_corrupt_binary_is_a_warning_through_the_walker(tmp_path):
    data = bytearray(SHFMT)
    at = SHFMT.index(MAGIC) + 32
    data[at:at + 5] = b"\xff\xff\xff\xff\x07"
    layout = _oci_dir(tmp_path / "img", {"usr/local/bin/shfmt": SHFMT, "usr/local/bin/broken": bytes(data),
                                         "usr/local/bin/esbuild": ESBUILD})
    opened = open_image(f"oci-dir:{layout}")
    try:
        result = catalog_image(opened, (GolangCataloger(),))
    finally:
        opened.close()
    assert {p.location for p in result.packages} == {"usr/local/bin/shfmt", "usr/local/bin/esbuild"}
    assert {p.found_by for p in result.packages} == {"golang"}
    [warning] = result.warnings
    assert (warning.path, warning.cataloger) == ("usr/local/bin/broken", "golang")
    assert "past the end" in warning.message


# --- the module-info text ---------------------------------------------------------------------------------------

MODINFO = "\n".join([
    "path\texample.com/app/cmd/app",
    "mod\texample.com/app\t(devel)\t",
    "dep\tgithub.com/pkg/errors\tv0.9.1\th1:FEBLx1zS214owpjy7qsBeixbURkuhQAwrK5UwLGTwt4=",
    "dep\tgolang.org/x/net\tv0.1.0\th1:aaa=",
    "=>\tgithub.com/fork/net\tv0.1.1-fork\th1:bbb=",
    "dep\tgithub.com/local/thing\tv1.2.3",
    "=>\t../thing\t(devel)\t",
    "dep\tgithub.com/old/devel\t(devel)\t",
    "build\t-buildmode=exe",
    'build\t-ldflags="-s -w -X \'main.version=1.4.2\' -X main.commit=abc"',
    'build\t"weird key"=`raw value`',
    "build\tvcs.modified=true",
    "",
])


def test_modinfo_lines():
    info = parse_modinfo(MODINFO, "go1.21.0 X:boringcrypto")
    assert info.path == "example.com/app/cmd/app"
    assert (info.main.path, info.main.version) == ("example.com/app", "(devel)")
    assert [(d.path, d.version, d.replace and (d.replace.path, d.replace.version)) for d in info.deps] == [
        ("github.com/pkg/errors", "v0.9.1", None),
        ("golang.org/x/net", "v0.1.0", ("github.com/fork/net", "v0.1.1-fork")),
        ("github.com/local/thing", "v1.2.3", ("../thing", "(devel)")),
        ("github.com/old/devel", "(devel)", None),
    ]
    assert info.settings == [("-buildmode", "exe"), ("-ldflags", "-s -w -X 'main.version=1.4.2' -X main.commit=abc"),
                             ("weird key", "raw value"), ("vcs.modified", "true")]


def test_modinfo_packages_follow_trivy():
    info = parse_modinfo(MODINFO, "go1.21.0 X:boringcrypto")
    assert [(p.name, p.version) for p in packages(info, "app")] == [
        ("stdlib", "v1.21.0"),  # the GOEXPERIMENT suffix is not part of the version
        ("github.com/pkg/errors", "v0.9.1"),
        ("github.com/fork/net", "v0.1.1-fork"),  # a module replacement: the fork is what was compiled
        # A directory replacement is no module: keep the module path, the local copy's version is unknown.
        # (Trivy would name the package "../thing".)
        ("github.com/local/thing", ""),
        ("github.com/old/devel", ""),
        ("example.com/app", "1.4.2"),  # "(devel)", so the -ldflags stamp, as Trivy takes it
    ]


@pytest.mark.parametrize("text", [
    "=>\tgithub.com/x/y\tv1.0.0\t",  # replacement with nothing to replace
    "dep\tonly-a-path",
    "dep\ta\tb\tc\td",
    "build\tno-equals-sign",
    "build\t=value",
    'build\tkey="unterminated',
    "surprise\tline",
])
def test_malformed_modinfo_is_an_error(text):
    with pytest.raises(ValueError):
        parse_modinfo(text)


@pytest.mark.parametrize(("go", "version"), [
    ("go1.22.5", "v1.22.5"), ("go1.20", "v1.20"), ("go1.21rc2", "v1.21rc2"),
    ("go1.22.3 X:boringcrypto", "v1.22.3"), ("devel go1.23-abcdef Tue Jan 1 2024", ""),
])
def test_stdlib_version(go, version):
    assert stdlib_version(go) == version


@pytest.mark.parametrize(("flags", "version"), [
    ("-s -w -X main.version=0.13.1 -X main.commit=fe98c8a", "0.13.1"),
    ("-X=main.version=v2.0.0", "v2.0.0"),
    ("-X 'github.com/x/y/internal/version.ver=1.2.3'", "1.2.3"),
    ("-X github.com/x/y/cmd/tool/app.version=3.0.0 -X main.version=1.0.0", "3.0.0"),  # <module>/cmd/ wins
    ("-X main.version=1.0.0 -X common.version=2.0.0", ""),  # two in the same rank: ambiguous
    ("-X main.version=dev", ""),  # not semver
    ("-X main.commit=abc", ""),
    ("-X 'main.version=1.0.0", ""),  # unbalanced quote: unreadable
    (None, ""),
])
def test_ldflags_version(flags, version):
    assert ldflags_version("github.com/x/y", flags) == version


# --- end to end on the shared images ----------------------------------------------------------------------------

# Differences from Trivy 0.76 on go-tools, by (ecosystem, name, version): none today. A difference
# must be listed here with its reason.
TRIVY_ONLY: dict[tuple[str, str, str], str] = {}
KEELWATCH_ONLY: dict[tuple[str, str, str], str] = {}


def _catalog(path: Path, catalogers):
    opened = open_image(f"oci-archive:{path}")
    try:
        return catalog_image(opened, catalogers)
    finally:
        opened.close()


def test_accuracy_against_trivy_on_go_tools(images_dir):
    result = _catalog(images_dir / "go-tools.oci.tar", (GolangCataloger(),))
    assert result.warnings == []
    ours = {(p.ecosystem, p.name, p.version) for p in result.packages}
    doc = json.loads((images_dir / "go-tools.trivy.cdx.json").read_text())
    theirs = {("Go", c["name"], c["version"]) for c in doc["components"]
              if c.get("purl", "").startswith("pkg:golang/")}
    assert len(theirs) == 63
    assert {k: TRIVY_ONLY.get(k, "unexplained") for k in theirs - ours} == TRIVY_ONLY
    assert {k: KEELWATCH_ONLY.get(k, "unexplained") for k in ours - theirs} == KEELWATCH_ONLY
    # Same purls too (Trivy percent-encodes "+" in versions, as the purl spec wants).
    assert {p.purl for p in result.packages} == {c["purl"] for c in doc["components"]
                                                 if c.get("purl", "").startswith("pkg:golang/")}
    by_binary = {}
    for p in result.packages:
        by_binary.setdefault(p.location, set()).add(p.name)
    assert {k: len(v) for k, v in by_binary.items()} == {"usr/local/bin/dive": 56, "usr/local/bin/shfmt": 7}


def test_debian_image_reads_few_files_and_finds_nothing(images_dir):
    # The cost on an image without Go is reading the big executables once: four files here
    # (python3.11, libc, openssl, ld.so; about 10 MB), parsed to "no build info" in microseconds.
    path = images_dir / "debian12-python.oci.tar"
    cataloger = GolangCataloger()
    opened = open_image(f"oci-archive:{path}")
    wanted = []
    try:
        for layer in opened.layer_contents():
            with layer as contents:
                wanted += [e.path for e in contents.entries() if e.type in ("file", "hardlink")
                           and cataloger.wants(e) is Want.PRIMARY]
                contents.finish()
    finally:
        opened.close()
    assert sorted(wanted) == ["lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/libc.so.6",
                              "usr/bin/openssl", "usr/bin/python3.11"]
    result = _catalog(path, (cataloger,))
    assert (result.packages, result.warnings) == ([], [])


# --- helpers ------------------------------------------------------------------------------------------------------


def _oci_dir(root: Path, files: dict[str, bytes]) -> Path:
    """A one-layer OCI layout whose files are executables (mode 0755)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(content), 0o755, 1700000000
            tar.addfile(info, io.BytesIO(content))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **blob(gzip.compress(raw.getvalue(), mtime=0))}
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "config": {}}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           **blob(json.dumps(config).encode())},
                "layers": [layer]}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            **blob(json.dumps(manifest).encode())}]}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return root
