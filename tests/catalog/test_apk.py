"""The apk cataloger: which files it reads, exactly what it finds, and the same through a real image walk."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from keelwatch.catalog import CATALOGERS
from keelwatch.catalog.apk import ApkCataloger, parse_installed
from keelwatch.catalog.base import CatalogFile, Want
from keelwatch.catalog.walker import catalog_image
from keelwatch.images import open_image
from keelwatch.images.layers import TarEntry
from keelwatch.model import OSRelease

FIXTURES = Path(__file__).parent / "fixtures" / "apk"
INSTALLED = (FIXTURES / "lib/apk/db/installed").read_bytes()
OS_RELEASE = (FIXTURES / "etc/os-release").read_bytes()
ALPINE = OSRelease(id="alpine", version_id="3.19.0")


class NoView:
    def read(self, path):
        return None

    def under(self, directory):
        return []


def parse(content: bytes, path: str = "lib/apk/db/installed"):
    return list(ApkCataloger().parse(CatalogFile(path, content), NoView()))


def test_selection_is_exactly_the_installed_database():
    c = ApkCataloger()
    paths = [
        "lib/apk/db/installed", "usr/lib/apk/db/installed",
        "lib/apk/db/scripts.tar", "lib/apk/db/triggers", "lib/apk/db/lock", "lib/apk/db/installed.new",
        "etc/apk/world", "etc/apk/repositories", "var/lib/apk/db/installed", "app/lib/apk/db/installed",
        "lib/apk/db", "etc/os-release",
    ]
    wanted = {p: c.wants(TarEntry(path=p, type="file", mode=0o644, size=10)) for p in paths}
    assert {p for p, w in wanted.items() if w is Want.PRIMARY} == {"lib/apk/db/installed", "usr/lib/apk/db/installed"}
    assert not [p for p, w in wanted.items() if w is Want.COMPANION]
    assert c.uses_companions is False


def test_content_of_a_real_installed_database():
    found = [ApkCataloger().complete(p, ALPINE) for p in parse(INSTALLED)]
    assert [(p.name, p.version, p.source_name, p.source_version, p.arch, p.kind, p.ecosystem) for p in found] == [
        ("bash", "5.2.21-r0", "bash", "5.2.21-r0", "x86_64", "os", "Alpine:v3.19"),
        # busybox-binsh is built from the busybox aport: advisories name "busybox".
        ("busybox-binsh", "1.36.1-r15", "busybox", "1.36.1-r15", "x86_64", "os", "Alpine:v3.19"),
        ("musl", "1.2.4_git20230717-r4", "musl", "1.2.4_git20230717-r4", "x86_64", "os", "Alpine:v3.19"),
        ("readline", "8.2.1-r2", "readline", "8.2.1-r2", "x86_64", "os", "Alpine:v3.19"),
    ]
    by_name = {p.name: p for p in found}
    assert by_name["musl"].purl == "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=3.19.0"
    assert by_name["busybox-binsh"].purl == "pkg:apk/alpine/busybox-binsh@1.36.1-r15?arch=x86_64&distro=3.19.0"
    # R lines are files in the directory of the F line before them; F lines alone own nothing listed.
    assert by_name["musl"].files == ("lib/ld-musl-x86_64.so.1", "lib/libc.musl-x86_64.so.1")
    assert by_name["readline"].files == ("etc/inputrc", "usr/lib/libreadline.so.8")
    assert by_name["busybox-binsh"].files == ("bin/sh",)
    assert by_name["bash"].files == ()
    assert by_name["bash"].licenses == ("GPL-3.0-or-later",)


@pytest.mark.parametrize(("os", "ecosystem", "purl_tail"), [
    (OSRelease(id="alpine", version_id="3.20.0_alpha20240329"), "Alpine:v3.20",
     "alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=3.20.0_alpha20240329"),
    # Wolfi and Chainguard are rolling: OSV names them without a release.
    (OSRelease(id="wolfi", version_id="20230201"), "Wolfi",
     "wolfi/musl@1.2.4_git20230717-r4?arch=x86_64&distro=20230201"),
    (OSRelease(id="chainguard", version_id="20230214"), "Chainguard",
     "chainguard/musl@1.2.4_git20230717-r4?arch=x86_64&distro=20230214"),
    # No os-release: the family is known (apk), the branch is not, and no distro is claimed.
    (None, "Alpine", "alpine/musl@1.2.4_git20230717-r4?arch=x86_64"),
    # Another distribution's release number must not end up in an Alpine purl.
    (OSRelease(id="postmarketos", version_id="v23.12"), "Alpine", "alpine/musl@1.2.4_git20230717-r4?arch=x86_64"),
])
def test_ecosystem_and_purl_per_release(os, ecosystem, purl_tail):
    musl = next(p for p in parse(INSTALLED) if p.name == "musl")
    done = ApkCataloger().complete(musl, os)
    assert done.ecosystem == ecosystem
    assert done.purl == "pkg:apk/" + purl_tail


def test_stanza_layout_details():
    # No trailing blank line, CRLF line ends, an R before any F (a file in the root), blank lines in
    # a row: all as apk may leave them.
    text = "P:a\r\nV:1-r0\r\nR:top\r\nF:usr/bin\r\nR:x\r\n\r\n\r\nP:b\nV:2-r0\no:bsrc"
    [a, b] = parse(text.encode())
    assert (a.name, a.files, a.source_name) == ("a", ("top", "usr/bin/x"), "a")
    assert (b.name, b.version, b.source_name, b.arch) == ("b", "2-r0", "bsrc", "")


@pytest.mark.parametrize("content", [
    b"this is a corrupt db\n\nP:musl\nV:1.2.4-r2\n",  # Syft's corrupt-db fixture starts like this
    b"P:musl\n\nP:busybox\nV:1.36.1-r15\n",  # a stanza without a version
    b"\x00\x01\x02garbage",
])
def test_corrupt_database_is_an_error_not_silence(content):
    with pytest.raises(ValueError):
        parse(content)


def test_parse_installed_keeps_field_order():
    [stanza] = parse_installed("P:x\nF:a\nR:1\nF:b\nR:2\n")
    assert stanza == [("P", "x"), ("F", "a"), ("R", "1"), ("F", "b"), ("R", "2")]


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


def test_end_to_end_alpine_image(tmp_path):
    # Layer 1: the base (os-release and three packages); layer 2: `apk add bash` rewrote the database.
    stanzas = INSTALLED.decode().split("\n\n")
    base_db = "\n\n".join(s for s in stanzas if not s.startswith("P:bash\n")).encode()
    layout = oci_dir(tmp_path / "img", [
        {"etc/os-release": OS_RELEASE, "etc/alpine-release": b"3.19.0\n", "lib/apk/db/installed": base_db},
        {"lib/apk/db/installed": INSTALLED, "usr/share/doc/unrelated": b"x"},
    ])
    result = walk(layout)
    assert result.warnings == []
    assert result.image.os == OSRelease(id="alpine", version_id="3.19.0", pretty_name="Alpine Linux v3.19")
    apk = [p for p in result.packages if p.found_by == "apk"]
    assert sorted((p.name, p.version, p.ecosystem) for p in apk) == [
        ("bash", "5.2.21-r0", "Alpine:v3.19"), ("busybox-binsh", "1.36.1-r15", "Alpine:v3.19"),
        ("musl", "1.2.4_git20230717-r4", "Alpine:v3.19"), ("readline", "8.2.1-r2", "Alpine:v3.19"),
    ]
    assert {p.location for p in apk} == {"lib/apk/db/installed"}
    # A package keeps the layer that introduced it, although layer 2 rewrote the whole database.
    first, second = (layer.digest for layer in result.image.layers)
    assert {p.name: p.layer_digest for p in apk} == {
        "bash": second, "busybox-binsh": first, "musl": first, "readline": first}
    assert result.catalogers["apk"] == ApkCataloger.version


def test_end_to_end_corrupt_database_is_a_warning_not_a_crash(tmp_path):
    layout = oci_dir(tmp_path / "img", [
        {"etc/os-release": OS_RELEASE, "lib/apk/db/installed": b"this is a corrupt db\n\n" + INSTALLED},
    ])
    result = walk(layout)
    assert [p for p in result.packages if p.found_by == "apk"] == []
    [warning] = [w for w in result.warnings if w.cataloger == "apk"]
    assert warning.path == "lib/apk/db/installed" and "not a field" in warning.message
    assert warning.layer_digest == result.image.layers[0].digest
