"""Read rpm's installed-package database from bytes: header blobs out of sqlite, Berkeley DB or NDB.

rpm keeps one *header* per installed package, in the same binary format whatever the database:

- sqlite ``rpmdb.sqlite`` (rpm >= 4.16: RHEL/Alma/Rocky 9, Fedora >= 33): table ``Packages(hnum, blob)``;
- Berkeley DB hash ``Packages`` (older rpm: RHEL <= 8, CentOS 7, Amazon Linux 2);
- NDB ``Packages.db`` (SUSE: SLES 15 SP3+, openSUSE Leap 15.3+).

The format is told from the content (magic numbers), not the file name. Nothing is written to disk
(except a sqlite database with a non-empty ``-wal`` file, which only sqlite can replay, from files):
sqlite reads the bytes through ``deserialize``; the other two formats are walked here directly (the
page layouts as knqyf263/go-rpmdb reads them, which is what Trivy uses). Every offset read from the
file is bounds-checked: a corrupt or hostile database raises ``ValueError``, never loops or reads
past its end.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import tempfile
from collections.abc import Iterable, Iterator

# Header tags keelwatch reads (rpmtag.h).
NAME, VERSION, RELEASE, EPOCH = 1000, 1001, 1002, 1003
LICENSE, ARCH, OLDFILENAMES, SOURCERPM = 1014, 1022, 1027, 1044
DIRINDEXES, BASENAMES, DIRNAMES = 1116, 1117, 1118
MODULARITYLABEL = 5096

# Header data types (rpmtag.h rpmTagType).
_CHAR, _INT8, _INT16, _INT32, _INT64, _STRING, _BIN, _STRING_ARRAY, _I18NSTRING = range(1, 10)
_INT_FORMATS = {_CHAR: "B", _INT8: "B", _INT16: "H", _INT32: "I", _INT64: "Q"}

# Sanity bounds from rpm's own header reader (hdrblob: HEADER_TAGS_MAX, HEADER_DATA_MAX).
_MAX_TAGS = 0xFFFF
_MAX_DATA = 256 << 20

Value = str | bytes | tuple[int, ...] | tuple[str, ...]


def parse_header(blob: bytes, tags: Iterable[int] | None = None) -> dict[int, Value]:
    """The values of ``tags`` (all tags if None) in one header blob as rpm stores it in its database.

    Layout (big-endian): index count, data length, that many 16-byte entries (tag, type, offset,
    count), then the data store. Entries past the immutable region ("dribbles", added at install
    time) come later in the index and win over a region entry of the same tag, as in rpm.
    """
    if len(blob) < 8:
        raise ValueError("rpm header too short")
    il, dl = struct.unpack_from(">II", blob, 0)
    if il > _MAX_TAGS or dl > _MAX_DATA:
        raise ValueError(f"rpm header claims {il} tags and {dl} data bytes")
    data_start = 8 + 16 * il
    if data_start + dl > len(blob):
        raise ValueError("rpm header is truncated")
    wanted = None if tags is None else set(tags)
    values: dict[int, Value] = {}
    for i in range(il):
        tag, type_, offset, count = struct.unpack_from(">iIiI", blob, 8 + 16 * i)
        if wanted is not None and tag not in wanted:
            continue
        if not 0 <= offset <= dl:
            raise ValueError(f"rpm header tag {tag}: offset {offset} outside the data")
        values[tag] = _value(blob, data_start + offset, data_start + dl, type_, count, tag)
    return values


def _value(blob: bytes, pos: int, end: int, type_: int, count: int, tag: int) -> Value:
    """One entry's value: ``count`` items of ``type_`` from ``blob[pos:]``, not reading past ``end``."""
    if type_ in _INT_FORMATS:
        fmt = _INT_FORMATS[type_]
        if count > (end - pos) // struct.calcsize(fmt):
            raise ValueError(f"rpm header tag {tag}: {count} values do not fit")
        return struct.unpack_from(f">{count}{fmt}", blob, pos)
    if type_ == _BIN:
        if count > end - pos:
            raise ValueError(f"rpm header tag {tag}: {count} bytes do not fit")
        return blob[pos:pos + count]
    if type_ in (_STRING, _STRING_ARRAY, _I18NSTRING):
        if count > end - pos:  # each string takes at least its NUL: more cannot fit
            raise ValueError(f"rpm header tag {tag}: {count} strings do not fit")
        strings = []
        for _ in range(1 if type_ == _STRING else count):
            nul = blob.find(b"\0", pos, end)
            if nul < 0:
                raise ValueError(f"rpm header tag {tag}: unterminated string")
            strings.append(blob[pos:nul].decode("utf-8", "replace"))
            pos = nul + 1
        if type_ == _STRING_ARRAY:
            return tuple(strings)
        return strings[0] if strings else ""  # an I18N string's untranslated text comes first
    raise ValueError(f"rpm header tag {tag}: unknown data type {type_}")


# --- databases -------------------------------------------------------------------------------------

SQLITE_MAGIC = b"SQLite format 3\0"
_NDB_MAGIC = b"RpmP"
_BDB_HASH_MAGIC = 0x061561
_BDB_BTREE_MAGIC = 0x053162


def header_blobs(data: bytes, wal: bytes | None = None) -> list[bytes]:
    """Every package header blob in an rpm database file, whichever of the three formats it is.

    ``wal`` is the sqlite database's ``-wal`` file, if the image has one with content.
    """
    if not data:
        return []  # an empty database file holds no packages
    if data.startswith(SQLITE_MAGIC):
        return _sqlite_blobs_with_wal(data, wal) if wal else _sqlite_blobs(data)
    if data[:4] == _NDB_MAGIC:
        return list(_ndb_blobs(data))
    if len(data) >= 26:
        magic_le, magic_be = struct.unpack_from("<I", data, 12)[0], struct.unpack_from(">I", data, 12)[0]
        if _BDB_HASH_MAGIC in (magic_le, magic_be):
            return list(_bdb_blobs(data, "<" if magic_le == _BDB_HASH_MAGIC else ">"))
        if _BDB_BTREE_MAGIC in (magic_le, magic_be):
            raise ValueError("unsupported rpm database format: Berkeley DB btree (rpm uses hash for Packages)")
    raise ValueError("unsupported rpm database format: not sqlite, Berkeley DB hash or NDB")


def _sqlite_blobs(data: bytes) -> list[bytes]:
    # rpm runs sqlite in WAL mode (header bytes 18/19 = 2); an in-memory database cannot, so the copy
    # is switched to rollback-journal mode. That reads the database as of its last checkpoint, which
    # is all of it when the -wal file is empty: rpm checkpoints when it closes the database, so that is
    # the usual case in an image (and in the fixture rpm made).
    if data[18:20] == b"\x02\x02":
        data = data[:18] + b"\x01\x01" + data[20:]
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(data)
        conn.execute("PRAGMA query_only = ON")
        return _packages_table(conn)
    finally:
        conn.close()


def _sqlite_blobs_with_wal(data: bytes, wal: bytes) -> list[bytes]:
    # Transactions not yet checkpointed live only in the -wal file, and only sqlite can replay it: from
    # files. So in this (rare) case the two are written to a private temp dir, read there and deleted.
    with tempfile.TemporaryDirectory(prefix="keelwatch-rpmdb-") as tmp:
        path = os.path.join(tmp, "rpmdb.sqlite")
        with open(path, "wb") as f:
            f.write(data)
        with open(path + "-wal", "wb") as f:
            f.write(wal)
        try:
            conn = sqlite3.connect(path)
        except sqlite3.Error as exc:
            raise ValueError(f"rpm sqlite database unreadable: {exc}") from exc
        try:
            return _packages_table(conn)
        finally:
            conn.close()


def _packages_table(conn: sqlite3.Connection) -> list[bytes]:
    try:
        rows = conn.execute("SELECT blob FROM Packages ORDER BY hnum").fetchall()
    except sqlite3.Error as exc:
        raise ValueError(f"rpm sqlite database unreadable: {exc}") from exc
    return [bytes(blob) for (blob,) in rows if blob is not None]


# NDB (rpm lib/backend/ndb/rpmpkg.c): a 32-byte header, slot pages of 16-byte slots, blobs in 16-byte blocks.
_NDB_SLOT = b"Slot"
_NDB_BLOB = b"BlbS"
_NDB_PAGE = 4096
_NDB_BLOCK = 16


def _ndb_blobs(data: bytes) -> Iterator[bytes]:
    if len(data) < 32:
        raise ValueError("rpm NDB database is truncated")
    _magic, version, _generation, slot_pages = struct.unpack_from("<4sIII", data, 0)
    if version != 0:
        raise ValueError(f"unsupported rpm database format: NDB version {version}")
    if not 0 < slot_pages <= 2048 or slot_pages * _NDB_PAGE > len(data):
        raise ValueError(f"rpm NDB database: bad slot page count {slot_pages}")
    # The header takes the place of the first two slots of the first page.
    for pos in range(32, slot_pages * _NDB_PAGE, 16):
        magic, pkg_index, block_offset, _block_count = struct.unpack_from("<4sIII", data, pos)
        if magic != _NDB_SLOT:
            raise ValueError(f"rpm NDB database: bad slot at byte {pos}")
        if pkg_index == 0:
            continue  # a free slot
        start = block_offset * _NDB_BLOCK
        if start + 16 > len(data):
            raise ValueError(f"rpm NDB database: package {pkg_index} lies past the end")
        blob_magic, blob_index, _checksum, length = struct.unpack_from("<4sIII", data, start)
        if blob_magic != _NDB_BLOB or blob_index != pkg_index:
            raise ValueError(f"rpm NDB database: no blob for package {pkg_index} where its slot points")
        if start + 16 + length > len(data):
            raise ValueError(f"rpm NDB database: package {pkg_index} is truncated")
        yield data[start + 16:start + 16 + length]


# Berkeley DB hash (libdb db_page.h): page 0 is the metadata page; hash pages hold key/value pairs
# as offsets into the page; values too big for a page live on chains of overflow pages.
_P_HASH_UNSORTED, _P_OVERFLOW, _P_HASH = 2, 7, 13
_H_KEYDATA, _H_OFFPAGE = 1, 3
_PAGE_HEADER = 26


def _bdb_blobs(data: bytes, order: str) -> Iterator[bytes]:
    page_size, = struct.unpack_from(order + "I", data, 20)
    encryption, meta_type = data[24], data[25]
    last_page, = struct.unpack_from(order + "I", data, 32)
    if page_size not in {512 << i for i in range(8)}:
        raise ValueError(f"rpm Berkeley DB: bad page size {page_size}")
    if encryption:
        raise ValueError("unsupported rpm database format: encrypted Berkeley DB")
    if meta_type != 8:
        raise ValueError(f"rpm Berkeley DB: page 0 is not hash metadata (type {meta_type})")
    if (last_page + 1) * page_size > len(data):
        raise ValueError(f"rpm Berkeley DB is truncated: {last_page + 1} pages of {page_size} bytes expected")
    (records,) = struct.unpack_from(order + "I", data, 88)  # hash metadata: number of keys stored
    found = 0
    for number in range(1, last_page + 1):
        page = memoryview(data)[number * page_size:(number + 1) * page_size]
        if page[25] not in (_P_HASH, _P_HASH_UNSORTED):
            continue
        entries, = struct.unpack_from(order + "H", page, 20)
        if _PAGE_HEADER + 2 * entries > page_size:
            raise ValueError(f"rpm Berkeley DB: page {number} claims {entries} entries")
        offsets = struct.unpack_from(f"{order}{entries}H", page, _PAGE_HEADER)
        for i in range(0, entries - 1, 2):  # key, value, key, value, …
            key = _bdb_item(data, page, offsets, i, page_size, order)
            found += 1
            if key == b"\0\0\0\0":
                continue  # rpm's record 0 holds its next header number, not a package
            value = _bdb_item(data, page, offsets, i + 1, page_size, order)
            if value is not None and len(value) >= 8:
                yield value
    if records and not found:
        # The metadata says there are packages, the pages hold none: that is damage, not an empty system.
        raise ValueError(f"rpm Berkeley DB: {records} records announced, none found in its hash pages")


def _bdb_item(data: bytes, page: memoryview, offsets: tuple[int, ...], i: int, page_size: int,
              order: str) -> bytes | None:
    start = offsets[i]
    # Items are packed from the page's end down: an item ends where the previous one starts.
    end = page_size if i == 0 else offsets[i - 1]
    if not _PAGE_HEADER <= start < end <= page_size:
        raise ValueError("rpm Berkeley DB: item outside its page")
    kind = page[start]
    if kind == _H_KEYDATA:
        return bytes(page[start + 1:end])
    if kind == _H_OFFPAGE:
        if start + 12 > end:
            raise ValueError("rpm Berkeley DB: short overflow reference")
        first, total = struct.unpack_from(order + "II", page, start + 4)
        return _bdb_overflow(data, first, total, page_size, order)
    return None  # duplicates (H_DUPLICATE / H_OFFDUP): rpm's Packages never has them


def _bdb_overflow(data: bytes, number: int, total: int, page_size: int, order: str) -> bytes:
    if total > _MAX_DATA:
        raise ValueError(f"rpm Berkeley DB: overflow item of {total} bytes")
    out = bytearray()
    seen: set[int] = set()
    while number and len(out) < total:
        if number in seen or (number + 1) * page_size > len(data):
            raise ValueError(f"rpm Berkeley DB: broken overflow chain at page {number}")
        seen.add(number)
        page = memoryview(data)[number * page_size:(number + 1) * page_size]
        if page[25] != _P_OVERFLOW:
            raise ValueError(f"rpm Berkeley DB: page {number} in an overflow chain is type {page[25]}")
        next_page, = struct.unpack_from(order + "I", page, 16)
        used, = struct.unpack_from(order + "H", page, 22)  # on overflow pages: bytes of data held
        if _PAGE_HEADER + used > page_size:
            raise ValueError(f"rpm Berkeley DB: overflow page {number} claims {used} bytes")
        out += page[_PAGE_HEADER:_PAGE_HEADER + used]
        number = next_page
    if len(out) != total:
        raise ValueError(f"rpm Berkeley DB: overflow item is {len(out)} bytes, expected {total}")
    return bytes(out)
