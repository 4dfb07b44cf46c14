"""Just enough of ELF, PE and Mach-O to find a section and read a virtual address, from bytes.

Catalogers that read build metadata out of binaries (Go's ``.go.buildinfo``, cargo-auditable's
``.dep-v0``) need three things: is this a binary at all (answered from the first bytes, so a
script costs nothing), where is a named section, and which file bytes back a virtual address
(Go before 1.18 stored pointers, not strings). Nothing here is executed or relocated; every
offset is checked against the buffer, so a truncated or hostile header gives ``ValueError``.

Why not pyelftools/lief: they read far more than we need, lief is a large native wheel, and both
want a file object; the walker hands us bytes already in memory.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ELF_MAGIC = b"\x7fELF"
_MACHO_MAGICS = {
    b"\xfe\xed\xfa\xce": (">", 4), b"\xce\xfa\xed\xfe": ("<", 4),
    b"\xfe\xed\xfa\xcf": (">", 8), b"\xcf\xfa\xed\xfe": ("<", 8),
}
_FAT_MAGICS = (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf")

# ELF
_PT_LOAD = 1
_PF_X, _PF_W = 1, 2
_SHT_NOBITS = 8
_SHN_XINDEX = 0xFFFF
# PE
_IMAGE_SCN_MEM_WRITE = 0x80000000
# Mach-O
_LC_SEGMENT, _LC_SEGMENT_64 = 0x1, 0x19

MAX_SECTIONS = 1 << 16  # real binaries have tens; a header claiming millions is hostile


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    addr: int  # virtual address (PE: image base added)
    size: int  # bytes in the file (0 for .bss-like sections)
    offset: int  # file offset
    writable: bool = False
    flags: int = 0  # the format's raw flags/characteristics, for format-specific rules


@dataclass(frozen=True, slots=True)
class Segment:
    vaddr: int
    memsz: int
    offset: int
    filesz: int
    writable: bool
    executable: bool
    name: str = ""  # Mach-O segment name
    prot: tuple[int, int] = (0, 0)  # Mach-O (initprot, maxprot)


@dataclass(slots=True)
class Binary:
    """A parsed executable: its format, byte order, pointer size, sections and loadable segments."""

    format: str  # "elf", "pe", "macho"
    data: bytes | memoryview  # the whole file (for Mach-O fat files: the chosen slice)
    little_endian: bool
    ptr_size: int
    sections: list[Section]
    segments: list[Segment]

    def section(self, *names: str) -> Section | None:
        for section in self.sections:
            if section.name in names:
                return section
        return None

    def section_bytes(self, section: Section) -> bytes:
        return _slice(self.data, section.offset, section.size, f"section {section.name}")

    def read(self, addr: int, size: int) -> bytes:
        """The ``size`` file bytes behind virtual address ``addr`` (fewer at a segment's end).

        Only loadable segments map addresses (as the loader sees the file): an ELF section that
        is not loaded has address 0 and must not answer for it. Raises ValueError when no
        segment maps the address to file content.
        """
        for seg in self.segments:
            if seg.filesz and seg.vaddr <= addr < seg.vaddr + seg.filesz:
                n = min(size, seg.vaddr + seg.filesz - addr)
                return _slice(self.data, seg.offset + (addr - seg.vaddr), n, "segment")
        raise ValueError(f"address {addr:#x} is not mapped by any segment of the file")


def _slice(data: bytes | memoryview, offset: int, size: int, what: str) -> bytes:
    if offset < 0 or size < 0 or offset + size > len(data):
        raise ValueError(f"{what} ({size} bytes at {offset:#x}) lies beyond the end of the file ({len(data)} bytes)")
    return bytes(data[offset:offset + size])


def _unpack(fmt: str, data: bytes | memoryview, offset: int, what: str) -> tuple[int, ...]:
    size = struct.calcsize(fmt)
    if offset < 0 or offset + size > len(data):
        raise ValueError(f"truncated {what} at {offset:#x}")
    return struct.unpack_from(fmt, data, offset)


def _cstr(data: bytes | memoryview, offset: int, limit: int = 256) -> str:
    if offset < 0 or offset >= len(data):
        return ""
    chunk = bytes(data[offset:offset + limit])
    return chunk.split(b"\0", 1)[0].decode("latin-1")


def is_binary(head: bytes) -> bool:
    """True if these first bytes start an ELF, PE or Mach-O file (cheap: a magic check)."""
    return (head[:4] == ELF_MAGIC or head[:2] == b"MZ" or head[:4] in _MACHO_MAGICS
            or head[:4] in _FAT_MAGICS)


def parse_binary(data: bytes | memoryview) -> Binary | None:
    """The binary's layout, or None when ``data`` is not ELF, PE or Mach-O (a script, a text file).

    Raises ValueError when the magic says binary but the headers are broken.
    """
    head = bytes(data[:4])
    if head == ELF_MAGIC:
        return _parse_elf(data)
    if head[:2] == b"MZ":
        return _parse_pe(data)
    if head in _MACHO_MAGICS:
        return _parse_macho(data)
    if head in _FAT_MAGICS:
        return _parse_fat(data)
    return None


def _parse_elf(data: bytes | memoryview) -> Binary:
    if len(data) < 52:
        raise ValueError("truncated ELF header")
    klass, order = data[4], data[5]
    if klass not in (1, 2) or order not in (1, 2):
        raise ValueError(f"unknown ELF class {klass} or byte order {order}")
    e = "<" if order == 1 else ">"
    is64 = klass == 2
    if is64:
        (_, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, shstrndx) = _unpack(
            e + "HHIQQQIHHHHHH", data, 16, "ELF header")
        ph_fmt, sh_fmt = e + "IIQQQQQQ", e + "IIQQQQIIQQ"
    else:
        (_, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, shstrndx) = _unpack(
            e + "HHIIIIIHHHHHH", data, 16, "ELF header")
        ph_fmt, sh_fmt = e + "IIIIIIII", e + "IIIIIIIIII"

    segments = []
    if phoff and phnum:
        if phentsize < struct.calcsize(ph_fmt):
            raise ValueError(f"ELF program header entries of {phentsize} bytes are too small")
        for i in range(min(phnum, MAX_SECTIONS)):
            fields = _unpack(ph_fmt, data, phoff + i * phentsize, "ELF program header")
            if is64:
                p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz, _ = fields
            else:
                p_type, p_offset, p_vaddr, _, p_filesz, p_memsz, p_flags, _ = fields
            if p_type == _PT_LOAD:
                segments.append(Segment(p_vaddr, p_memsz, p_offset, p_filesz,
                                        writable=bool(p_flags & _PF_W), executable=bool(p_flags & _PF_X)))

    sections = []
    if shoff:
        if shentsize < struct.calcsize(sh_fmt):
            raise ValueError(f"ELF section header entries of {shentsize} bytes are too small")
        headers = []
        first = _unpack(sh_fmt, data, shoff, "ELF section header")
        # More than 0xff00 sections: the real count and string-table index live in section 0.
        if shnum == 0:
            shnum = first[5]
        if shstrndx == _SHN_XINDEX:
            shstrndx = first[6]
        if shnum > MAX_SECTIONS:
            raise ValueError(f"ELF claims {shnum} sections")
        for i in range(shnum):
            headers.append(_unpack(sh_fmt, data, shoff + i * shentsize, "ELF section header"))
        names_off = headers[shstrndx][4] if shstrndx < len(headers) else None
        for sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, *_ in headers:
            name = _cstr(data, names_off + sh_name) if names_off is not None else ""
            size = 0 if sh_type == _SHT_NOBITS else sh_size
            sections.append(Section(name, sh_addr, size, sh_offset, writable=bool(sh_flags & 1), flags=sh_flags))
    return Binary("elf", data, order == 1, 8 if is64 else 4, sections, segments)


def _parse_pe(data: bytes | memoryview) -> Binary | None:
    (pe_off,) = _unpack("<I", data, 0x3C, "DOS header")
    if bytes(data[pe_off:pe_off + 4]) != b"PE\0\0":
        return None  # a DOS program, or a text file that happens to start with "MZ"
    _, nsections, _, _, _, opt_size, _ = _unpack("<HHIIIHH", data, pe_off + 4, "COFF header")
    opt = pe_off + 24
    (magic,) = _unpack("<H", data, opt, "PE optional header")
    if magic == 0x20B:  # PE32+
        (image_base,) = _unpack("<Q", data, opt + 24, "PE optional header")
        ptr_size = 8
    elif magic == 0x10B:  # PE32
        (image_base,) = _unpack("<I", data, opt + 28, "PE optional header")
        ptr_size = 4
    else:
        raise ValueError(f"unknown PE optional header magic {magic:#x}")
    sections, segments = [], []
    table = opt + opt_size
    for i in range(min(nsections, MAX_SECTIONS)):
        raw_name = _slice(data, table + i * 40, 8, "PE section header")
        vsize, vaddr, raw_size, raw_ptr, _, _, _, _, chars = _unpack(
            "<IIIIIIHHI", data, table + i * 40 + 8, "PE section header")
        name = raw_name.split(b"\0", 1)[0].decode("latin-1")
        # A section's file bytes are the smaller of its raw and virtual sizes (the rest is padding or zeros).
        size = min(raw_size, vsize) if vsize else raw_size
        writable = bool(chars & _IMAGE_SCN_MEM_WRITE)
        sections.append(Section(name, image_base + vaddr, size, raw_ptr, writable=writable, flags=chars))
        segments.append(Segment(image_base + vaddr, vsize, raw_ptr, size, writable=writable,
                                executable=bool(chars & 0x20000000)))
    return Binary("pe", data, True, ptr_size, sections, segments)


def _parse_macho(data: bytes | memoryview) -> Binary:
    e, ptr_size = _MACHO_MAGICS[bytes(data[:4])]
    _, _, _, _, ncmds, _, _ = _unpack(e + "IiiIIII", data, 0, "Mach-O header")
    offset = 32 if ptr_size == 8 else 28
    sections, segments = [], []
    for _ in range(min(ncmds, MAX_SECTIONS)):
        cmd, cmdsize = _unpack(e + "II", data, offset, "Mach-O load command")
        if cmdsize < 8:
            raise ValueError(f"Mach-O load command of {cmdsize} bytes")
        if cmd in (_LC_SEGMENT, _LC_SEGMENT_64):
            is64 = cmd == _LC_SEGMENT_64
            seg_fmt = e + ("16sQQQQiiII" if is64 else "16sIIIIiiII")
            segname, vmaddr, vmsize, fileoff, filesize, maxprot, initprot, nsects, _ = _unpack(
                seg_fmt, data, offset + 8, "Mach-O segment")
            segments.append(Segment(vmaddr, vmsize, fileoff, filesize, writable=bool(initprot & 2),
                                    executable=bool(initprot & 4), name=_name(segname),
                                    prot=(initprot, maxprot)))
            sect_fmt = e + ("16s16sQQIIIIIIII" if is64 else "16s16sIIIIIIIII")
            sect_at = offset + 8 + struct.calcsize(seg_fmt)
            sect_size = struct.calcsize(sect_fmt)
            for j in range(min(nsects, MAX_SECTIONS)):
                sectname, _, addr, size, sect_off, *_ = _unpack(sect_fmt, data, sect_at + j * sect_size,
                                                                "Mach-O section")
                sections.append(Section(_name(sectname), addr, size, sect_off,
                                        writable=bool(initprot & 2)))
        offset += cmdsize
    return Binary("macho", data, e == "<", ptr_size, sections, segments)


def _name(raw: object) -> str:
    assert isinstance(raw, bytes)
    return raw.split(b"\0", 1)[0].decode("latin-1")


def _parse_fat(data: bytes | memoryview) -> Binary | None:
    """A universal binary: the first slice that is a Mach-O file.

    0xcafebabe is also the magic of Java class files; those have no slice that starts with a
    Mach-O magic, so they come back as None (not a binary), never as an error.
    """
    is64 = bytes(data[:4]) == b"\xca\xfe\xba\xbf"
    (narch,) = _unpack(">I", data, 4, "fat header")
    entry_fmt = ">iiQQI4x" if is64 else ">iiIII"
    entry_size = struct.calcsize(entry_fmt)
    for i in range(min(narch, 64)):
        try:
            _, _, offset, size, _ = _unpack(entry_fmt, data, 8 + i * entry_size, "fat arch")
        except ValueError:
            return None
        if bytes(data[offset:offset + 4]) in _MACHO_MAGICS and offset + size <= len(data):
            return _parse_macho(memoryview(data)[offset:offset + size])
    return None
