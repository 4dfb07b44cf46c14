"""Hostile and broken images: a clear error or a skipped entry with a warning, never an escape or a hang.

Nothing is ever extracted: the tests also check that reading an image writes no file anywhere.
"""

import os
import tarfile

import pytest

from keelwatch.catalog import CATALOGERS
from keelwatch.catalog.walker import catalog_image
from keelwatch.errors import DigestMismatch, ImageError, UnsupportedMediaType
from keelwatch.images import open_image
from keelwatch.images.layers import Limits
from keelwatch.images.source import OpenOptions

from .builders import Entry, LayoutBuilder, file, oci_dir, pack, tar_bytes

STATUS = "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\nArchitecture: amd64\n" \
         "Source: zlib\n\n"


def catalog(path, options=None):
    opened = open_image(f"oci-dir:{path}", options)
    try:
        return catalog_image(opened, CATALOGERS)
    finally:
        opened.close()


def test_dotdot_entries_are_skipped_with_a_warning(tmp_path):
    layer = tar_bytes([file("../../evil", "x"), file("var/lib/dpkg/../../../../etc/cron.d/x", "y"),
                       file("var/lib/dpkg/status", STATUS)])
    result = catalog(oci_dir(tmp_path / "img", [layer]))
    assert [p.name for p in result.packages] == ["zlib1g"]
    skipped = {w.path for w in result.warnings}
    assert {"../../evil", "var/lib/dpkg/../../../../etc/cron.d/x"} <= skipped
    assert all("escapes the image root" in w.message for w in result.warnings)
    assert not (tmp_path / "evil").exists()


def test_absolute_paths_stay_inside_the_image(tmp_path):
    result = catalog(oci_dir(tmp_path / "img", [tar_bytes([file("/var/lib/dpkg/status", STATUS)])]))
    assert [(p.name, p.location) for p in result.packages] == [("zlib1g", "var/lib/dpkg/status")]


def test_symlink_out_of_the_root_is_not_followed(tmp_path):
    # A status "file" that is a link to the host's files: catalogers never read through links.
    layer = tar_bytes([Entry("var/lib/dpkg/status", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
                       Entry("etc/os-release", type=tarfile.SYMTYPE, linkname="../../../../../etc/os-release")])
    result = catalog(oci_dir(tmp_path / "img", [layer]))
    assert result.packages == []
    assert result.image.os is None  # the link led nowhere inside the image


def test_hard_link_to_a_missing_entry_is_a_warning(tmp_path):
    layer = tar_bytes([Entry("var/lib/dpkg/status", type=tarfile.LNKTYPE, linkname="nowhere/status")])
    result = catalog(oci_dir(tmp_path / "img", [layer]))
    assert result.packages == []
    assert any("hard link to nowhere/status" in w.message for w in result.warnings)


def test_hard_link_to_an_earlier_entry_is_read(tmp_path):
    layer = tar_bytes([file("var/lib/dpkg/status", STATUS),
                       Entry("var/lib/dpkg/status.d/zlib1g", type=tarfile.LNKTYPE, linkname="var/lib/dpkg/status")])
    result = catalog(oci_dir(tmp_path / "img", [layer]))
    assert sorted(p.location for p in result.packages) == ["var/lib/dpkg/status", "var/lib/dpkg/status.d/zlib1g"]


def test_device_files_are_never_read(tmp_path):
    layer = tar_bytes([Entry("dev/sda", type=tarfile.BLKTYPE), Entry("var/lib/dpkg/status", type=tarfile.CHRTYPE),
                       Entry("dev/fifo", type=tarfile.FIFOTYPE), file("etc/debian_version", "12.5\n")])
    result = catalog(oci_dir(tmp_path / "img", [layer]))
    assert result.packages == []
    assert result.image.os is not None and result.image.os.version_id == "12.5"


def test_gzip_bomb_stops_at_the_layer_limit(tmp_path):
    # 64 MiB of zeros compresses to ~64 KiB; with a 16 MiB limit the reader stops early, with a clear error.
    layer = tar_bytes([file("zeros", b"\0" * (64 << 20))])
    path = oci_dir(tmp_path / "img", [layer])
    assert sum(f.stat().st_size for f in (path / "blobs" / "sha256").iterdir()) < 1 << 20
    with pytest.raises(ImageError, match="decompresses to more than"):
        catalog(path, OpenOptions(limits=Limits(max_layer_bytes=16 << 20)))


def test_oversized_file_is_skipped_with_a_warning(tmp_path):
    layer = tar_bytes([file("var/lib/dpkg/status", STATUS + "X" * 2000)])
    result = catalog(oci_dir(tmp_path / "img", [layer]), OpenOptions(limits=Limits(max_file_bytes=1000)))
    assert result.packages == []
    assert any("over the per-file limit" in w.message for w in result.warnings)


def test_truncated_layer_is_an_error(tmp_path):
    layer = tar_bytes([file("var/lib/dpkg/status", STATUS), file("big", os.urandom(200_000))])
    path = oci_dir(tmp_path / "img", [layer])
    for blob in (path / "blobs" / "sha256").iterdir():
        data = blob.read_bytes()
        if data[:2] == b"\x1f\x8b":
            blob.write_bytes(data[: len(data) // 2])  # the download that stopped half way
    with pytest.raises(ImageError, match="truncated"):
        catalog(path)


def test_truncated_archive_is_an_error(tmp_path):
    archive = pack(oci_dir(tmp_path / "img", [tar_bytes([file("a", os.urandom(100_000))])]), tmp_path / "i.tar")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) - 60_000])
    with pytest.raises(ImageError, match="truncated|not a readable tar"):
        open_image(f"oci-archive:{archive}")


def test_manifest_that_lies_about_a_layer_digest(tmp_path):
    path = oci_dir(tmp_path / "img", [tar_bytes([file("var/lib/dpkg/status", STATUS)])], lie_layer=0)
    with pytest.raises(DigestMismatch, match="the manifest says"):
        catalog(path)


def test_config_blob_that_does_not_hash_to_its_name(tmp_path):
    path = oci_dir(tmp_path / "img", [tar_bytes([file("a", "b")])])
    for blob in (path / "blobs" / "sha256").iterdir():
        if b'"rootfs"' in blob.read_bytes():
            blob.write_bytes(blob.read_bytes().replace(b'"linux"', b'"LINUX"'))
    with pytest.raises(DigestMismatch):
        open_image(f"oci-dir:{path}")


def test_unknown_layer_media_type(tmp_path):
    path = oci_dir(tmp_path / "img", [tar_bytes([file("a", "b")])], media_type="application/x-evil")
    with pytest.raises(UnsupportedMediaType, match="application/x-evil"):
        catalog(path)


def test_garbage_instead_of_a_tar(tmp_path):
    builder = LayoutBuilder(tmp_path / "img")
    builder.index([builder.image([os.urandom(4096)], kind="none")])
    with pytest.raises(ImageError, match="corrupt tar header"):
        catalog(tmp_path / "img")


def test_index_that_is_not_json(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "index.json").write_text("{nope")
    with pytest.raises(ImageError, match="not valid JSON"):
        open_image(f"oci-dir:{tmp_path / 'img'}")


def test_blob_path_outside_the_layout_is_refused(tmp_path):
    builder = LayoutBuilder(tmp_path / "img")
    desc = builder.image([tar_bytes([file("a", "b")])])
    desc["digest"] = "sha256:../../../../etc/passwd"
    builder.index([desc])
    with pytest.raises(ImageError):
        open_image(f"oci-dir:{tmp_path / 'img'}")


def test_reading_writes_nothing(tmp_path, monkeypatch):
    path = oci_dir(tmp_path / "img", [tar_bytes([file("var/lib/dpkg/status", STATUS), file("../x", "y")])])
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = {p for p in tmp_path.rglob("*")}
    catalog(path)
    assert {p for p in tmp_path.rglob("*")} == before


def test_whiteouts_remove_packages_of_lower_layers(tmp_path):
    lower = tar_bytes([file("var/lib/dpkg/status", STATUS),
                       file("usr/lib/app/var/lib/dpkg/status", STATUS)])
    upper = tar_bytes([file("var/lib/dpkg/.wh.status", ""), file("usr/lib/app/.wh..wh..opq", "")])
    result = catalog(oci_dir(tmp_path / "img", [lower, upper]))
    assert result.packages == []


def test_a_package_keeps_the_layer_that_introduced_it(tmp_path):
    second = STATUS + "Package: libexpat1\nStatus: install ok installed\nVersion: 2.5.0-1\nArchitecture: amd64\n\n"
    path = oci_dir(tmp_path / "img", [tar_bytes([file("var/lib/dpkg/status", STATUS)]),
                                      tar_bytes([file("var/lib/dpkg/status", second)])])
    result = catalog(path)
    layers = {p.name: p.layer_digest for p in result.packages}
    assert layers["zlib1g"] == result.image.layers[0].digest
    assert layers["libexpat1"] == result.image.layers[1].digest
