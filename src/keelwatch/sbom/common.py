"""What the SBOM writers and readers share: keelwatch's property names, purls for packages and
images, the way back from a purl to an OSV ecosystem, and the identity of an image known only by
its SBOM.

Writers and readers must agree on these, so they live in one place: a package written by
``to_cyclonedx`` or ``to_spdx`` and read back by ``import_sbom`` keeps its ecosystem, name, version,
purl and source package.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterable

from packageurl import PackageURL

from keelwatch.catalog.rpm import PURL_NAMESPACES as RPM_PURL_NAMESPACES
from keelwatch.catalog.rpm import rpm_ecosystem, split_source_rpm
from keelwatch.errors import InvalidReference
from keelwatch.images.reference import parse_reference, parse_source
from keelwatch.model import Image, OSRelease, Package

# Property names in keelwatch's namespace (CycloneDX properties, SPDX annotations). They carry what
# the formats have no field for, so our own SBOMs read back without guessing.
PACKAGE_PREFIX = "keelwatch:package:"
IMAGE_PREFIX = "keelwatch:image:"
OS_PREFIX = "keelwatch:os:"
# Package fields written as properties, in the order they are written. Name, version, purl and
# licenses have fields of their own in both formats.
PACKAGE_FIELDS = ("ecosystem", "kind", "source_name", "source_version", "arch", "layer_digest", "location", "found_by")

# purl type → OSV ecosystem, for language packages (the ecosystem does not depend on the distro).
LANG_ECOSYSTEMS = {
    "pypi": "PyPI",
    "npm": "npm",
    "golang": "Go",
    "maven": "Maven",
    "cargo": "crates.io",
    "gem": "RubyGems",
    "composer": "Packagist",
    "nuget": "NuGet",
    "hex": "Hex",
    "pub": "Pub",
    "hackage": "Hackage",
    "cran": "CRAN",
    "swift": "SwiftURL",
    "conan": "ConanCenter",
    "bitnami": "Bitnami",
}
# OSV ecosystem name (before any ":release") → purl type, for packages that come without a purl.
ECOSYSTEM_PURL_TYPES = {eco: type_ for type_, eco in LANG_ECOSYSTEMS.items()} | {
    "Debian": "deb", "Ubuntu": "deb", "Alpine": "apk", "Wolfi": "apk", "Chainguard": "apk",
    "Red Hat": "rpm", "AlmaLinux": "rpm", "Rocky Linux": "rpm", "openSUSE": "rpm", "SUSE": "rpm",
    "Fedora": "rpm", "CentOS": "rpm", "Amazon Linux": "rpm", "Oracle Linux": "rpm", "Photon OS": "rpm",
    "Mariner": "rpm", "Azure Linux": "rpm",
}
# Distro packages: judged by the distro's own advisories, so their ecosystem needs the OS release.
OS_PURL_TYPES = frozenset({"deb", "apk", "rpm", "alpm"})
# Types whose purl namespace is part of the package's name in its own ecosystem.
NAMESPACED_TYPES = frozenset({"golang", "npm", "composer", "swift", "github", "bitbucket", "gitlab", "conan"})
# purl namespaces of distro packages that are not the os-release ID.
_NAMESPACE_DISTRO_IDS = {ns: distro for distro, ns in RPM_PURL_NAMESPACES.items()} | {"alma": "almalinux"}
_APK_ROLLING = {"wolfi": "Wolfi", "chainguard": "Chainguard"}
# Distros without releases: their ecosystem has no ":release" part and needs none.
ROLLING_ECOSYSTEMS = frozenset({*_APK_ROLLING.values(), "openSUSE:Tumbleweed"})

DIGEST = re.compile(r"^sha(256|384|512):[0-9a-f]{64,128}$")


def package_purl(package: Package) -> str:
    """The package's purl, always with its version: downstream tools match on it (an interface).

    A cataloger that left the purl empty still gets one from the ecosystem, so no package is
    written without an identifier; a purl without a version gets the package's version.
    """
    if package.purl:
        try:
            parsed = PackageURL.from_string(package.purl)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.version:
            return package.purl
        if parsed is not None:
            return _with(parsed, version=package.version).to_string()
    base = package.ecosystem.split(":", 1)[0]
    type_ = ECOSYSTEM_PURL_TYPES.get(base, "generic")
    namespace = None
    name = package.name
    if type_ == "maven" and ":" in name:
        namespace, name = name.split(":", 1)
    elif type_ in NAMESPACED_TYPES and "/" in name:
        namespace, name = name.rsplit("/", 1)
    elif type_ in OS_PURL_TYPES:
        namespace = base.lower().replace(" ", "")
    qualifiers = {"arch": package.arch} if package.arch else None
    return PackageURL(type=type_, namespace=namespace, name=name, version=package.version,
                      qualifiers=qualifiers).to_string()


def _with(purl: PackageURL, **changes: object) -> PackageURL:
    fields = purl.to_dict()
    fields.update(changes)
    return PackageURL(**fields)


def image_purl(image: Image) -> str:
    """``pkg:oci/NAME@DIGEST?repository_url=…&tag=…&arch=…`` as the purl spec defines the oci type.

    The name is the last segment of the repository; an image read from a local archive with no
    repository tag is named after the archive file and has no ``repository_url``.
    """
    repository, tag = _repository_and_tag(image)
    name = repository.rsplit("/", 1)[-1] if repository else _archive_stem(image.name or image.reference)
    qualifiers = {k: v for k, v in (("arch", image.platform.architecture), ("repository_url", repository),
                                     ("tag", tag)) if v}
    return PackageURL(type="oci", name=name.lower() or "image", version=image.manifest_digest or None,
                      qualifiers=qualifiers or None).to_string()


def _repository_and_tag(image: Image) -> tuple[str, str]:
    candidates = []
    if image.source_kind == "registry":
        with contextlib.suppress(InvalidReference):
            candidates.append(parse_source(image.reference).location)
    candidates.extend(image.repo_tags)
    for text in candidates:
        try:
            ref = parse_reference(text)
        except InvalidReference:
            continue
        return ref.name, ref.tag or ""
    if image.source_kind == "registry" and image.name:
        return image.name, ""
    return "", ""


def _archive_stem(path: str) -> str:
    base = path.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    for suffix in (".tar.gz", ".tgz", ".tar", ".oci", ".docker"):
        base = base.removesuffix(suffix)
    return re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-")


def package_set_digest(packages: Iterable[Package]) -> str:
    """A stable stand-in identity for an image known only by its SBOM: the hash of its package set.

    Same packages → same digest, whatever the order or the tool that wrote the SBOM.
    """
    lines = sorted({"\x00".join((p.ecosystem, p.name, p.version, p.purl)) for p in packages})
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def join_version(epoch: object, version: str, release: str = "") -> str:
    """``[epoch:]version[-release]``, as dpkg and rpm write a full version (Trivy splits it)."""
    if not version:
        return ""
    out = f"{version}-{release}" if release else version
    if epoch not in (None, "", 0, "0"):
        out = f"{epoch}:{out}"
    return out


def purl_name(purl: PackageURL) -> str:
    """The package's name in its own ecosystem: ``group:artifact`` for Maven, the full module path for Go."""
    if purl.type == "maven" and purl.namespace:
        return f"{purl.namespace}:{purl.name}"
    if purl.type in NAMESPACED_TYPES and purl.namespace:
        return f"{purl.namespace}/{purl.name}"
    return purl.name


def choose_name(purl: PackageURL, document_name: str, group: str = "") -> str:
    """The document's own spelling of the name when it is the purl's name (purls lowercase some
    names: ``Django`` is ``pkg:pypi/django``), else the name the purl implies (Syft names a Maven
    package by its artifact id alone)."""
    canonical = purl_name(purl)
    if not document_name:
        return canonical
    candidate = document_name
    if group and purl.type == "maven" and ":" not in document_name:
        candidate = f"{group}:{document_name}"
    elif group and purl.type in NAMESPACED_TYPES and not document_name.startswith(group.rstrip("/") + "/"):
        candidate = f"{group.rstrip('/')}/{document_name}"
    return candidate if _same_name(candidate, canonical, purl.type) else canonical


def _same_name(a: str, b: str, type_: str) -> bool:
    if type_ == "pypi":
        return re.sub(r"[-_.]+", "-", a).lower() == re.sub(r"[-_.]+", "-", b).lower()
    return a.lower() == b.lower()


def purl_version(purl: PackageURL) -> str:
    """The full version a purl describes: distro purls carry the epoch as a qualifier."""
    version = purl.version or ""
    epoch = (purl.qualifiers or {}).get("epoch") if isinstance(purl.qualifiers, dict) else None
    if version and epoch and purl.type in ("deb", "rpm") and ":" not in version:
        return f"{epoch}:{version}"
    return version


def os_from_purl(purl: PackageURL) -> OSRelease | None:
    """The distro a distro purl names (``pkg:deb/debian/x@1?distro=debian-12.5``), as far as it says."""
    if purl.type not in OS_PURL_TYPES or not purl.namespace:
        return None
    namespace = purl.namespace.lower()
    distro_id = _NAMESPACE_DISTRO_IDS.get(namespace, namespace)
    qualifiers = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    distro = qualifiers.get("distro", "")
    for prefix in (namespace + "-", distro_id + "-"):
        if distro.startswith(prefix):
            distro = distro[len(prefix):]
            break
    # A codename (``bookworm``) is not a release number; the ecosystem then has no release.
    version = distro if distro[:1].isdigit() else ""
    return OSRelease(id=distro_id, version_id=version)


def os_ecosystem(purl_type: str, os: OSRelease | None) -> str:
    """OSV ecosystem of a distro package of type ``purl_type`` on ``os`` (``Debian:12``, ``Alpine:v3.19``)."""
    if os is None:
        return ""
    if purl_type == "rpm":
        return rpm_ecosystem(os)
    if purl_type == "apk" and os.id in _APK_ROLLING:
        return _APK_ROLLING[os.id]
    return os.ecosystem or ""


def ecosystem_for(purl: PackageURL, document_os: OSRelease | None) -> str:
    """OSV ecosystem of a package from its purl type and, for distro packages, the image's OS.

    The document's OS wins when it is the distro the purl names (it usually has the full release,
    ``debian 12.5``); a purl naming another distro, or a document with no OS, falls back to what
    the purl's namespace and ``distro`` qualifier say. Unknown types give "" (the caller warns).
    """
    if purl.type in LANG_ECOSYSTEMS:
        return LANG_ECOSYSTEMS[purl.type]
    if purl.type not in OS_PURL_TYPES:
        return ""
    from_purl = os_from_purl(purl)
    if document_os is not None and (from_purl is None or from_purl.id == document_os.id):
        return os_ecosystem(purl.type, document_os)
    return os_ecosystem(purl.type, from_purl)


def split_upstream(value: str) -> tuple[str, str]:
    """The purl ``upstream`` qualifier Syft writes for a distro package's source: ``openssl``,
    ``openssl@3.0.11-1`` or an rpm source file name ``openssl-3.0.7-27.el9.src.rpm``."""
    if value.endswith(".rpm"):
        parts = split_source_rpm(value)
        if parts:
            return parts[0], f"{parts[1]}-{parts[2]}"
    name, _, version = value.partition("@")
    return name, version
