"""Plain data shared by every part of keelwatch. No I/O, and no imports of other keelwatch modules.

Everything here is a value: frozen where identity matters (references, platforms, packages), so
they hash and compare by content and can key caches and sets.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/arm64/v8`` → Platform; ``arm64`` alone means linux/arm64."""
        parts = [p for p in text.strip().split("/") if p]
        if not parts or len(parts) > 3:
            raise ValueError(f"not a platform: {text!r} (expected os/arch[/variant])")
        if len(parts) == 1:
            parts = ["linux", parts[0]]
        return cls(*parts)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A parsed Docker/OCI reference, normalised the way Docker does (``nginx`` → docker.io/library/nginx:latest)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


@dataclass(frozen=True, slots=True)
class OSRelease:
    """What ``/etc/os-release`` (or its older siblings) says the image is."""

    id: str  # debian, ubuntu, alpine, rhel, …
    version_id: str = ""  # 12, 22.04, 3.19.1
    pretty_name: str = ""
    version_codename: str = ""

    @property
    def ecosystem(self) -> str | None:
        """The OSV ecosystem name of this release's distro packages (``Debian:12``, ``Alpine:v3.19``)."""
        name = DISTRO_ECOSYSTEMS.get(self.id)
        if name is None:
            return None
        if not self.version_id:
            return name
        if self.id == "alpine":
            major_minor = ".".join(self.version_id.split(".")[:2])
            return f"{name}:v{major_minor}"
        if self.id == "debian":
            return f"{name}:{self.version_id.split('.')[0]}"
        return f"{name}:{self.version_id}"


# os-release ID → OSV ecosystem name.
DISTRO_ECOSYSTEMS = {
    "debian": "Debian",
    "ubuntu": "Ubuntu",
    "alpine": "Alpine",
    "wolfi": "Wolfi",
    "chainguard": "Chainguard",
    "rhel": "Red Hat",
    "almalinux": "AlmaLinux",
    "rocky": "Rocky Linux",
    "opensuse-leap": "openSUSE",
    "sles": "SUSE",
    "fedora": "Fedora",
    "centos": "CentOS",
    "amzn": "Amazon Linux",
    "ol": "Oracle Linux",
    "photon": "Photon OS",
    "mariner": "Mariner",
    "azurelinux": "Azure Linux",
}


@dataclass(frozen=True, slots=True)
class Layer:
    digest: str  # the blob digest the manifest lists (compressed)
    media_type: str
    size: int
    diff_id: str = ""  # digest of the uncompressed tar, from the image config
    index: int = 0


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package: an OS package or a language package, with where it came from.

    ``ecosystem`` uses OSV names (``Debian:12``, ``Alpine:v3.19``, ``PyPI``, ``npm``, ``Go``, ``Maven``,
    ``crates.io``, ``RubyGems``, ``Packagist``, ``NuGet``). ``kind`` says which part of keelwatch
    understands it: ``os`` packages are judged by distro data via their source package.
    """

    ecosystem: str
    name: str
    version: str
    kind: str = "lang"  # "os" or "lang"
    purl: str = ""
    source_name: str = ""
    source_version: str = ""
    arch: str = ""
    layer_digest: str = ""
    found_by: str = ""  # the cataloger's registry name
    location: str = ""  # the file the package was read from (image path, no leading slash)
    files: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """A stable id from the identity fields: same package in the same place → same id."""
        key = "\x00".join((self.ecosystem, self.name, self.version, self.arch, self.location))
        return hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass(slots=True)
class Image:
    """An image as it runs: identity is the manifest digest of the chosen platform."""

    reference: str  # as the user gave it
    name: str  # normalised repository name, or the archive path for local sources
    manifest_digest: str
    config_digest: str
    platform: Platform
    layers: list[Layer] = field(default_factory=list)
    index_digest: str | None = None
    os: OSRelease | None = None
    created: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)
    source_kind: str = ""  # docker-archive, oci-archive, oci-dir, dir, registry, sbom
    repo_tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CatalogWarning:
    """Something skipped or not understood while reading an image: visible, never silent."""

    message: str
    path: str = ""
    layer_digest: str = ""
    cataloger: str = ""


@dataclass(slots=True)
class CatalogResult:
    image: Image
    packages: list[Package]
    warnings: list[CatalogWarning] = field(default_factory=list)
    # cataloger name → version, stored beside the result so a changed cataloger re-catalogs.
    catalogers: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


# --- advisories (the knowledge base) -------------------------------------------------------------
# Shaped after OSV (https://ossf.github.io/osv-schema/), which every feed is translated into:
# Debian's tracker, Alpine's secdb and NVD records become Advisory values like OSV's own.


@dataclass(frozen=True, slots=True)
class Severity:
    type: str  # CVSS_V2, CVSS_V3, CVSS_V4, or a vendor scale ("Debian", "Ubuntu", "GHSA")
    score: str  # the vector (CVSS) or the label ("high", "critical")
    base_score: float | None = None  # computed from the vector where there is one
    source: str = ""  # who says so: "nvd", "ghsa", "debian", the feed name


@dataclass(frozen=True, slots=True)
class AffectedRange:
    type: str  # ECOSYSTEM, SEMVER, GIT
    # Ordered (kind, version) pairs: kind is introduced, fixed, last_affected or limit.
    events: tuple[tuple[str, str], ...] = ()
    repo: str = ""  # GIT ranges only: kept, but not matchable without commits


@dataclass(frozen=True, slots=True)
class Affected:
    ecosystem: str  # as published: "PyPI", "Debian:11", "Alpine:v3.19", "Go"
    name: str  # as published (the matcher normalises per ecosystem)
    ranges: tuple[AffectedRange, ...] = ()
    versions: tuple[str, ...] = ()  # explicit affected versions
    purl: str = ""
    severity: tuple[Severity, ...] = ()  # OSV allows a per-package severity
    ecosystem_specific: str = ""  # JSON text, kept as published (e.g. Go's imports/symbols)
    database_specific: str = ""  # JSON text (e.g. Debian urgency, GHSA severity)


@dataclass(frozen=True, slots=True)
class Advisory:
    id: str
    source: str  # the feed that published it (its configured name)
    modified: datetime | None = None
    published: datetime | None = None
    withdrawn: datetime | None = None  # a withdrawn advisory never matches
    aliases: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()
    summary: str = ""
    details: str = ""
    severity: tuple[Severity, ...] = ()
    affected: tuple[Affected, ...] = ()
    references: tuple[str, ...] = ()
    database_specific: str = ""  # JSON text


@dataclass(frozen=True, slots=True)
class Exploitability:
    """What KEV and EPSS say about one CVE: enrichment, not an advisory."""

    cve: str
    kev_date_added: str = ""  # ISO date; empty when not in KEV
    kev_due_date: str = ""
    kev_ransomware: str = ""  # "Known" / "Unknown"
    epss: float | None = None
    epss_percentile: float | None = None
    epss_date: str = ""


# --- findings (the matcher's output) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MatchDetail:
    """How one advisory was found for one package: enough to re-check the decision by hand."""

    advisory_id: str
    source: str  # the feed that published the advisory
    kind: str  # "direct" (the package's own name) or "source" (via its distro source package)
    ecosystem: str  # the ecosystem searched (Debian:11, PyPI)
    name: str  # the name searched (normalised; the source package's for kind "source")
    version: str  # the version compared (the source version for distro packages)
    ranges: tuple[AffectedRange, ...] = ()  # the advisory's ranges that contain ``version``
    listed: bool = False  # ``version`` is in the advisory's explicit ``versions`` list


@dataclass(frozen=True, slots=True)
class Finding:
    """One vulnerability in one installed package; advisories that are aliases of each other are one finding."""

    id: str  # the representative advisory id
    package: Package
    installed_version: str
    advisory_ids: tuple[str, ...] = ()  # every advisory merged into this finding, ``id`` first
    aliases: tuple[str, ...] = ()  # CVE ids first, then the rest, sorted; never ``id`` itself
    upstream: tuple[str, ...] = ()  # OSV ``upstream`` (a DSA's CVEs)
    summary: str = ""
    fixed_versions: tuple[str, ...] = ()  # sorted by the ecosystem's ordering
    fix_available: bool = False
    severity: str = "unknown"  # critical, high, medium, low, unknown
    severity_source: str = ""  # who set the label: a vendor scale ("GHSA", "Debian") or "CVSS_V3" …
    cvss_score: float | None = None
    cvss_vector: str = ""
    cvss_source: str = ""
    kev: bool = False
    kev_date_added: str = ""
    epss: float | None = None
    epss_percentile: float | None = None
    layer_digest: str = ""  # the layer that introduced the package
    details: tuple[MatchDetail, ...] = ()


@dataclass(frozen=True, slots=True)
class Unknown:
    """A question the matcher could not answer: stored and shown, never read as "not affected"."""

    kind: str  # no-data, no-release, bad-version, unevaluable
    reason: str
    ecosystem: str = ""
    package: Package | None = None  # None when the reason concerns a whole ecosystem
    advisory_ids: tuple[str, ...] = ()
    package_count: int = 0  # packages concerned (for ecosystem-wide reasons)


@dataclass(frozen=True, slots=True)
class Suppression:
    """Why a finding does not count: a VEX statement or a risk acceptance (``keelwatch.match.vex``)."""

    kind: str  # vex or acceptance
    status: str  # not_affected, fixed, accepted
    justification: str = ""
    reason: str = ""
    until: datetime | None = None
    source: str = ""  # the VEX document, or who accepted

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "status": self.status, "justification": self.justification,
                "reason": self.reason, "until": self.until.isoformat() if self.until else None, "source": self.source}
