"""Debian packages: ``var/lib/dpkg/status`` and distroless ``var/lib/dpkg/status.d/*``.

Files owned come from ``var/lib/dpkg/info/NAME[:ARCH].list`` (or the ``.md5sums`` beside a
distroless stanza). A binary package records its source package (``Source: openssl (3.0.11-1)``)
because Debian's advisories are per source package.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from keelwatch.catalog.base import CatalogFile, FileView, Want
from keelwatch.catalog.purl import purl
from keelwatch.images.layers import TarEntry
from keelwatch.model import OSRelease, Package

STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d/"
INFO = "var/lib/dpkg/info/"
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")


def parse_stanzas(text: str) -> Iterator[dict[str, str]]:
    """RFC-822-style stanzas separated by blank lines; continuation lines start with a space."""
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, None
        elif line[0] in " \t":
            if key is not None:
                fields[key] += "\n" + line[1:]
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            fields[key] = value.strip()
        else:
            raise ValueError(f"malformed line in dpkg database: {line[:80]!r}")
    if fields:
        yield fields


class DpkgCataloger:
    name = "dpkg"
    version = 1
    uses_companions = True

    def wants(self, entry: TarEntry) -> Want:
        path = entry.path
        if path == STATUS:
            return Want.PRIMARY
        if path.startswith(STATUS_D):
            return Want.COMPANION if path.endswith(".md5sums") else Want.PRIMARY
        if path.startswith(INFO) and (path.endswith(".list") or path.endswith(".md5sums")):
            return Want.COMPANION
        return Want.NO

    def parse(self, file: CatalogFile, view: FileView) -> Iterator[Package]:
        text = file.content.decode("utf-8", "replace")
        for fields in parse_stanzas(text):
            name = fields.get("Package")
            version = fields.get("Version")
            if not name or not version:
                continue
            status = fields.get("Status", "install ok installed")
            if status.split()[-1:] != ["installed"]:
                continue  # removed or half-configured: config files only, no code
            arch = fields.get("Architecture", "")
            source_name, source_version = name, version
            if fields.get("Source"):
                match = _SOURCE.match(fields["Source"])
                if match:
                    source_name = match.group(1)
                    source_version = match.group(2) or version
            yield Package(
                ecosystem="", name=name, version=version, kind="os", source_name=source_name,
                source_version=source_version, arch=arch, files=self._files(file.path, name, arch, view),
                licenses=(),
            )

    def _files(self, location: str, name: str, arch: str, view: FileView) -> tuple[str, ...]:
        if location.startswith(STATUS_D):
            candidates = [f"{location}.md5sums"]
        else:
            # .list names every path (dirs too); .md5sums only regular files, but is all some
            # slimmed images keep.
            candidates = [f"{INFO}{name}:{arch}.list", f"{INFO}{name}.list",
                          f"{INFO}{name}:{arch}.md5sums", f"{INFO}{name}.md5sums"]
        for path in candidates:
            data = view.read(path)
            if data is None:
                continue
            files = []
            for line in data.decode("utf-8", "replace").splitlines():
                line = line.strip()
                if path.endswith(".md5sums"):
                    line = line.split(None, 1)[1] if " " in line else ""
                if line and line not in ("/.", "."):
                    files.append(line.lstrip("/"))
            return tuple(files)
        return ()

    def complete(self, package: Package, os: OSRelease | None) -> Package:
        distro_id = os.id if os else "debian"
        ecosystem = (os.ecosystem if os else None) or "Debian"
        # As Trivy and Syft write deb purls: the epoch goes in a qualifier, not in the version.
        epoch, sep, rest = package.version.partition(":")
        version, epoch = (rest, epoch) if sep and epoch.isdigit() else (package.version, "")
        qualifiers = {"arch": package.arch, "epoch": epoch,
                      "distro": f"{distro_id}-{os.version_id}" if os and os.version_id else ""}
        return dataclasses.replace(
            package, ecosystem=ecosystem,
            purl=purl("deb", package.name, version, namespace=distro_id, qualifiers=qualifiers),
        )
