"""The database schema: SQLAlchemy 2 typed declarative tables, one ``Base`` for all of keelwatch.

Every table of every area hangs off ``Base.metadata`` (define it here, or in a module imported at
the bottom of this one), so Alembic's autogenerate and the test that compares the migrations with
the models see the whole schema. A schema change is a model change plus one migration in
``migrations/versions/`` (``python -m keelwatch.store.migrations revision "what changed"`` drafts it).

Sizing: 10,000 images × 300 packages is 3M ``image_packages`` rows, so that table is kept narrow
(integer keys) and what repeats across a fleet is stored once: a package's identity in
``packages``, a package's list of owned files in ``file_lists`` (images built on one base share
them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Explicit constraint names: PostgreSQL and SQLite then agree, and a later migration can drop a
# constraint by name (SQLite batch mode needs that).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every engine.

    SQLite keeps no offset, so values are stored as UTC; a naive value is taken to already be UTC
    (OCI timestamps are RFC 3339 and always carry an offset).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL: indexable and compact; plain JSON (text) on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        str: String(),
        int: Integer(),
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        bytes: LargeBinary(),
    }


class ImageRow(Base):
    """One cataloged image, keyed by the manifest digest of the platform that was read."""

    __tablename__ = "images"

    id: Mapped[int] = mapped_column(primary_key=True)
    manifest_digest: Mapped[str] = mapped_column(unique=True)
    index_digest: Mapped[str | None]
    config_digest: Mapped[str]
    platform: Mapped[str]  # os/arch[/variant]
    os_id: Mapped[str | None]  # None: no OS release found (distroless, scratch)
    os_version_id: Mapped[str | None]
    os_pretty_name: Mapped[str | None]
    os_codename: Mapped[str | None]
    ecosystem: Mapped[str | None] = mapped_column(index=True)  # the OS packages' OSV ecosystem
    name: Mapped[str] = mapped_column(index=True)
    reference: Mapped[str]  # as given when it was cataloged; every later spelling is in image_references
    repo_tags: Mapped[list[Any]]
    created: Mapped[datetime | None]
    labels: Mapped[dict[str, Any]]
    source_kind: Mapped[str]
    cataloged_at: Mapped[datetime]
    catalogers: Mapped[dict[str, Any]]  # cataloger name → version that produced this catalog
    package_count: Mapped[int]
    extra: Mapped[dict[str, Any]]


class ImageReferenceRow(Base):
    """Tag resolution history: each (normalised reference, digest) pair with when it was seen."""

    __tablename__ = "image_references"
    __table_args__ = (UniqueConstraint("name", "manifest_digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]  # normalised (docker.io/library/nginx:latest, oci-archive:/srv/app.tar)
    reference: Mapped[str]  # the latest spelling given for it (nginx)
    # No foreign key: a reference resolves before its image is cataloged, and outlives it.
    manifest_digest: Mapped[str] = mapped_column(index=True)
    index_digest: Mapped[str | None]
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class LayerRow(Base):
    __tablename__ = "layers"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    index: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(index=True)  # shared layers are found across images
    diff_id: Mapped[str]
    media_type: Mapped[str]
    size: Mapped[int] = mapped_column(BigInteger)


class PackageRow(Base):
    """A package identity, stored once however many images carry it.

    ``id`` is a 64-bit hash of the identity fields (see ``keelwatch.store.catalog.package_key``):
    any writer computes the same id without a lookup, and the 3M link rows stay 8-byte keys.
    """

    __tablename__ = "packages"
    __table_args__ = (
        Index(None, "ecosystem", "name"),  # the matcher: advisories name a package in an ecosystem
        Index(None, "ecosystem", "source_name"),  # distro advisories are per source package
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ecosystem: Mapped[str]
    name: Mapped[str]
    version: Mapped[str]
    kind: Mapped[str]
    purl: Mapped[str]
    source_name: Mapped[str]
    source_version: Mapped[str]
    arch: Mapped[str]


class ImagePackageRow(Base):
    """A package as found in one image: where, by which cataloger, owning which files."""

    __tablename__ = "image_packages"
    __table_args__ = (Index(None, "package_id", "image_id"),)  # package → images, index only

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)  # the cataloger's order, kept on load
    package_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("packages.id"))
    layer_digest: Mapped[str]
    location: Mapped[str]
    found_by: Mapped[str]
    licenses: Mapped[list[Any]]
    files_id: Mapped[bytes | None] = mapped_column(ForeignKey("file_lists.id"))  # None: owns no files


class FileListRow(Base):
    """The files one package owns, stored once per distinct list.

    ``id`` is the first 16 bytes of the SHA-256 of the uncompressed list: content-addressed, so a
    writer knows the id without a lookup and identical lists across images and saves collapse.
    ``files`` holds the paths NUL-joined and zlib-compressed: a Debian image owns ~40k files, read
    whole when they are read at all, so one blob beats one row per path.
    """

    __tablename__ = "file_lists"

    id: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    files: Mapped[bytes]


class CatalogWarningRow(Base):
    __tablename__ = "catalog_warnings"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str]
    path: Mapped[str]
    layer_digest: Mapped[str]
    cataloger: Mapped[str]


# --- the knowledge base: advisories, exploitability, feed state, syncs and the change journal ------
# Written by keelwatch.sync, read through keelwatch.store.advisories. Sizes: a feed holds up to a
# few thousand advisories (OSV per ecosystem), NVD and EPSS a few hundred thousand CVEs.


class AdvisoryRow(Base):
    """One advisory as one feed published it.

    ``id`` is a 64-bit hash of (source, advisory id) (``keelwatch.store.advisories.advisory_key``):
    two feeds may publish the same id and each keeps its own row, and a writer knows a row's key
    without a lookup, so bulk inserts of advisories and their affected rows need no round trip.
    """

    __tablename__ = "advisories"
    __table_args__ = (UniqueConstraint("source", "advisory_id"), Index(None, "advisory_id"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    advisory_id: Mapped[str]  # as published: PYSEC-2021-1, GHSA-…, DSA-5000-1, CVE-…
    source: Mapped[str]  # the feed's configured name
    modified: Mapped[datetime | None]
    published: Mapped[datetime | None]
    withdrawn: Mapped[datetime | None]
    aliases: Mapped[list[Any]]
    related: Mapped[list[Any]]
    upstream: Mapped[list[Any]]
    summary: Mapped[str]
    details: Mapped[str]
    severity: Mapped[list[Any]]
    references: Mapped[list[Any]]
    database_specific: Mapped[str]  # JSON text, kept as published
    content_hash: Mapped[str]  # sha256 of the canonical JSON: a sync compares this, not the fields


class AffectedRow(Base):
    """One package an advisory affects: the matcher's index, keyed by (ecosystem, match name)."""

    __tablename__ = "affected"
    __table_args__ = (
        Index(None, "ecosystem", "match_name"),  # an image's packages of one release (Debian:12)
        Index(None, "ecosystem_base", "match_name"),  # every release of a distro at once (Debian)
    )

    advisory: Mapped[int] = mapped_column(BigInteger, ForeignKey("advisories.id", ondelete="CASCADE"),
                                          primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)  # order in the advisory, kept on load
    ecosystem: Mapped[str]  # as published: PyPI, Debian:11, Alpine:v3.19
    ecosystem_base: Mapped[str]  # before the first colon: Debian, Alpine, PyPI
    name: Mapped[str]  # as published
    match_name: Mapped[str]  # store.advisories.normalise_name: PEP 503 for PyPI, each registry's own rule
    ranges: Mapped[list[Any]]
    versions: Mapped[list[Any]]
    purl: Mapped[str]
    severity: Mapped[list[Any]]
    ecosystem_specific: Mapped[str]  # JSON text, kept as published
    database_specific: Mapped[str]


class ExploitabilityRow(Base):
    """What KEV and EPSS say about one CVE; each part remembers which feed set it."""

    __tablename__ = "exploitability"

    cve: Mapped[str] = mapped_column(primary_key=True)
    kev_date_added: Mapped[str]  # "" when not in KEV
    kev_due_date: Mapped[str]
    kev_ransomware: Mapped[str]
    kev_source: Mapped[str | None] = mapped_column(index=True)
    epss: Mapped[float | None]
    epss_percentile: Mapped[float | None]
    epss_date: Mapped[str]
    epss_source: Mapped[str | None] = mapped_column(index=True)


class FeedStateRow(Base):
    """Each configured feed's last attempt and success, its fingerprint and what it holds."""

    __tablename__ = "feed_state"

    name: Mapped[str] = mapped_column(primary_key=True)
    kind: Mapped[str]
    url: Mapped[str]
    fingerprint: Mapped[str | None]  # of the last successful fetch: sent back to learn "unchanged"
    last_attempt: Mapped[datetime | None]
    last_success: Mapped[datetime | None]
    status: Mapped[str]  # ok, failed
    error: Mapped[str]  # the last attempt's error; "" after a success
    last_sync: Mapped[int | None]
    advisories: Mapped[int]
    withdrawn: Mapped[int]
    exploitability: Mapped[int]
    problems: Mapped[int]  # malformed records skipped by the last successful sync


class SyncRow(Base):
    """One sync of one feed (or one import): ids grow in commit order, so "since sync N" is safe."""

    __tablename__ = "syncs"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed: Mapped[str] = mapped_column(index=True)  # the feed's name; the file's name for an import
    kind: Mapped[str]  # the feed's kind, or "import"
    url: Mapped[str]
    started: Mapped[datetime]
    finished: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[str]  # ok, unchanged, failed
    error: Mapped[str]
    fingerprint: Mapped[str | None]
    added: Mapped[int]
    changed: Mapped[int]
    withdrawn: Mapped[int]
    deleted: Mapped[int]
    unchanged: Mapped[int]
    exploitability: Mapped[int]  # exploitability rows written (added, changed or cleared)
    problems: Mapped[int]


class JournalRow(Base):
    """One change a sync made: what the re-matcher reads to re-evaluate only what changed."""

    __tablename__ = "journal"

    id: Mapped[int] = mapped_column(primary_key=True)
    sync: Mapped[int] = mapped_column(ForeignKey("syncs.id", ondelete="CASCADE"), index=True)
    source: Mapped[str]  # the feed
    advisory_id: Mapped[str]  # the advisory id, or the CVE of an exploitability change
    change: Mapped[str]  # added, changed, withdrawn, deleted, exploitability
    fields: Mapped[list[Any]]  # which fields changed: ranges, versions, severity, aliases, kev, epss …
    packages: Mapped[list[Any]]  # [ecosystem, match name] pairs before and after: what to re-match
    before: Mapped[dict[str, Any] | None]  # ranges summary (or KEV/EPSS values) before the change
    after: Mapped[dict[str, Any] | None]


class ProblemRow(Base):
    """A malformed record a sync reported and skipped."""

    __tablename__ = "problems"

    id: Mapped[int] = mapped_column(primary_key=True)
    sync: Mapped[int] = mapped_column(ForeignKey("syncs.id", ondelete="CASCADE"), index=True)
    location: Mapped[str]  # file in the spool, line, record id
    message: Mapped[str]


# --- findings: what the matcher found in each image, its history, and per-image counts ------------
# Written by keelwatch.match.scan / rematch through keelwatch.store.findings. Keyed by the image's
# manifest digest (not images.id): posture joins "container runs digest D" to "D has findings F",
# and a digest is what both sides know.


class PackageSearchKeyRow(Base):
    """What the matcher looks up for a package: (ecosystem, normalised name) pairs, the journal's key.

    The re-matcher goes from a changed advisory's (ecosystem, match name) to the images carrying
    it through this index and ``image_packages``; a distro binary is keyed by its source package.
    Filled by keelwatch.match for packages not yet keyed (every package gets at least one row).
    """

    __tablename__ = "package_search_keys"
    __table_args__ = (Index(None, "ecosystem", "match_name"),)

    package_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("packages.id", ondelete="CASCADE"),
                                            primary_key=True)
    ecosystem: Mapped[str] = mapped_column(primary_key=True)
    match_name: Mapped[str] = mapped_column(primary_key=True)


class FindingRow(Base):
    """One open finding: one alias group of advisories in one installed package of one image.

    ``key`` is a stable hash of (image digest, alias-group id, package identity), chosen when the
    finding is first seen and kept while the finding lives (an advisory renamed under the same CVE
    keeps its finding: see keelwatch.match.scan). A closed finding is deleted; its history stays in
    ``finding_events``.
    """

    __tablename__ = "findings"
    __table_args__ = (
        Index(None, "image_digest", "package_uid"),  # a re-match replaces one package's findings
        Index(None, "advisory_id"),
    )

    key: Mapped[str] = mapped_column(primary_key=True)
    image_digest: Mapped[str]
    advisory_id: Mapped[str]  # the representative advisory id
    advisory_ids: Mapped[list[Any]]  # every advisory merged into the finding
    aliases: Mapped[list[Any]]  # CVE first; never advisory_id itself
    upstream: Mapped[list[Any]]
    summary: Mapped[str]
    package_uid: Mapped[str]  # model.Package.id: identity and location within the image
    package_ecosystem: Mapped[str]
    package_name: Mapped[str]
    package_version: Mapped[str]
    package_purl: Mapped[str]
    package_kind: Mapped[str]
    package_source_name: Mapped[str]
    package_source_version: Mapped[str]
    package_arch: Mapped[str]
    package_location: Mapped[str]
    installed_version: Mapped[str]
    fixed_versions: Mapped[list[Any]]
    fix_available: Mapped[bool]
    severity: Mapped[str]  # critical, high, medium, low, unknown
    severity_source: Mapped[str]
    cvss_score: Mapped[float | None]
    cvss_vector: Mapped[str]
    cvss_source: Mapped[str]
    kev: Mapped[bool]
    kev_date_added: Mapped[str]
    epss: Mapped[float | None]
    epss_percentile: Mapped[float | None]
    layer_digest: Mapped[str]
    details: Mapped[list[Any]]  # the match details (how each advisory was found), as JSON
    sources: Mapped[list[Any]]  # the feeds whose records made this finding
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]  # the last scan or re-match that confirmed it
    updated: Mapped[datetime]  # the last time any stored field changed


class FindingAliasRow(Base):
    """Every id and alias of a finding: a KEV/EPSS change for a CVE finds its findings here."""

    __tablename__ = "finding_aliases"
    __table_args__ = (Index(None, "alias"),)

    finding_key: Mapped[str] = mapped_column(ForeignKey("findings.key", ondelete="CASCADE"), primary_key=True)
    alias: Mapped[str] = mapped_column(primary_key=True)


class ImageUnknownRow(Base):
    """What the matcher could not judge in an image: shown beside its findings, never read as clean."""

    __tablename__ = "image_unknowns"

    image_digest: Mapped[str] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str]  # no-data, no-release, no-matcher, bad-version, unevaluable
    reason: Mapped[str]
    ecosystem: Mapped[str]
    package_uid: Mapped[str | None]  # None: the reason concerns a whole ecosystem
    package_name: Mapped[str]
    package_version: Mapped[str]
    advisory_ids: Mapped[list[Any]]
    package_count: Mapped[int]


class ImageScanRow(Base):
    """One row per scanned image: its severity counts, kept current in the transaction that writes
    its findings, so posture groups 100,000 containers by one indexed join instead of counting."""

    __tablename__ = "image_scans"

    image_digest: Mapped[str] = mapped_column(primary_key=True)
    scanned_at: Mapped[datetime]  # the last scan or re-match of this image
    sync: Mapped[int | None]  # the newest sync the findings reflect
    critical: Mapped[int]
    high: Mapped[int]
    medium: Mapped[int]
    low: Mapped[int]
    unknown: Mapped[int]
    total: Mapped[int]
    kev: Mapped[int]
    fixable: Mapped[int]
    epss_over: Mapped[int] = mapped_column(default=0, server_default="0")  # EPSS ≥ risk.EPSS_THRESHOLD
    risk: Mapped[float] = mapped_column(default=0.0, server_default="0")  # sum of risk.finding_risk
    unknowns: Mapped[int]  # rows in image_unknowns
    no_data: Mapped[list[Any]]  # ecosystems judged "no advisory data" at the last scan


class FindingEventRow(Base):
    """A finding opened, closed or changed: what alerting consumes, in id order."""

    __tablename__ = "finding_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str]  # opened, closed, changed
    finding_key: Mapped[str] = mapped_column(index=True)
    advisory_id: Mapped[str]
    aliases: Mapped[list[Any]]
    image_digest: Mapped[str] = mapped_column(index=True)
    package_ecosystem: Mapped[str]
    package_name: Mapped[str]
    package_version: Mapped[str]
    severity: Mapped[str]
    sync: Mapped[int | None] = mapped_column(index=True)  # the sync whose re-match caused it; None: a scan
    time: Mapped[datetime] = mapped_column(index=True)
    changes: Mapped[dict[str, Any]]  # field → [before, after] for "changed"


class RematchStateRow(Base):
    """The re-matcher's watermark: the last sync whose journal it has processed."""

    __tablename__ = "rematch_state"

    name: Mapped[str] = mapped_column(primary_key=True)  # "journal"
    last_sync: Mapped[int]
    updated: Mapped[datetime]


# --- suppressions: VEX statements and risk acceptances ---------------------------------------------------


class VexStatementRow(Base):
    """One VEX statement (OpenVEX or CycloneDX VEX) as imported: applied to findings when they are read."""

    __tablename__ = "vex_statements"
    __table_args__ = (UniqueConstraint("document", "vulnerability", "product", "subcomponent"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document: Mapped[str]  # the document's @id / serialNumber, else its file name: a re-import replaces it
    format: Mapped[str]  # openvex, cyclonedx
    vulnerability: Mapped[str] = mapped_column(index=True)  # CVE or advisory id, as the statement names it
    product: Mapped[str]  # an image (digest, pkg:oci purl, name) or a package purl
    subcomponent: Mapped[str]  # a package purl within the product; "" for the product itself
    status: Mapped[str]  # not_affected, fixed, affected, under_investigation
    justification: Mapped[str]
    detail: Mapped[str]  # impact statement / action statement / analysis detail
    issued: Mapped[datetime | None]  # the statement's (or document's) timestamp
    imported_at: Mapped[datetime]


class RiskAcceptanceRow(Base):
    """A time-limited acceptance of a vulnerability on an image (or on every image: ``*``)."""

    __tablename__ = "risk_acceptances"

    id: Mapped[int] = mapped_column(primary_key=True)
    vulnerability: Mapped[str] = mapped_column(index=True)
    image: Mapped[str]  # a manifest digest, an image name (docker.io/library/nginx), or "*"
    package: Mapped[str]  # a package name limiting it; "" for every package
    until: Mapped[datetime]
    reason: Mapped[str]
    created_by: Mapped[str]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


# --- alerts: one per (advisory, image), an outbox that never loses a message ---------------------------------


class AlertRow(Base):
    """One alert per (advisory, image digest), updated as the fleet changes; the outbox says what was sent."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(primary_key=True)  # stable: hash of (advisory key, image digest)
    advisory: Mapped[str] = mapped_column(index=True)  # the CVE when there is one, else the advisory id
    advisory_ids: Mapped[list[Any]]
    aliases: Mapped[list[Any]]
    image_digest: Mapped[str] = mapped_column(index=True)
    severity: Mapped[str]  # as the policy handles it (KEV → critical by default)
    finding_severity: Mapped[str]  # as the advisory rates it
    kev: Mapped[bool]
    notify: Mapped[str]  # immediate, digest
    state: Mapped[str] = mapped_column(index=True)  # open, acknowledged, resolved
    version: Mapped[int]  # grows with every change that was announced
    due: Mapped[datetime | None]
    body: Mapped[dict[str, Any]]  # what the last message said (containers, packages, owners …)
    first_raised: Mapped[datetime]
    updated: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str]
    digested_at: Mapped[datetime | None]  # when a digest carried it (notify = digest)
    due_soon_sent: Mapped[bool]
    breach_sent: Mapped[bool]


class AlertOutboxRow(Base):
    """A message to deliver, written in the transaction that decided it; claimed with a lease to send."""

    __tablename__ = "alert_outbox"
    __table_args__ = (Index(None, "delivered_at", "next_attempt"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(unique=True)  # sent as Idempotency-Key: receivers dedupe on it
    alert_id: Mapped[str | None] = mapped_column(index=True)  # None for a digest
    channel: Mapped[str]
    event: Mapped[str]  # opened, updated, resolved, due_soon, breached, digest
    body: Mapped[dict[str, Any]]
    created: Mapped[datetime]
    next_attempt: Mapped[datetime]
    attempts: Mapped[int]
    last_error: Mapped[str]
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]  # parked after too many attempts (keelwatch alerts retry)
    lease_owner: Mapped[str | None]
    lease_until: Mapped[datetime | None]


class AlertAttemptRow(Base):
    """Every delivery attempt, for `keelwatch alerts show` and the failure metrics."""

    __tablename__ = "alert_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(index=True)
    time: Mapped[datetime]
    ok: Mapped[bool]
    detail: Mapped[str]
    seconds: Mapped[float]
    sender: Mapped[str]


# --- posture history ---------------------------------------------------------------------------------


class PostureSnapshotRow(Base):
    """One group's posture at one moment (``keelwatch posture snapshot``: daily, and on fleet changes)."""

    __tablename__ = "posture_snapshots"
    __table_args__ = (Index(None, "grouping", "taken_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    taken_at: Mapped[datetime]
    grouping: Mapped[str]  # workload, namespace, cluster, owner, fleet …
    keys: Mapped[dict[str, Any]]  # the grouping keys of the row
    containers: Mapped[int]
    counts: Mapped[dict[str, Any]]  # severity → distinct findings
    kev: Mapped[int]
    fixable: Mapped[int]
    risk: Mapped[float]
    unknown_posture: Mapped[int]


# --- the running inventory: what runs where, from which digest ---------------------------------------
# Written by keelwatch.inventory.sync through keelwatch.store.inventory. Sized for 100,000 live
# containers plus their ended history; posture joins containers.digest to image_scans.image_digest.


class InventorySourceRow(Base):
    """Each configured inventory source: its last sync, and where its watch stands."""

    __tablename__ = "inventory_sources"

    name: Mapped[str] = mapped_column(primary_key=True)
    kind: Mapped[str]
    status: Mapped[str]  # ok, partial (some objects unreadable), failed, never
    error: Mapped[str]  # the last attempt's error; "" after a success
    last_attempt: Mapped[datetime | None]
    last_success: Mapped[datetime | None]
    resource_version: Mapped[str | None]  # Kubernetes: the version the stored inventory is consistent at
    containers: Mapped[int]  # live containers after the last successful sync
    problems: Mapped[list[Any]]  # the last sync's unreadable objects: [{"where", "message"}], capped


class ContainerRow(Base):
    """One container as an inventory source reported it; ended containers are kept for history.

    ``key`` hashes the identity (source, cluster, namespace, pod, instance, container):
    ``keelwatch.inventory.base.record_key``. ``fingerprint`` hashes every reported field, so a sync
    rewrites only the rows whose content changed and merely touches ``last_seen`` of the rest.
    """

    __tablename__ = "containers"
    __table_args__ = (
        Index(None, "source", "ended_at"),  # a source's live containers
        Index(None, "source", "namespace", "pod", "instance"),  # one pod's containers (watch events)
        Index(None, "digest"),  # posture: containers running digest D
        Index(None, "namespace"),
        Index(None, "reference"),
    )

    key: Mapped[str] = mapped_column(primary_key=True)
    source: Mapped[str]
    cluster: Mapped[str]
    namespace: Mapped[str]
    workload_kind: Mapped[str]
    workload: Mapped[str]
    pod: Mapped[str]
    instance: Mapped[str]  # pod UID, Docker container ID, "" for a CMDB row
    container: Mapped[str]
    container_type: Mapped[str]  # container, init, ephemeral
    image: Mapped[str]  # as given
    reference: Mapped[str | None]  # normalised (docker.io/library/nginx:1.27); None: not a valid reference
    image_id: Mapped[str]  # what the runtime reported (imageID, RepoDigest), raw
    digest: Mapped[str | None]  # manifest digest of the platform that runs; None: unresolved
    index_digest: Mapped[str | None]  # the multi-arch index it was chosen from
    tag_digest: Mapped[str | None]  # what the tag resolves to now (drift when it is neither of the above)
    platform: Mapped[str | None]
    node: Mapped[str]
    state: Mapped[str]  # running, waiting, terminated, created, pending …; ended once gone from the source
    labels: Mapped[dict[str, Any]]
    annotations: Mapped[dict[str, Any]]
    owner: Mapped[str]
    team: Mapped[str]
    environment: Mapped[str]
    resolution_error: Mapped[str | None]  # why the digest is unknown or unverified ("unresolved: 401 …")
    problem: Mapped[str | None]  # what the source could not read about this container
    fingerprint: Mapped[str]
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    ended_at: Mapped[datetime | None]


# --- the service: API tokens ----------------------------------------------------------------------------
# Written by keelwatch.store.tokens. Only the sha256 of a token is kept: a leaked database grants nothing.


class ApiTokenRow(Base):
    """An API token: its role (viewer < operator < admin) and the sha256 of the secret, never the secret."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    role: Mapped[str]  # viewer, operator, admin
    token_hash: Mapped[str] = mapped_column(unique=True)  # sha256 hex of the whole token
    prefix: Mapped[str]  # the token's first characters, to tell tokens apart in listings
    created_at: Mapped[datetime]
    last_used: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


# --- scale-out: leases for singleton work, a queue of scan jobs ---------------------------------------------
# Written by keelwatch.store.leases. The database is the coordination engine: several keelwatch
# processes on one PostgreSQL share work through these rows (SELECT … FOR UPDATE SKIP LOCKED).


class LeaseRow(Base):
    """Who runs one piece of singleton work (``loop:feeds`` …) until when, and when it last finished.

    A holder renews ``expires_at`` while it works; one that dies stops renewing, and after the TTL
    the next process takes the lease over. ``last_finished`` makes a loop's cadence global: it runs
    once per interval across all processes, not once per process.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(primary_key=True)
    holder: Mapped[str | None]  # host:pid:random of the process holding it; None when free
    expires_at: Mapped[datetime]
    last_finished: Mapped[datetime | None]
    takeovers: Mapped[int]  # how often the lease was taken from a holder whose TTL ran out
    runs: Mapped[int]


class ScanJobRow(Base):
    """One digest to pull and scan: queued once however many workers see it; claimed with a lease."""

    __tablename__ = "scan_jobs"
    __table_args__ = (Index(None, "state", "not_before"),)

    digest: Mapped[str] = mapped_column(primary_key=True)
    reference: Mapped[str]  # what to pull: registry:NAME@DIGEST
    state: Mapped[str]  # queued, running, done, failed
    holder: Mapped[str | None]
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int]  # claims so far, including ones whose holder died
    error: Mapped[str]  # the last failure; "" after a success
    queued_at: Mapped[datetime]
    not_before: Mapped[datetime]  # a failed job waits here (backoff) before it is claimed again
    finished_at: Mapped[datetime | None]


# --- runtime verification: behavioural baselines, deviations, what ran in each container -------------------
# Written by keelwatch.runtime.ingest through keelwatch.store.runtime.


class RuntimeBaselineRow(Base):
    """One behavioural baseline per (cluster, namespace, workload, container name, image digest)."""

    __tablename__ = "runtime_baselines"
    __table_args__ = (
        # Named: the generated name is longer than PostgreSQL's 63 characters.
        UniqueConstraint("cluster", "namespace", "workload", "container", "image_digest",
                         name="uq_runtime_baselines_key"),
        Index(None, "workload"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster: Mapped[str]
    namespace: Mapped[str]
    workload: Mapped[str]
    container: Mapped[str]
    image_digest: Mapped[str]
    phase: Mapped[str]  # learning, frozen
    started: Mapped[datetime]  # its first event: learning runs from here
    frozen_at: Mapped[datetime | None]
    events_seen: Mapped[int]
    inherited_from: Mapped[str]  # the image digest whose baseline it started from ("" when none)
    state: Mapped[dict[str, Any]]  # keelwatch.runtime.baseline.Baseline.to_json(): the learned sets
    updated: Mapped[datetime]


class RuntimeDeviationRow(Base):
    """An event outside its frozen baseline, one per (baseline, kind, detail): repeats raise ``count``."""

    __tablename__ = "runtime_deviations"
    __table_args__ = (
        Index("ix_runtime_deviations_baseline", "cluster", "namespace", "workload", "container", "image_digest"),
        Index(None, "last_seen"),
    )

    id: Mapped[str] = mapped_column(primary_key=True)  # Deviation.id: hash of baseline key, kind, detail
    kind: Mapped[str]  # new_exec, new_peer, new_listener, unexpected_write, exec_from_writable_path, drift …
    severity: Mapped[str]
    cluster: Mapped[str]
    namespace: Mapped[str]
    workload: Mapped[str]
    container: Mapped[str]
    image_digest: Mapped[str]
    detail: Mapped[str]
    item: Mapped[list[Any]]  # what accepting it adds to the baseline
    evidence: Mapped[dict[str, Any]]  # the first event, as RuntimeEvent.to_json()
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    count: Mapped[int]
    accepted: Mapped[bool]
    accepted_at: Mapped[datetime | None]
    accepted_by: Mapped[str]
    alerted_at: Mapped[datetime | None]  # when its alert was queued in the outbox (once)


class RuntimeUnattributedRow(Base):
    """An event for a container the inventory does not know (yet): kept, bounded, attributed later."""

    __tablename__ = "runtime_unattributed"
    __table_args__ = (Index(None, "container_id"), Index(None, "namespace", "pod"))

    id: Mapped[int] = mapped_column(primary_key=True)
    received: Mapped[datetime]
    time: Mapped[datetime]  # the event's own time
    container_id: Mapped[str]
    namespace: Mapped[str]
    pod: Mapped[str]
    event: Mapped[dict[str, Any]]  # RuntimeEvent.to_json()


class RuntimeObservationRow(Base):
    """A path an inventory container executed or opened: runtime SBOM verification reads these."""

    __tablename__ = "runtime_observations"
    __table_args__ = (UniqueConstraint("container_key", "path"), Index(None, "image_digest"))

    id: Mapped[int] = mapped_column(primary_key=True)
    container_key: Mapped[str]  # containers.key
    cluster: Mapped[str]
    namespace: Mapped[str]
    workload: Mapped[str]
    pod: Mapped[str]
    container: Mapped[str]
    image_digest: Mapped[str]
    path: Mapped[str]  # absolute, as the sensor reported it (capped in length)
    kind: Mapped[str]  # exec, open
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    count: Mapped[int]


class RuntimeImageFilesRow(Base):
    """Every file an image's layers leave (not only package-owned ones): tells unpackaged code from drift."""

    __tablename__ = "runtime_image_files"

    digest: Mapped[str] = mapped_column(primary_key=True)  # manifest digest
    files: Mapped[bytes]  # zlib of the sorted root-relative regular files, NUL-separated
    links: Mapped[dict[str, Any]]  # symlink path → target as written
    listed_at: Mapped[datetime]
