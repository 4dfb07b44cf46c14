"""Installed Python distributions: ``*.dist-info/METADATA`` (wheels), and the egg formats
``*.egg-info/PKG-INFO``, a single-file ``*.egg-info``, ``*.egg/EGG-INFO/PKG-INFO`` and a zipped ``*.egg``.

These are the files Trivy's ``python-pkg`` analyzer reads in an image (requirements.txt and other
lock files are what a project *asks* for, not what is installed, and Trivy skips them for images
too). Files owned come from the dist-info's ``RECORD``. An egg-info's ``SOURCES.txt`` lists the
sdist, not what was installed, so eggs carry no files: Debian's ``python3-*`` egg-infos, the
commonest kind in images, have their files listed by dpkg anyway.
"""

from __future__ import annotations

import csv
import io
import posixpath
import zipfile
from collections.abc import Iterator

from keelwatch.catalog.base import CatalogFile, FileView, Want
from keelwatch.catalog.purl import purl
from keelwatch.images.layers import TarEntry
from keelwatch.model import Package

METADATA = ".dist-info/METADATA"
RECORD = ".dist-info/RECORD"
EGG_INFO_DIR = ".egg-info/PKG-INFO"
EGG_INFO_FILE = ".egg-info"
EGG_DIR = "/EGG-INFO/PKG-INFO"
EGG_ZIP = ".egg"
# One C-level endswith rejects nearly every path of an image before the finer checks below.
_TAILS = ("/METADATA", "/RECORD", "/PKG-INFO", EGG_INFO_FILE, EGG_ZIP)
MAX_EGG_PKG_INFO = 1 << 20  # PKG-INFO read from a zipped egg, decompressed: real ones are a few KB
# A License: field longer than this is the license's whole text, pasted by some projects (e.g.
# old setuptools); the classifiers then say it shorter.
MAX_LICENSE_FIELD = 100


def headers(content: bytes) -> dict[str, list[str]]:
    """The header block of a core-metadata file (METADATA / PKG-INFO), field name (lowercase) → values.

    The body (the long description, often most of the file) is cut off unread: the header block
    ends at the first empty line. Continuation lines (PKG-INFO 1.x's indented Description) begin
    with whitespace and are not empty, so they do not end it. This is the RFC 822 subset the
    core-metadata spec uses; ``email.parser.HeaderParser`` reads the same fields 5× slower, which
    was most of this cataloger's time on an image.
    """
    end = content.find(b"\n\n")
    if end < 0:
        end = content.find(b"\r\n\r\n")
    head = content if end < 0 else content[:end]
    fields: dict[str, list[str]] = {}
    values: list[str] | None = None
    for line in head.decode("utf-8", "replace").split("\n"):
        line = line.rstrip("\r")
        if line[:1] in (" ", "\t"):
            if values:
                values[-1] += "\n" + line
            continue
        key, sep, value = line.partition(":")
        if not sep:
            values = None  # not a header line: nothing continues it
            continue
        values = fields.setdefault(key.strip().lower(), [])
        values.append(value.strip())
    return fields


def licenses(fields: dict[str, list[str]]) -> tuple[str, ...]:
    """Short license names, in the order Trivy prefers them: the PEP 639 expression, then the
    deprecated License field when it is a name and not a pasted text, then the classifiers."""
    expression = _first(fields, "license-expression")
    if expression:
        return (expression,)
    field = _first(fields, "license")
    if field and field.upper() != "UNKNOWN" and "\n" not in field and len(field) <= MAX_LICENSE_FIELD:
        return (field,)
    found = [c.rsplit(" :: ", 1)[-1] for c in fields.get("classifier", []) if c.startswith("License :: ")]
    return tuple(dict.fromkeys(found))


def _first(fields: dict[str, list[str]], key: str) -> str:
    values = fields.get(key)
    return values[0].strip() if values else ""


def pypi_purl(name: str, version: str) -> str:
    # The purl spec's pypi rule (lowercase, "_" → "-"), which packageurl-python applies and Trivy
    # writes (``backports.tarfile`` keeps its dot). Full PEP 503 folding of dots is a matching
    # concern and belongs to the matcher, not to the identity we publish.
    return purl("pypi", name, version)


class PythonCataloger:
    name = "python"
    version = 1
    uses_companions = True  # a dist-info's RECORD lists the files it owns

    def wants(self, entry: TarEntry) -> Want:
        path = entry.path
        if not path.endswith(_TAILS):
            return Want.NO
        if path.endswith(METADATA) or path.endswith(EGG_INFO_DIR) or path.endswith(EGG_DIR):
            return Want.PRIMARY
        if path.endswith(RECORD):
            return Want.COMPANION
        if path.endswith(EGG_INFO_FILE) or path.endswith(EGG_ZIP):
            return Want.PRIMARY  # the file forms: PKG-INFO content, and a zip holding EGG-INFO/PKG-INFO
        return Want.NO

    def parse(self, file: CatalogFile, view: FileView) -> Iterator[Package]:
        path = file.path
        content = file.content
        if path.endswith(EGG_ZIP):
            content = _pkg_info_from_zipped_egg(content)
        fields = headers(content)
        name, version = _first(fields, "name"), _first(fields, "version")
        if not name or not version:
            raise ValueError("core metadata without Name or Version")
        files: tuple[str, ...] = ()
        if path.endswith(METADATA):
            record = view.read(path[: -len("METADATA")] + "RECORD")
            if record is not None:
                files = record_files(record, site_dir=posixpath.dirname(posixpath.dirname(path)))
        yield Package(
            ecosystem="PyPI", name=name, version=version, purl=pypi_purl(name, version),
            licenses=licenses(fields), files=files,
        )


def record_files(record: bytes, site_dir: str) -> tuple[str, ...]:
    """Image paths listed by a RECORD (CSV: path, hash, size), relative to the site directory.

    Scripts are recorded as ``../../../bin/flask``; pip writes a path absolute when it is not below
    the install prefix, and in an image that means below the image root. Paths that would climb
    out of the root are dropped rather than trusted.
    """
    files = []
    prefix = site_dir + "/" if site_dir else ""
    for row in csv.reader(io.StringIO(record.decode("utf-8", "replace"))):
        if not row or not row[0]:
            continue
        path = row[0]
        if "." not in path[:2] and "/." not in path and path[0] != "/":
            files.append(prefix + path)  # the common case, and normpath would cost most of the parse
            continue
        joined = posixpath.normpath(posixpath.join(site_dir, path)).lstrip("/")
        if joined == ".." or joined.startswith("../"):
            continue
        files.append(joined)
    return tuple(files)


def _pkg_info_from_zipped_egg(content: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as egg, egg.open("EGG-INFO/PKG-INFO") as member:
            data = member.read(MAX_EGG_PKG_INFO + 1)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"not a readable egg: {exc}") from exc
    if len(data) > MAX_EGG_PKG_INFO:
        raise ValueError("EGG-INFO/PKG-INFO is implausibly large")
    return data
