"""Go binaries: the module build info the Go linker embeds (``go version -m`` prints it).

Since Go 1.13 the linker writes a blob starting ``\\xff Go buildinf:`` at a 16-byte boundary: in
ELF the ``.go.buildinfo`` section, in Mach-O ``__go_buildinfo``, elsewhere the start of the data
segment. Its 16-byte header holds the pointer size and a flags byte. From Go 1.18 (flag bit 2)
the toolchain version and the module info follow the 32-byte header inline as varint-prefixed
strings; before that the header holds two pointers to Go string headers (pointer, length),
which we resolve through the binary's segments (``binfmt``). This follows
``debug/buildinfo`` in the Go source.

The module info is text (``runtime/debug.ParseBuildInfo``): ``path``, ``mod`` (main module),
``dep`` lines, each optionally followed by a ``=>`` replacement, and ``build key=value``
settings. What we emit follows Trivy 0.76, whose SBOMs are our accuracy reference:

- ``stdlib`` at the toolchain version with a ``v`` (``go1.22.5`` → ``v1.22.5``), as Trivy and
  the Go vulnerability database's purls write it.
- every dep, under its replacement's path and version when replaced (that code is what was
  compiled). A replacement by a local directory (``=> ../fork``) is not a module anyone
  publishes advisories for: we keep the original module path with an unknown version, where
  Trivy would report the directory path as a module name.
- the main module; ``(devel)`` (a plain ``go build`` before Go 1.24) means unknown, and like
  Trivy we then take a semver from ``-ldflags -X …version=…`` when the build recorded one.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from keelwatch.catalog.base import CatalogFile, FileView, Want
from keelwatch.catalog.binfmt import Binary, parse_binary
from keelwatch.catalog.purl import purl
from keelwatch.images.layers import REGULAR, TarEntry
from keelwatch.model import Package

MAGIC = b"\xff Go buildinf:"
ALIGN = 16
HEADER_SIZE = 32
# The smallest Go program with build info (an empty main, stripped) is about 1 MiB: the runtime
# alone. 128 KiB keeps a wide margin and spares reading the scripts that carry an executable bit.
MIN_SIZE = 128 << 10
# debug/buildinfo refuses strings longer than this; so do we (a hostile length must not allocate).
MAX_STRING = 1 << 24
# Sentinels cmd/go frames the module info with (modload.infoStart / infoEnd), 16 bytes each.
_FRAME = 16

_GO_VERSION = re.compile(r"^go(\d+(?:\.\d+)*(?:(?:rc|beta)\d+)?)(?:\s|$)")
_SEMVER = re.compile(r"^v\d+(?:\.\d+(?:\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)?)?$")
# golang.org/x/mod's rule for "a filesystem path, not a module path" in a replace directive.
_DIR_PATH = re.compile(r"^(?:\.{1,2}(?:/|\\|$)|/|\\|[A-Za-z]:[/\\])")


@dataclass(frozen=True, slots=True)
class Module:
    path: str
    version: str
    sum: str = ""
    replace: Module | None = None


@dataclass(slots=True)
class BuildInfo:
    go_version: str
    path: str = ""
    main: Module | None = None
    deps: list[Module] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)

    def setting(self, key: str) -> str | None:
        for k, v in self.settings:
            if k == key:
                return v
        return None


class GolangCataloger:
    name = "golang"
    version = 1
    uses_companions = False

    def wants(self, entry: TarEntry) -> Want:
        # Go binaries live anywhere (/usr/local/bin, /app, /ko-app/…), so any executable file big
        # enough to hold a Go runtime is a candidate; parse() rejects non-binaries by their magic.
        # The size test first: it rejects most files of a layer for the price of one comparison.
        # Hard links are not wanted: a tar hard link names a file of the same layer, which is
        # cataloged under its own path, and its header carries no size to judge it by (0).
        if entry.size >= MIN_SIZE and entry.mode & 0o111 and entry.type == REGULAR:
            return Want.PRIMARY
        return Want.NO

    def parse(self, file: CatalogFile, view: FileView) -> Iterator[Package]:
        raw = read_build_info(file.content)
        if raw is None:
            return
        go_version, modinfo = raw
        info = parse_modinfo(modinfo, go_version)
        yield from packages(info, file.path)


def read_build_info(data: bytes | memoryview) -> tuple[str, str] | None:
    """(Go toolchain version, module info text) of a Go binary; None when ``data`` is not one.

    Raises ValueError when the build-info blob is there but cannot be decoded.
    """
    binary = parse_binary(data)
    if binary is None:
        return None
    blob_at = _find_blob(binary)
    if blob_at is None:
        return None
    header = bytes(binary.data[blob_at:blob_at + HEADER_SIZE])
    ptr_size, flags = header[14], header[15]
    if flags & 2:  # Go 1.18+: inline strings after the header
        pos = blob_at + HEADER_SIZE
        version, pos = _varint_string(binary.data, pos)
        modinfo, _ = _varint_string(binary.data, pos)
    else:
        if ptr_size not in (4, 8):
            raise ValueError(f"Go build info gives a pointer size of {ptr_size}")
        order: Literal["big", "little"] = "big" if flags & 1 else "little"
        version_ptr = int.from_bytes(header[16:16 + ptr_size], order)
        modinfo_ptr = int.from_bytes(header[16 + ptr_size:16 + 2 * ptr_size], order)
        version = _pointer_string(binary, version_ptr, ptr_size, order)
        modinfo = _pointer_string(binary, modinfo_ptr, ptr_size, order)
    if not version:
        raise ValueError("Go build info without a toolchain version")
    # The module info is framed by two 16-byte sentinels; without them there is none (GOPATH builds).
    framed = len(modinfo) >= 2 * _FRAME + 1 and modinfo[-_FRAME - 1] == "\n"
    return version, modinfo[_FRAME:-_FRAME] if framed else ""


def _find_blob(binary: Binary) -> int | None:
    """File offset of the 16-byte-aligned build-info magic, where debug/buildinfo looks for it."""
    start, size = _data_start(binary)
    if size <= 0:
        return None
    data = binary.data
    end = min(start + size, len(data))
    raw = bytes(data[start:end])
    at = 0
    while True:
        at = raw.find(MAGIC, at)
        if at < 0 or len(raw) - at < HEADER_SIZE:
            return None
        if at % ALIGN == 0:  # relative to the data start, which the linker aligns
            return start + at
        at += 1


def _data_start(binary: Binary) -> tuple[int, int]:
    """(file offset, size) of the region the Go linker puts the build info in."""
    if binary.format == "elf":
        section = binary.section(".go.buildinfo")
        if section is not None:
            return section.offset, section.size
        for seg in binary.segments:  # stripped section headers: the first data-only segment
            if seg.writable and not seg.executable:
                return seg.offset, seg.filesz
    elif binary.format == "macho":
        section = binary.section("__go_buildinfo")
        if section is not None:
            return section.offset, section.size
        for seg in binary.segments:
            if seg.vaddr and seg.filesz and seg.prot == (3, 3):
                return seg.offset, seg.filesz
    elif binary.format == "pe":
        # The first initialised, readable, writable data section (alignment bits ignored).
        wanted = 0x00000040 | 0x40000000 | 0x80000000
        for section in binary.sections:
            if section.addr and section.size and section.flags & ~0x00600000 == wanted:
                return section.offset, section.size
    return 0, 0


def _varint_string(data: bytes | memoryview, pos: int) -> tuple[str, int]:
    length, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated Go build info (string length)")
        byte = data[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    if length > MAX_STRING or pos + length > len(data):
        raise ValueError(f"Go build info string of {length} bytes runs past the end of the file")
    return bytes(data[pos:pos + length]).decode("utf-8", "replace"), pos + length


def _pointer_string(binary: Binary, addr: int, ptr_size: int, order: Literal["big", "little"]) -> str:
    header = binary.read(addr, 2 * ptr_size)
    if len(header) < 2 * ptr_size:
        raise ValueError(f"Go string header at {addr:#x} is cut short by its segment")
    data_addr = int.from_bytes(header[:ptr_size], order)
    length = int.from_bytes(header[ptr_size:], order)
    if length > MAX_STRING:
        raise ValueError(f"Go build info string of {length} bytes")
    if length == 0:
        return ""
    text = binary.read(data_addr, length)
    if len(text) < length:
        raise ValueError(f"Go string at {data_addr:#x} is cut short by its segment")
    return text.decode("utf-8", "replace")


def parse_modinfo(text: str, go_version: str = "") -> BuildInfo:
    """Parse module info text as ``runtime/debug.ParseBuildInfo`` does (the ``go`` line optional)."""
    info = BuildInfo(go_version=go_version)
    last: Module | None = None  # the mod/dep line a "=>" line replaces
    last_index: int | None = None  # -1 for the main module, else its index in deps
    for number, line in enumerate(text.splitlines(), start=1):
        if not line:
            continue
        kind, _, rest = line.partition("\t")
        if kind == "go":
            info.go_version = rest
        elif kind == "path":
            info.path = rest
        elif kind in ("mod", "dep"):
            module = _module(rest, number)
            if kind == "mod":
                info.main, last_index = module, -1
            else:
                info.deps.append(module)
                last_index = len(info.deps) - 1
            last = module
        elif kind == "=>":
            if last is None or last_index is None:
                raise ValueError(f"module info line {number}: replacement with no module on the line before")
            replaced = Module(last.path, last.version, last.sum, _module(rest, number))
            if last_index == -1:
                info.main = replaced
            else:
                info.deps[last_index] = replaced
            last = None  # a module is replaced at most once
        elif kind == "build":
            info.settings.append(_setting(rest, number))
        else:
            raise ValueError(f"module info line {number}: unknown line {line[:80]!r}")
    return info


def _module(rest: str, number: int) -> Module:
    parts = rest.split("\t")
    # Path, version and a sum that may be missing (a replacement by a directory has none).
    if len(parts) not in (2, 3) or not parts[0]:
        raise ValueError(f"module info line {number}: expected path, version and sum, got {rest[:80]!r}")
    return Module(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def _setting(rest: str, number: int) -> tuple[str, str]:
    if not rest or rest[0] == "=":
        raise ValueError(f"module info line {number}: build setting without a key")
    if rest[0] in "\"`":
        key, used = _go_unquote_prefix(rest)
        rest = rest[used:]
        if not rest.startswith("="):
            raise ValueError(f"module info line {number}: quoted build key without '='")
        raw = rest[1:]
    else:
        key, sep, raw = rest.partition("=")
        if not sep:
            raise ValueError(f"module info line {number}: build setting without '='")
    if raw and raw[0] in "\"`":
        value, used = _go_unquote_prefix(raw)
        if used != len(raw):
            raise ValueError(f"module info line {number}: text after a quoted build value")
        return key, value
    return key, raw


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", "'": "'", '"': '"'}


def _go_unquote_prefix(text: str) -> tuple[str, int]:
    """A Go string literal at the start of ``text`` (strconv.QuotedPrefix + Unquote): (value, length)."""
    if text[0] == "`":
        end = text.find("`", 1)
        if end < 0:
            raise ValueError("unterminated raw string in module info")
        return text[1:end].replace("\r", ""), end + 1
    out = bytearray()
    i = 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return out.decode("utf-8", "replace"), i + 1
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        if i + 1 >= len(text):
            break
        e = text[i + 1]
        if e in _ESCAPES:
            out += _ESCAPES[e].encode()
            i += 2
        elif e == "x":
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        elif e in "uU":
            n = 4 if e == "u" else 8
            out += chr(int(text[i + 2:i + 2 + n], 16)).encode()
            i += 2 + n
        elif e in "01234567":
            out.append(int(text[i + 1:i + 4], 8))
            i += 4
        else:
            raise ValueError(f"unknown escape \\{e} in module info")
    raise ValueError("unterminated string in module info")


def stdlib_version(go_version: str) -> str:
    """``go1.22.5 X:boringcrypto`` → ``v1.22.5``; "" when the toolchain was a development build."""
    match = _GO_VERSION.match(go_version)
    return f"v{match.group(1)}" if match else ""


def ldflags_version(module_path: str, ldflags: str | None) -> str:
    """A semver set with ``-ldflags -X <pkg>.version=<semver>``, chosen as Trivy chooses it.

    Keys are ranked: ``<module>/cmd/…`` first, then the conventional packages ``main``,
    ``common``, ``version`` and ``cmd``, then any other; more than one candidate in the best
    rank is ambiguous and gives "".
    """
    if not ldflags:
        return ""
    try:
        args = shlex.split(ldflags)
    except ValueError:
        return ""
    values: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-X", "--X"):
            if i + 1 < len(args):
                values.append(args[i + 1])
            i += 2
            continue
        if arg.startswith(("-X=", "--X=")):
            values.append(arg.split("=", 1)[1])
        elif arg.startswith("-X") and not arg.startswith("--"):
            values.append(arg[2:])
        i += 1
    ranks: list[list[str]] = [[], [], []]
    for value in values:
        key, sep, val = value.partition("=")
        key, val = key.lstrip("'"), val.rstrip("'")
        if not sep or not key.lower().endswith((".version", ".ver")):
            continue
        if not (_SEMVER.match(val) or _SEMVER.match("v" + val)):
            continue
        package = key.rsplit("/", 1)[-1].split(".", 1)[0].lower()
        if key.startswith(module_path + "/cmd/"):
            ranks[0].append(val)
        elif package in ("main", "common", "version", "cmd"):
            ranks[1].append(val)
        else:
            ranks[2].append(val)
    for candidates in ranks:
        if candidates:
            return candidates[0] if len(candidates) == 1 else ""
    return ""


def _is_directory(path: str) -> bool:
    return bool(_DIR_PATH.match(path))


def packages(info: BuildInfo, location: str) -> Iterator[Package]:
    owned = (location,)

    def package(name: str, version: str) -> Package:
        namespace, _, short = name.rpartition("/")
        return Package(ecosystem="Go", name=name, version=version, kind="lang",
                       purl=purl("golang", short, version, namespace=namespace or None), files=owned)

    yield package("stdlib", stdlib_version(info.go_version))
    for dep in info.deps:
        path, version = dep.path, dep.version
        if dep.replace is not None:
            if _is_directory(dep.replace.path):
                version = ""  # built from a local copy: which version that copy is, nobody recorded
            else:
                path, version = dep.replace.path, dep.replace.version
        yield package(path, "" if version == "(devel)" else version)
    if info.main is not None and info.main.path:
        version = "" if info.main.version == "(devel)" else info.main.version
        stamped = ldflags_version(info.main.path, info.setting("-ldflags"))
        if not version or (version.startswith("v0.0.0") and stamped):
            version = stamped
        yield package(info.main.path, version)
