"""RPM packages: the rpm database (sqlite ``rpmdb.sqlite``, Berkeley DB ``Packages``, NDB ``Packages.db``).

Reading the database is ``catalog/rpmdb.py``; this module turns headers into packages. A non-empty
``rpmdb.sqlite-wal`` beside a sqlite database is read with it (as a companion): it holds transactions
rpm has not checkpointed into the database yet. Versions are
``[EPOCH:]VERSION-RELEASE`` (epoch 0 is written as no epoch, as rpm and the advisories do). The
source package comes from ``SOURCERPM`` (``openssl-3.0.7-27.el9.src.rpm`` → ``openssl``,
``3.0.7-27.el9``); a source rpm's file name carries no epoch, so the binary's epoch is used for it,
as Trivy does, because Red Hat's advisories are per source package and include the epoch.

Ecosystem (OSV names, from os-release, decided in ``complete``): the releases that advisories name
by major version only get the major (``Red Hat:9``, ``AlmaLinux:9``, ``Rocky Linux:9``); SUSE gets
OSV's product names (``openSUSE:Leap 15.5``, ``SUSE:Linux Enterprise Server 15 SP5``); others
``Name:VERSION_ID``. With no os-release keelwatch knows, the ecosystem stays empty: unknown, never
guessed as Red Hat.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from packageurl import PackageURL

from keelwatch.catalog import rpmdb
from keelwatch.catalog.base import CatalogFile, FileView, Want
from keelwatch.catalog.purl import purl
from keelwatch.images.layers import TarEntry
from keelwatch.model import DISTRO_ECOSYSTEMS, OSRelease, Package

# Where rpm keeps its database: the classic place and the /usr one (Fedora >= 36, SUSE), each in
# any of the three formats (the format is told from the content, not the name).
DB_DIRS = ("var/lib/rpm/", "usr/lib/sysimage/rpm/")
DB_NAMES = ("rpmdb.sqlite", "Packages", "Packages.db")
DB_PATHS = frozenset(d + n for d in DB_DIRS for n in DB_NAMES)
# sqlite's write-ahead log: transactions not yet checkpointed into rpmdb.sqlite (usually empty).
WAL_PATHS = frozenset(d + "rpmdb.sqlite-wal" for d in DB_DIRS)

_TAGS = (rpmdb.NAME, rpmdb.VERSION, rpmdb.RELEASE, rpmdb.EPOCH, rpmdb.ARCH, rpmdb.SOURCERPM,
         rpmdb.LICENSE, rpmdb.DIRNAMES, rpmdb.BASENAMES, rpmdb.DIRINDEXES, rpmdb.OLDFILENAMES,
         rpmdb.MODULARITYLABEL)

# os-release ID → the purl namespace Trivy writes for it (its OS family names), so purls compare.
PURL_NAMESPACES = {
    "rhel": "redhat", "centos": "centos", "almalinux": "alma", "rocky": "rocky", "ol": "oracle",
    "amzn": "amazon", "fedora": "fedora", "opensuse-leap": "opensuse-leap",
    "opensuse-tumbleweed": "opensuse-tumbleweed", "sles": "sles", "photon": "photon",
    "mariner": "cbl-mariner", "azurelinux": "azurelinux",
}
# Releases whose advisories name the major version only (RHSA-… applies to all of 9.x).
_MAJOR_ONLY = frozenset({"rhel", "centos", "almalinux", "rocky", "ol", "fedora", "azurelinux"})


def split_source_rpm(filename: str) -> tuple[str, str, str] | None:
    """``openssl-3.0.7-27.el9.src.rpm`` → (``openssl``, ``3.0.7``, ``27.el9``); None if not that shape."""
    stem = filename.removesuffix(".rpm")
    stem, dot, _arch = stem.rpartition(".")
    name_version, dash1, release = stem.rpartition("-")
    name, dash2, version = name_version.rpartition("-")
    if not (dot and dash1 and dash2 and name and version and release):
        return None
    return name, version, release


def rpm_ecosystem(os: OSRelease | None) -> str:
    if os is None:
        return ""
    version = os.version_id
    if os.id == "opensuse-tumbleweed":
        return "openSUSE:Tumbleweed"
    name = DISTRO_ECOSYSTEMS.get(os.id)
    if name is None:
        return ""
    if not version:
        return name
    if os.id in _MAJOR_ONLY:
        return f"{name}:{version.split('.')[0]}"
    if os.id == "opensuse-leap":
        return f"openSUSE:Leap {version}"
    if os.id == "sles":
        major, _, service_pack = version.partition(".")
        return f"SUSE:Linux Enterprise Server {major}" + (f" SP{service_pack}" if service_pack not in ("", "0") else "")
    return f"{name}:{version}"


class RpmCataloger:
    name = "rpm"
    version = 1
    uses_companions = True  # the sqlite -wal file

    def wants(self, entry: TarEntry) -> Want:
        if entry.path in DB_PATHS:
            return Want.PRIMARY
        # Only a WAL with content matters; an empty one (the usual case) is not worth keeping.
        return Want.COMPANION if entry.path in WAL_PATHS and entry.size > 0 else Want.NO

    def parse(self, file: CatalogFile, view: FileView) -> Iterator[Package]:
        wal = view.read(file.path + "-wal") if file.path.endswith(".sqlite") else None
        # Build the whole list before yielding: a corrupt header then fails the file as one warning
        # (the walker's contract), rather than half a database passing for all of it.
        blobs = rpmdb.header_blobs(file.content, wal=wal)
        packages = [p for blob in blobs if (p := self._package(blob)) is not None]
        yield from packages

    def _package(self, blob: bytes) -> Package | None:
        tags = rpmdb.parse_header(blob, _TAGS)
        name, version, release = (_text(tags.get(t)) for t in (rpmdb.NAME, rpmdb.VERSION, rpmdb.RELEASE))
        if not name or not version:
            raise ValueError("rpm header without a name or version")
        if name == "gpg-pubkey":
            return None  # an imported signing key that rpm records as a package: no software, no advisory
        epoch_values = tags.get(rpmdb.EPOCH)
        epoch = epoch_values[0] if isinstance(epoch_values, tuple) and epoch_values else 0
        if not isinstance(epoch, int):
            raise ValueError(f"rpm header: epoch {epoch!r} is not a number")
        prefix = f"{epoch}:" if epoch else ""
        evr = f"{prefix}{version}-{release}" if release else f"{prefix}{version}"
        arch = _text(tags.get(rpmdb.ARCH))
        source_name, source_version = name, evr
        source = split_source_rpm(_text(tags.get(rpmdb.SOURCERPM)))
        if source:
            source_name, source_version = source[0], f"{prefix}{source[1]}-{source[2]}"
        license_ = _text(tags.get(rpmdb.LICENSE))
        # purl without the distro part, which ``complete`` adds once the OS release is known.
        qualifiers = {"arch": arch, "epoch": str(epoch) if epoch else "",
                      "modularitylabel": _text(tags.get(rpmdb.MODULARITYLABEL))}
        return Package(
            ecosystem="", name=name, version=evr, kind="os", source_name=source_name,
            source_version=source_version, arch=arch, files=_files(tags),
            licenses=(license_,) if license_ else (),
            purl=purl("rpm", name, f"{version}-{release}" if release else version, qualifiers=qualifiers),
        )

    def complete(self, package: Package, os: OSRelease | None) -> Package:
        base = PackageURL.from_string(package.purl) if package.purl else None
        qualifiers = dict(base.qualifiers) if base and isinstance(base.qualifiers, dict) else {}
        namespace = None
        if os is not None:
            namespace = PURL_NAMESPACES.get(os.id, os.id)
            if os.version_id:
                qualifiers["distro"] = f"{namespace}-{os.version_id}"
        version = base.version if base and base.version else package.version
        return dataclasses.replace(
            package, ecosystem=rpm_ecosystem(os),
            purl=purl("rpm", package.name, version, namespace=namespace, qualifiers=qualifiers),
        )


def _text(value: rpmdb.Value | None) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        return value[0]
    return ""


def _files(tags: dict[int, rpmdb.Value]) -> tuple[str, ...]:
    """Owned paths, root-relative: DIRNAMES[DIRINDEXES[i]] + BASENAMES[i] (OLDFILENAMES before rpm 4)."""
    basenames = tags.get(rpmdb.BASENAMES)
    if isinstance(basenames, tuple):
        dirnames = tags.get(rpmdb.DIRNAMES)
        indexes = tags.get(rpmdb.DIRINDEXES)
        if not isinstance(dirnames, tuple) or not isinstance(indexes, tuple) or len(indexes) != len(basenames):
            raise ValueError("rpm header: file basenames without matching directory names and indexes")
        files = []
        for base, index in zip(basenames, indexes, strict=True):
            if not isinstance(index, int) or not 0 <= index < len(dirnames):
                raise ValueError(f"rpm header: directory index {index} out of range")
            files.append(f"{dirnames[index]}{base}".lstrip("/"))
        return tuple(files)
    old = tags.get(rpmdb.OLDFILENAMES)
    if isinstance(old, tuple):
        return tuple(str(f).lstrip("/") for f in old)
    return ()
