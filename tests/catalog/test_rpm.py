"""The rpm cataloger: which files it reads, exactly what it finds in each database format, and an image walk."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import sqlite3
import struct
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keelwatch.catalog import CATALOGERS, rpmdb
from keelwatch.catalog.base import CatalogFile, Want
from keelwatch.catalog.rpm import RpmCataloger, rpm_ecosystem, split_source_rpm
from keelwatch.catalog.walker import catalog_image
from keelwatch.images import open_image
from keelwatch.images.layers import TarEntry
from keelwatch.model import OSRelease

FIXTURES = Path(__file__).parent / "fixtures" / "rpm"
SQLITE = (FIXTURES / "rpmdb.sqlite").read_bytes()
BDB = (FIXTURES / "Packages").read_bytes()  # Berkeley DB hash, little-endian, headers on overflow pages
BDB_BE = (FIXTURES / "Packages.be").read_bytes()  # big-endian, 16 KiB pages, headers inside the hash pages
OS_RELEASE = (FIXTURES / "os-release").read_bytes()
RHEL = OSRelease(id="rhel", version_id="9.3")


class NoView:
    def read(self, path):
        return None

    def under(self, directory):
        return []


def parse(content: bytes, path: str = "var/lib/rpm/rpmdb.sqlite"):
    return list(RpmCataloger().parse(CatalogFile(path, content), NoView()))


def ndb(blobs: list[bytes]) -> bytes:
    """An NDB ``Packages.db`` holding ``blobs``, laid out as rpm's lib/backend/ndb/rpmpkg.c writes it.

    Debian's rpm has no NDB backend, so this is built here from the format, not by rpm (see README).
    """
    page = 4096
    slots, blob_area = [], bytearray()
    for index, blob in enumerate(blobs, start=1):
        offset = page + len(blob_area)  # blobs start after the one slot page, in 16-byte blocks
        record = b"BlbS" + struct.pack("<III", index, 0, len(blob)) + blob
        record += b"\0" * (-len(record) % 16 + 16)  # the tail rpm keeps after each blob
        slots.append(b"Slot" + struct.pack("<III", index, offset // 16, len(record) // 16))
        blob_area += record
    free = b"Slot" + bytes(12)
    header = b"RpmP" + struct.pack("<III", 0, 1, 1) + bytes(16)
    slot_page = header + b"".join(slots) + free * (page // 16 - 2 - len(slots))
    assert len(slot_page) == page
    return slot_page + bytes(blob_area)


def sqlite_blobs() -> list[bytes]:
    conn = sqlite3.connect(":memory:")
    conn.deserialize(SQLITE[:18] + b"\x01\x01" + SQLITE[20:])
    try:
        return [bytes(b) for (b,) in conn.execute("SELECT blob FROM Packages ORDER BY hnum")]
    finally:
        conn.close()


NDB = ndb(sqlite_blobs())


def test_selection_is_exactly_the_package_databases():
    c = RpmCataloger()
    names = ("rpmdb.sqlite", "Packages", "Packages.db")
    dbs = {f"{d}/{n}" for d in ("var/lib/rpm", "usr/lib/sysimage/rpm") for n in names}
    others = [
        "var/lib/rpm/rpmdb.sqlite-shm", "var/lib/rpm/Name", "var/lib/rpm/Basenames",
        "var/lib/rpm/__db.001", "var/lib/rpm/.rpm.lock", "var/lib/rpm/Packages.bak", "usr/share/rpm/Packages",
        "app/var/lib/rpm/rpmdb.sqlite", "var/lib/dpkg/status", "var/lib/rpm",
    ]
    wanted = {p: c.wants(TarEntry(path=p, type="file", mode=0o644, size=10)) for p in [*dbs, *others]}
    assert {p for p, w in wanted.items() if w is Want.PRIMARY} == dbs
    assert not [p for p, w in wanted.items() if w is Want.COMPANION]
    # sqlite's write-ahead log is kept beside the database, but only when it holds something.
    for wal in ("var/lib/rpm/rpmdb.sqlite-wal", "usr/lib/sysimage/rpm/rpmdb.sqlite-wal"):
        assert c.wants(TarEntry(path=wal, type="file", mode=0o644, size=4152)) is Want.COMPANION
        assert c.wants(TarEntry(path=wal, type="file", mode=0o644, size=0)) is Want.NO


EXPECTED = [
    # name, version, source name, source version, arch, licenses
    ("kw-hello", "1.2.3-4.el9", "kw-hello", "1.2.3-4.el9", "x86_64", ("MIT",)),
    # A subpackage: advisories name its source package, kw-hello.
    ("kw-hello-libs", "1.2.3-4.el9", "kw-hello", "1.2.3-4.el9", "x86_64", ("MIT AND BSD-3-Clause",)),
    # Epoch 2: in the version as rpm writes it, and on the source version (its file name has none).
    ("kw-tools", "2:0.9-1.el9", "kw-tools", "2:0.9-1.el9", "noarch", ("Apache-2.0",)),
]


@pytest.mark.parametrize("content", [SQLITE, BDB, BDB_BE, NDB],
                         ids=["sqlite", "bdb-le-overflow", "bdb-be-inline", "ndb"])
def test_content_is_the_same_in_every_database_format(content):
    found = sorted(parse(content), key=lambda p: p.name)
    assert [(p.name, p.version, p.source_name, p.source_version, p.arch, p.licenses) for p in found] == EXPECTED
    assert all(p.kind == "os" for p in found)
    files = {p.name: p.files for p in found}
    assert files == {
        "kw-hello": ("usr/bin/kw-hello", "usr/share/doc/kw-hello/README"),
        "kw-hello-libs": ("usr/lib64/libkwhello.so.1",),
        "kw-tools": ("etc/kw-tools.conf", "usr/share/kw-tools/tool.txt"),
    }


def db_with_pending_wal(tmp_path: Path) -> tuple[bytes, bytes]:
    """The sqlite fixture plus a -wal file holding a transaction not yet checkpointed (kw-hello-libs erased),
    both written by sqlite itself: the state an image is in if rpm's final checkpoint did not happen."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "rpmdb.sqlite"
    path.write_bytes(SQLITE)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        [(hnum,)] = [(h,) for h, b in conn.execute("SELECT hnum, blob FROM Packages")
                     if rpmdb.parse_header(bytes(b), [rpmdb.NAME])[rpmdb.NAME] == "kw-hello-libs"]
        conn.execute("DELETE FROM Packages WHERE hnum = ?", (hnum,))
        conn.commit()
        # Read while the connection is open: closing it would checkpoint the WAL into the database.
        return path.read_bytes(), (tmp_path / "rpmdb.sqlite-wal").read_bytes()
    finally:
        conn.close()


class Companions:
    def __init__(self, files):
        self.files = files

    def read(self, path):
        return self.files.get(path)

    def under(self, directory):
        return sorted(p for p in self.files if p.startswith(directory + "/"))


def test_sqlite_wal_with_pending_transactions_is_replayed(tmp_path):
    db, wal = db_with_pending_wal(tmp_path / "make")
    assert db == SQLITE and wal  # the erase exists only in the WAL
    path = "var/lib/rpm/rpmdb.sqlite"
    c = RpmCataloger()
    assert sorted(p.name for p in c.parse(CatalogFile(path, db), NoView())) == ["kw-hello", "kw-hello-libs", "kw-tools"]
    with_wal = c.parse(CatalogFile(path, db), Companions({path + "-wal": wal}))
    assert sorted(p.name for p in with_wal) == ["kw-hello", "kw-tools"]
    # A WAL that is not this database's (or garbage) is ignored by sqlite, as it would be by rpm.
    garbage = c.parse(CatalogFile(path, db), Companions({path + "-wal": b"\x37\x7f\x06\x82" + bytes(4000)}))
    assert sorted(p.name for p in garbage) == ["kw-hello", "kw-hello-libs", "kw-tools"]


def test_ecosystem_and_purl_in_trivys_shape():
    c = RpmCataloger()
    done = {p.name: c.complete(p, RHEL) for p in parse(SQLITE)}
    assert {p.ecosystem for p in done.values()} == {"Red Hat:9"}
    assert done["kw-hello"].purl == "pkg:rpm/redhat/kw-hello@1.2.3-4.el9?arch=x86_64&distro=redhat-9.3"
    # Epoch and module stream go in qualifiers; the purl version is VERSION-RELEASE.
    assert done["kw-tools"].purl == ("pkg:rpm/redhat/kw-tools@0.9-1.el9?arch=noarch&distro=redhat-9.3&epoch=2"
                                     "&modularitylabel=kw-tools:0.9:9020020230101:abcd1234")
    # No os-release: no namespace or distro is made up, and the ecosystem is unknown.
    bare = c.complete(next(p for p in parse(SQLITE) if p.name == "kw-hello"), None)
    assert (bare.ecosystem, bare.purl) == ("", "pkg:rpm/kw-hello@1.2.3-4.el9?arch=x86_64")
    alma = c.complete(next(p for p in parse(SQLITE) if p.name == "kw-hello"), OSRelease("almalinux", "9.3"))
    assert (alma.ecosystem, alma.purl) == (
        "AlmaLinux:9", "pkg:rpm/alma/kw-hello@1.2.3-4.el9?arch=x86_64&distro=alma-9.3")


@pytest.mark.parametrize(("os", "ecosystem"), [
    (OSRelease("rhel", "8.10"), "Red Hat:8"),
    (OSRelease("rocky", "9.4"), "Rocky Linux:9"),
    (OSRelease("centos", "7"), "CentOS:7"),
    (OSRelease("amzn", "2023"), "Amazon Linux:2023"),
    (OSRelease("opensuse-leap", "15.5"), "openSUSE:Leap 15.5"),
    (OSRelease("opensuse-tumbleweed", "20240101"), "openSUSE:Tumbleweed"),
    (OSRelease("sles", "15.5"), "SUSE:Linux Enterprise Server 15 SP5"),
    (OSRelease("sles", "15"), "SUSE:Linux Enterprise Server 15"),
    (OSRelease("azurelinux", "3.0"), "Azure Linux:3"),
    (OSRelease("fedora", ""), "Fedora"),
    (OSRelease("somethingelse", "1"), ""),
    (None, ""),
])
def test_ecosystem_names(os, ecosystem):
    assert rpm_ecosystem(os) == ecosystem


@pytest.mark.parametrize(("filename", "parts"), [
    ("openssl-3.0.7-27.el9.src.rpm", ("openssl", "3.0.7", "27.el9")),
    ("python3.11-3.11.5-1.el9_3.src.rpm", ("python3.11", "3.11.5", "1.el9_3")),
    ("kernel-rt-5.14.0-362.8.1.el9_3.src.rpm", ("kernel-rt", "5.14.0", "362.8.1.el9_3")),
    ("(none)", None),
    ("", None),
    ("elasticsearch-8.17.0-1-src.rpm", None),  # not NAME-VERSION-RELEASE.ARCH.rpm: the binary's own name is used
])
def test_split_source_rpm(filename, parts):
    assert split_source_rpm(filename) == parts


def test_gpg_pubkey_pseudo_packages_are_not_packages():
    # rpm records an imported signing key as a "package" named gpg-pubkey: keep it out of the SBOM.
    blob = sqlite_blobs()[0]
    tags = rpmdb.parse_header(blob)
    assert tags[rpmdb.NAME] == "kw-hello-libs"
    # Rename it in place: "kw-hello-libs" → "gpg-pubkey" + NULs (same length, so offsets stay valid).
    renamed = blob.replace(b"kw-hello-libs\0", b"gpg-pubkey\0\0\0\0", 1)
    assert rpmdb.parse_header(renamed)[rpmdb.NAME] == "gpg-pubkey"
    assert [p.name for p in parse(ndb([renamed, *sqlite_blobs()[1:]]))] == ["kw-hello", "kw-tools"]


def test_header_reader_reads_every_tag_of_a_real_header():
    tags = rpmdb.parse_header(sqlite_blobs()[2])
    assert tags[rpmdb.NAME] == "kw-tools" and tags[rpmdb.EPOCH] == (2,)
    assert tags[rpmdb.MODULARITYLABEL] == "kw-tools:0.9:9020020230101:abcd1234"
    assert tags[rpmdb.DIRNAMES] == ("/etc/", "/usr/share/kw-tools/")
    assert tags[1004] == "Tools (keelwatch test fixture)"  # SUMMARY, an I18N string


@pytest.mark.parametrize(("content", "message"), [
    (b"not a database at all, just text that is long enough", "unsupported rpm database format"),
    (struct.pack(">II", 2, 10) + bytes(40), "unsupported rpm database format"),  # a bare header is no database
    (SQLITE[:5000], "sqlite database unreadable"),
    (BDB[:4096 + 100], "Berkeley DB is truncated"),
    (BDB[:4096] + bytes(len(BDB) - 4096), "Berkeley DB"),  # the hash pages zeroed: no packages is no answer
    (b"RpmP" + struct.pack("<III", 0, 0, 9999) + bytes(16), "slot page count"),
    (NDB[:5000], "NDB database: package 1 is truncated"),
])
def test_corrupt_databases_are_errors_not_silence(content, message):
    with pytest.raises(ValueError, match=message):
        parse(content)


def test_corrupt_header_is_an_error():
    blob = bytearray(sqlite_blobs()[0])
    blob[0:4] = struct.pack(">I", 0xFFFFFF)  # an index count rpm itself refuses
    with pytest.raises(ValueError, match="claims"):
        rpmdb.parse_header(bytes(blob))
    with pytest.raises(ValueError):
        parse(ndb([bytes(blob)]))


def first_overflow_reference(data: bytes) -> int:
    """Offset in ``data`` of the first value stored off-page (an H_OFFPAGE item) in page 1 of a 4 KiB-page BDB."""
    page = 4096
    (entries,) = struct.unpack_from("<H", data, page + 20)
    offsets = struct.unpack_from(f"<{entries}H", data, page + 26)
    return next(page + o for o in offsets[1::2] if data[page + o] == 3)


def test_berkeley_db_overflow_chain_loop_is_caught_not_followed_forever():
    data = bytearray(BDB)
    ref = first_overflow_reference(BDB)
    first_page, _length = struct.unpack_from("<II", data, ref + 4)
    struct.pack_into("<I", data, ref + 8, 1 << 20)  # the item claims more than its page holds…
    struct.pack_into("<I", data, first_page * 4096 + 16, first_page)  # …and its page says "next: me"
    with pytest.raises(ValueError, match="broken overflow chain"):
        parse(bytes(data))


def test_berkeley_db_overflow_item_shorter_than_announced():
    data = bytearray(BDB)
    struct.pack_into("<I", data, first_overflow_reference(BDB) + 8, 5000)
    with pytest.raises(ValueError, match="expected 5000"):
        parse(bytes(data))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["sqlite", "bdb", "bdb_be", "ndb"]), st.data())
def test_mutated_databases_raise_value_error_or_parse(kind, data):
    """Any bytes changed anywhere: the reader parses or raises ValueError (which the walker reports), nothing else."""
    content = bytearray({"sqlite": SQLITE, "bdb": BDB, "bdb_be": BDB_BE, "ndb": NDB}[kind])
    for _ in range(data.draw(st.integers(1, 8))):
        content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ValueError):
        parse(bytes(content))


# --- end to end: an OCI layout built here, opened and walked as any image ---------------------------------------


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_dir(root: Path, layers: list[dict[str, bytes]]) -> Path:
    """A one-image OCI layout: each layer a gzip tar of ``{path: content}``, no platform annotation."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict:
        digest = _sha(data)
        (blobs / digest.split(":")[1]).write_bytes(data)
        return {"digest": digest, "size": len(data)}

    descriptors, diff_ids = [], []
    for files in layers:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path, content in files.items():
                info = tarfile.TarInfo(path)
                info.size, info.mode, info.mtime = len(content), 0o644, 1700000000
                tar.addfile(info, io.BytesIO(content))
        diff_ids.append(_sha(raw.getvalue()))
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            **blob(gzip.compress(raw.getvalue(), mtime=0))})
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           **blob(json.dumps(config).encode())},
                "layers": descriptors}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            **blob(json.dumps(manifest).encode())}]}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return root


def walk(layout: Path):
    opened = open_image(f"oci-dir:{layout}")
    try:
        return catalog_image(opened, CATALOGERS)
    finally:
        opened.close()


def test_end_to_end_rhel_image(tmp_path):
    # The /usr location Fedora and SUSE use; the os-release of a RHEL 9.3 (UBI) image.
    layout = oci_dir(tmp_path / "img", [
        {"etc/os-release": OS_RELEASE, "usr/lib/sysimage/rpm/rpmdb.sqlite": SQLITE},
    ])
    result = walk(layout)
    assert result.warnings == []
    assert (result.image.os.id, result.image.os.version_id) == ("rhel", "9.3")
    rpms = sorted((p for p in result.packages if p.found_by == "rpm"), key=lambda p: p.name)
    assert [(p.name, p.version, p.ecosystem) for p in rpms] == [
        ("kw-hello", "1.2.3-4.el9", "Red Hat:9"), ("kw-hello-libs", "1.2.3-4.el9", "Red Hat:9"),
        ("kw-tools", "2:0.9-1.el9", "Red Hat:9")]
    assert rpms[0].purl == "pkg:rpm/redhat/kw-hello@1.2.3-4.el9?arch=x86_64&distro=redhat-9.3"
    assert {(p.location, p.layer_digest) for p in rpms} == {
        ("usr/lib/sysimage/rpm/rpmdb.sqlite", result.image.layers[0].digest)}
    assert result.catalogers["rpm"] == RpmCataloger.version


def test_end_to_end_sqlite_wal_in_the_same_layer(tmp_path):
    db, wal = db_with_pending_wal(tmp_path / "make")
    layout = oci_dir(tmp_path / "img", [{
        "etc/os-release": OS_RELEASE, "var/lib/rpm/rpmdb.sqlite-wal": wal, "var/lib/rpm/rpmdb.sqlite": db,
        "var/lib/rpm/rpmdb.sqlite-shm": bytes(32768),
    }])
    result = walk(layout)
    assert result.warnings == []
    assert sorted(p.name for p in result.packages if p.found_by == "rpm") == ["kw-hello", "kw-tools"]


def test_end_to_end_corrupt_database_is_a_warning_not_a_crash(tmp_path):
    layout = oci_dir(tmp_path / "img", [
        {"etc/os-release": OS_RELEASE, "var/lib/rpm/Packages": b"\0" * 8192, "var/lib/rpm/rpmdb.sqlite": SQLITE[:9000]},
    ])
    result = walk(layout)
    assert [p for p in result.packages if p.found_by == "rpm"] == []
    warnings = sorted((w.path, w.message) for w in result.warnings if w.cataloger == "rpm")
    assert [path for path, _ in warnings] == ["var/lib/rpm/Packages", "var/lib/rpm/rpmdb.sqlite"]
    assert "unsupported rpm database format" in warnings[0][1]
    assert "sqlite" in warnings[1][1]
