"""The Python cataloger: which files it reads, what it finds in them, and agreement with Trivy."""

import io
import json
import zipfile
from pathlib import Path

import pytest

from keelwatch.catalog import CATALOGERS
from keelwatch.catalog.base import CatalogFile, Want
from keelwatch.catalog.python import PythonCataloger, headers, licenses
from keelwatch.catalog.walker import catalog_image
from keelwatch.images import open_image
from keelwatch.images.layers import TarEntry

FIXTURES = Path(__file__).parent / "fixtures" / "python"
SITE = "usr/local/lib/python3.11/site-packages"


def entry(path):
    return TarEntry(path=path, type="file", mode=0o644, size=10)


class View:
    def __init__(self, files):
        self.files = files

    def read(self, path):
        return self.files.get(path)

    def under(self, directory):
        return sorted(p for p in self.files if p.startswith(directory + "/"))


def test_selection():
    c = PythonCataloger()
    expected = {
        f"{SITE}/six-1.16.0.dist-info/METADATA": Want.PRIMARY,
        f"{SITE}/six-1.16.0.dist-info/RECORD": Want.COMPANION,
        f"{SITE}/setuptools/_vendor/zipp-3.19.2.dist-info/METADATA": Want.PRIMARY,  # vendored: still installed
        "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO": Want.PRIMARY,
        "usr/lib/python3.11/wsgiref-0.1.egg-info": Want.PRIMARY,  # single-file egg-info
        f"{SITE}/x/my_test_package-1.0-py3.7.egg/EGG-INFO/PKG-INFO": Want.PRIMARY,
        f"{SITE}/x/my_test_package-1.0-py3.7.egg": Want.PRIMARY,  # zipped egg
        # Not installed metadata, or not metadata at all:
        f"{SITE}/six-1.16.0.dist-info/WHEEL": Want.NO,
        f"{SITE}/six-1.16.0.dist-info/top_level.txt": Want.NO,
        f"{SITE}/six-1.16.0.dist-info/LICENSE": Want.NO,
        "usr/lib/python3/dist-packages/six-1.16.0.egg-info/SOURCES.txt": Want.NO,
        "src/six-1.16.0/PKG-INFO": Want.NO,  # an unpacked sdist's own PKG-INFO
        "app/requirements.txt": Want.NO,
        "usr/share/doc/METADATA": Want.NO,
        "usr/share/doc/python3/RECORD": Want.NO,
        f"{SITE}/six.py": Want.NO,
        "var/lib/dpkg/status": Want.NO,
    }
    assert {p: c.wants(entry(p)) for p in expected} == expected


def read(relative):
    return (FIXTURES / relative).read_bytes()


def parse(path, content, companions=None):
    return list(PythonCataloger().parse(CatalogFile(path, content), View(companions or {})))


def test_dist_info_with_record():
    metadata = f"{SITE}/six-1.16.0.dist-info/METADATA"
    [p] = parse(metadata, read("site-packages/six-1.16.0.dist-info/METADATA"),
                {f"{SITE}/six-1.16.0.dist-info/RECORD": read("site-packages/six-1.16.0.dist-info/RECORD")})
    assert (p.ecosystem, p.name, p.version, p.purl, p.kind) == ("PyPI", "six", "1.16.0", "pkg:pypi/six@1.16.0", "lang")
    assert p.licenses == ("MIT",)
    # RECORD paths are relative to the site directory; the RECORD lists itself too.
    info = f"{SITE}/six-1.16.0.dist-info"
    assert p.files == (f"{SITE}/six.py", f"{info}/LICENSE", f"{info}/METADATA", f"{info}/WHEEL",
                       f"{info}/top_level.txt", f"{info}/RECORD")


def test_dist_info_without_record_still_a_package():
    [p] = parse(f"{SITE}/attrs-25.3.0.dist-info/METADATA", read("site-packages/attrs-25.3.0.dist-info/METADATA"))
    assert (p.name, p.version, p.purl, p.files) == ("attrs", "25.3.0", "pkg:pypi/attrs@25.3.0", ())
    assert p.licenses == ("MIT",)  # License-Expression (PEP 639), Metadata-Version 2.4


def test_purl_follows_the_purl_spec_as_trivy_writes_it():
    metadata = b"Metadata-Version: 2.1\nName: Backports.Tar_File\nVersion: 1.2.0\n\nbody\n"
    [p] = parse(f"{SITE}/backports.tarfile-1.2.0.dist-info/METADATA", metadata)
    assert p.name == "Backports.Tar_File"  # as written
    assert p.purl == "pkg:pypi/backports.tar-file@1.2.0"  # lowercase, "_" → "-", dots kept (Trivy too)


def test_record_paths_are_image_paths_and_never_leave_the_root():
    record = b"../../../bin/flask,sha256=x,10\n../../../../../../etc/passwd,,\n/usr/share/x.1,,\nflask/app.py,,\n"
    info = "usr/lib/python3/site-packages/flask-3.0.3.dist-info"
    [p] = parse(f"{info}/METADATA", b"Name: Flask\nVersion: 3.0.3\n", {f"{info}/RECORD": record})
    assert p.files == ("usr/bin/flask", "usr/share/x.1", "usr/lib/python3/site-packages/flask/app.py")


def test_egg_info_directory_and_single_file():
    pkg_info = read("six.egg-info/PKG-INFO")
    [d] = parse("usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO", pkg_info)
    [f] = parse("usr/lib/python3.11/six-1.16.0-py3.11.egg-info", pkg_info)
    for p in (d, f):
        assert (p.name, p.version, p.purl, p.licenses) == ("six", "1.16.0", "pkg:pypi/six@1.16.0", ("MIT",))


def test_pkg_info_headers_survive_a_multiline_description():
    fields = headers(read("six.egg-info/PKG-INFO"))
    # The classifiers come after the indented Description, whose whitespace-only lines do not end the header.
    assert "License :: OSI Approved :: MIT License" in fields["classifier"]
    assert fields["requires-python"] == [">=2.7, !=3.0.*, !=3.1.*, !=3.2.*"]


def test_crlf_metadata_and_stray_lines():
    text = b"Name: a\r\nVersion: 1.0\r\nnot a header\r\n  nor its continuation\r\nLicense: MIT\r\n\r\nVersion: 9\r\n"
    fields = headers(text)
    assert fields == {"name": ["a"], "version": ["1.0"], "license": ["MIT"]}


def test_zipped_and_unpacked_egg():
    egg = read("my_test_package-1.0-py3.7.egg")
    [z] = parse(f"{SITE}/t/my_test_package-1.0-py3.7.egg", egg)
    assert (z.name, z.version, z.purl, z.licenses) == ("my-test-package", "1.0", "pkg:pypi/my-test-package@1.0", ())
    # The unpacked form: the same PKG-INFO as a file of the image.
    pkg_info = zipfile.ZipFile(io.BytesIO(egg)).read("EGG-INFO/PKG-INFO")
    [u] = parse(f"{SITE}/t/my_test_package-1.0-py3.7.egg/EGG-INFO/PKG-INFO", pkg_info)
    assert (u.name, u.version) == ("my-test-package", "1.0")


def test_license_choice():
    assert licenses({"license": ["BSD"], "classifier": ["License :: OSI Approved :: MIT License"]}) == ("BSD",)
    # A pasted license text is not a name: the classifiers say it shorter.
    pasted = "Copyright (c) 2010 someone\n\nPermission is hereby granted..."
    assert licenses({"license": [pasted], "classifier": ["License :: OSI Approved :: MIT License",
                                                          "Programming Language :: Python"]}) == ("MIT License",)
    assert licenses({"license": ["UNKNOWN"]}) == ()
    assert licenses({"license-expression": ["Apache-2.0 OR MIT"], "license": ["x"]}) == ("Apache-2.0 OR MIT",)


@pytest.mark.parametrize("content", [b"", b"Summary: no name\n", b"Name: x\n\nVersion: 1 (in the body)\n"])
def test_metadata_without_name_or_version_is_an_error(content):
    with pytest.raises(ValueError, match="Name or Version"):
        parse(f"{SITE}/x-1.dist-info/METADATA", content)


def test_broken_egg_is_an_error():
    with pytest.raises(ValueError, match="not a readable egg"):
        parse(f"{SITE}/x-1.egg", b"PK\x03\x04 not really a zip")


# --- agreement with Trivy on the shared images ---------------------------------------------------

# image → {(name, version): reason} for PyPI packages Trivy lists that keelwatch does not, and back.
TRIVY_ONLY: dict[str, dict[tuple[str, str], str]] = {"debian12-python": {}, "debian12-python-v2": {}}
KEELWATCH_ONLY: dict[str, dict[tuple[str, str], str]] = {"debian12-python": {}, "debian12-python-v2": {}}


def trivy_components(sbom: Path, purl_type: str) -> set[tuple[str, str]]:
    doc = json.loads(sbom.read_text())
    out = set()
    for c in doc.get("components", []):
        if c.get("purl", "").startswith(f"pkg:{purl_type}/"):
            name = f"{c['group']}/{c['name']}" if c.get("group") else c["name"]
            out.add((name, c["version"]))
    return out


@pytest.mark.parametrize("image", ["debian12-python", "debian12-python-v2"])
def test_agrees_with_trivy(images_dir, image):
    opened = open_image(f"oci-archive:{images_dir / image}.oci.tar")
    try:
        result = catalog_image(opened, CATALOGERS)
    finally:
        opened.close()
    ours = [p for p in result.packages if p.ecosystem == "PyPI"]
    assert all(p.found_by == "python" for p in ours)
    found = {(p.name, p.version) for p in ours}
    theirs = trivy_components(images_dir / f"{image}.trivy.cdx.json", "pypi")
    assert theirs  # the SBOM does list Python packages: an empty comparison proves nothing
    assert {k: TRIVY_ONLY[image].get(k, "unexplained") for k in theirs - found} == TRIVY_ONLY[image]
    assert {k: KEELWATCH_ONLY[image].get(k, "unexplained") for k in found - theirs} == KEELWATCH_ONLY[image]
    # Trivy lists my-test-package twice in v2 (zipped and unpacked egg); so do we, one per location.
    assert len(ours) == sum(1 for c in json.loads((images_dir / f"{image}.trivy.cdx.json").read_text())["components"]
                            if c.get("purl", "").startswith("pkg:pypi/"))
    assert not [w for w in result.warnings if w.cataloger == "python"]
