"""The API's response and request bodies, as published in ``/openapi.json``.

Bodies are built by ``keelwatch.api.views`` (the same JSON ``keelwatch scan --format json``
prints); these models document and check them. The keys listed are stable; objects may carry
more keys than listed (``additionalProperties``), so adding a field never breaks a client.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["viewer", "operator", "admin"]


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class SeverityCounts(BaseModel):
    critical: int
    high: int
    medium: int
    low: int
    unknown: int


class ImageItem(Open):
    digest: str
    name: str
    reference: str
    index_digest: str | None
    platform: str
    ecosystem: str | None
    os: str | None
    package_count: int
    cataloged_at: str | None
    scanned: bool
    scanned_at: str | None
    sync: int | None
    counts: SeverityCounts
    total: int = Field(description="Findings, suppressed ones included")
    kev: int
    fixable: int
    unknowns: int
    no_data: list[str]


class ImagePage(BaseModel):
    items: list[ImageItem]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")
    total: int = Field(description="Items matching the filters, over all pages")


class PackageRef(Open):
    name: str
    ecosystem: str
    version: str
    purl: str


class SuppressionBody(Open):
    kind: str
    status: str
    justification: str
    reason: str
    until: str | None
    source: str


class CvssBody(Open):
    score: float | None
    vector: str
    source: str


class FindingItem(Open):
    key: str
    id: str
    aliases: list[str]
    advisory_ids: list[str]
    summary: str
    package: PackageRef
    installed_version: str
    fixed_versions: list[str]
    fix_available: bool
    severity: str
    cvss: CvssBody | None
    kev: bool
    epss: float | None
    suppressed: bool
    suppression: SuppressionBody | None
    first_seen: str
    last_seen: str


class FindingPage(BaseModel):
    items: list[FindingItem]
    next_cursor: str | None
    total: int


class ImageRef(Open):
    digest: str
    reference: str
    name: str
    index_digest: str | None
    platform: str
    ecosystem: str | None


class ScanInfo(Open):
    scanned_at: str
    sync: int | None
    no_data: list[str]


class FindingSummary(Open):
    total: int = Field(description="Unsuppressed findings")
    suppressed: int
    critical: int
    high: int
    medium: int
    low: int
    unknown: int
    kev: int
    fixable: int


class ImageDetail(Open):
    image: ImageRef
    item: ImageItem
    scan: ScanInfo | None
    summary: FindingSummary
    findings: list[FindingItem]
    unknowns: list[dict[str, Any]]


class VulnerabilityImage(Open):
    digest: str
    name: str
    reference: str
    suppressed: bool = Field(description="Every finding of it on this image is suppressed")
    findings: list[FindingItem]


class RunningContainer(Open):
    key: str
    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    pod: str
    container: str
    image: str
    digest: str | None
    owner: str
    team: str
    environment: str
    suppressed: bool = Field(description="Every finding of the advisory on its image is suppressed")


class RunningWorkload(Open):
    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    containers: int
    owners: list[str]
    environments: list[str]
    suppressed: bool


class RunningWhere(Open):
    containers: list[RunningContainer]
    affected_containers: int = Field(description="Live containers where it is not suppressed")
    workloads: list[RunningWorkload]
    owners: list[str] = Field(description="Owners and teams of the affected containers")


class Vulnerability(Open):
    id: str
    aliases: list[str]
    summary: str
    severity: str
    kev: bool
    epss: float | None
    fixed_versions: list[str]
    advisory: dict[str, Any] | None
    image_count: int
    affected_images: int = Field(description="Images where it is not suppressed")
    images: list[VulnerabilityImage]
    running: RunningWhere = Field(description="Where it runs right now: live containers on those images")


class VulnerabilityItem(Open):
    id: str
    aliases: list[str]
    severity: str
    kev: bool
    epss: float | None
    cvss_score: float | None
    images: int
    findings: int
    summary: str


class VulnerabilityPage(BaseModel):
    items: list[VulnerabilityItem]
    next_cursor: str | None
    total: int


class FeedItem(Open):
    name: str
    kind: str
    url: str
    status: str
    last_attempt: str | None
    last_success: str | None
    age_seconds: float | None = Field(description="Seconds since the last success; null when it never synced")
    error: str
    last_sync: int | None
    advisories: int
    withdrawn: int
    exploitability: int
    problems: int


class FeedList(BaseModel):
    items: list[FeedItem]


class EventPackage(BaseModel):
    ecosystem: str
    name: str
    version: str


class EventItem(Open):
    event_id: int
    event: str
    id: str
    aliases: list[str]
    image_digest: str
    finding_key: str
    package: EventPackage
    severity: str
    sync: int | None
    time: str | None
    changes: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventItem]
    next_cursor: str | None
    total: int


class VexStatementItem(Open):
    id: int
    document: str
    format: str
    vulnerability: str
    product: str
    subcomponent: str
    status: str
    justification: str
    detail: str
    issued: str | None
    imported_at: str | None


class VexStatementPage(BaseModel):
    items: list[VexStatementItem]
    next_cursor: str | None
    total: int


class VexImportResult(BaseModel):
    document: str
    format: str
    statements: int
    replaced: int
    problems: list[str]


class AcceptanceItem(Open):
    id: int
    vulnerability: str
    image: str
    package: str
    until: str | None
    reason: str
    created_by: str
    created_at: str | None
    revoked_at: str | None
    active: bool


class AcceptancePage(BaseModel):
    items: list[AcceptanceItem]
    next_cursor: str | None
    total: int


class AcceptanceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vulnerability: str = Field(min_length=1, max_length=200, description="CVE or advisory id")
    image: str = Field(min_length=1, max_length=500, description="A digest, an image name, or * for every image")
    until: datetime = Field(description="When the acceptance ends (ISO 8601); must be in the future")
    reason: str = Field(min_length=1, max_length=2000)
    package: str = Field("", max_length=500, description="Limit it to this package name")


class ScanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field(min_length=1, max_length=1000,
                           description="registry:REF, a bare registry reference, or sha256:DIGEST of a stored image")
    platform: str | None = Field(None, max_length=100, description="os/arch[/variant] of a multi-arch image")
    refresh: bool = Field(False, description="Catalog again even if the digest is stored")


class ScanResult(Open):
    image: ImageRef
    summary: FindingSummary
    opened: int
    closed: int
    changed: int
    reused_catalog: bool
    seconds: float


class TokenItem(Open):
    id: int
    name: str
    role: str
    prefix: str
    created_at: str
    last_used: str | None
    revoked_at: str | None


class TokenList(BaseModel):
    items: list[TokenItem]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    name: str = Field("", max_length=200)


class TokenCreated(BaseModel):
    token: str = Field(description="The secret: shown once, never stored")
    info: TokenItem


class Me(BaseModel):
    id: int
    name: str
    role: str


# --- the fleet: containers, groupings, posture, alerts, SLA, validation ------------------------------------


class ContainerItem(Open):
    key: str
    source: str
    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    workload_key: str = Field(description="cluster/namespace/kind/name")
    pod: str
    container: str
    container_type: str
    image: str
    reference: str | None
    digest: str | None = Field(description="The platform manifest digest it runs; null while unresolved")
    index_digest: str | None
    tag_digest: str | None
    drift: bool = Field(description="The tag now resolves to another digest than the one running")
    node: str
    state: str
    owner: str
    team: str
    environment: str
    labels: dict[str, Any]
    first_seen: str | None
    last_seen: str | None
    resolution_error: str | None
    posture_known: bool
    unknown_posture: str | None = Field(description="Why its posture is unknown (null when known)")
    counts: SeverityCounts | None = Field(description="Its image's open, unsuppressed findings; null when unknown")
    total: int | None
    kev: int | None
    fixable: int | None
    risk: float | None
    suppressed: int | None
    scanned_at: str | None


class ContainerPage(BaseModel):
    items: list[ContainerItem]
    next_cursor: str | None
    total: int


class ContainerDetail(ContainerItem):
    findings: list[FindingItem]


class PostureRow(Open):
    key: str = Field(description="The grouping keys joined with /")
    keys: dict[str, Any] = Field(description="The grouping keys of the row (cluster, namespace, workload …)")
    containers: int
    images: int
    counts: SeverityCounts = Field(description="Distinct (image, finding) pairs over the group's containers")
    total: int
    kev: int
    fixable: int
    epss_over_threshold: int
    risk: float
    unknown_posture: int
    unknown_reasons: dict[str, int]
    oldest_scan: str | None
    scan_age_seconds: int | None


class PosturePage(BaseModel):
    by: str
    items: list[PostureRow]
    next_cursor: str | None
    total: int


class WorkloadImage(Open):
    digest: str
    reference: str
    scanned_at: str | None
    counts: SeverityCounts
    total: int
    suppressed: int
    containers: int
    findings: list[FindingItem]


class WorkloadDetail(Open):
    workload: PostureRow
    owners: list[str]
    environments: list[str]
    containers: list[ContainerItem]
    images: list[WorkloadImage]


class ExposureItem(Open):
    rank: int
    advisory: str
    severity: str
    kev: bool
    containers: int
    images: list[str]
    workloads: list[str]
    packages: list[str]


class ExposurePage(BaseModel):
    items: list[ExposureItem]
    next_cursor: str | None
    total: int


class PlanPackage(Open):
    name: str
    installed: str
    fixed: list[str]


class PlanItem(Open):
    rank: int
    digest: str
    image: str
    containers: int
    critical_fixable: int = Field(description="Fixable findings that are critical or KEV")
    fixable: int
    removes_from_production: int = Field(description="critical_fixable × containers")
    packages: list[PlanPackage]
    workloads: list[str]
    owners: list[str]
    risk_removed: float


class PlanPage(BaseModel):
    items: list[PlanItem]
    next_cursor: str | None
    total: int


class FreshnessItem(Open):
    name: str
    last_success: str | None
    age_seconds: int | None
    stale: bool


class ImageFreshness(Open):
    digest: str
    scanned_at: str | None
    age_seconds: int | None
    stale: bool


class Freshness(Open):
    feeds: list[FreshnessItem]
    inventory: list[FreshnessItem]
    images: list[ImageFreshness]
    stale: bool


class HistoryRow(Open):
    key: str
    keys: dict[str, Any]
    before: SeverityCounts
    after: SeverityCounts
    delta: SeverityCounts
    risk_before: float
    risk_after: float
    change: Literal["new", "gone", "improved", "worse", "same"]


class History(Open):
    grouping: str
    since: str
    snapshot: str | None = Field(description="When the snapshot compared against was taken; null when none is that old")
    rows: list[HistoryRow]


class TrendPoint(Open):
    day: str
    taken_at: str | None
    containers: int
    counts: SeverityCounts
    total: int
    kev: int
    fixable: int
    risk: float
    unknown_posture: int


class Trend(BaseModel):
    days: int
    items: list[TrendPoint]


class AlertItem(Open):
    id: str
    advisory: str
    advisory_ids: list[str]
    aliases: list[str]
    image_digest: str
    severity: str = Field(description="As the policy handles it (KEV → critical by default)")
    finding_severity: str
    kev: bool
    notify: str
    state: Literal["open", "acknowledged", "resolved"]
    version: int
    due: str | None
    first_raised: str | None
    updated: str | None
    resolved_at: str | None
    acknowledged_at: str | None
    acknowledged_by: str | None
    containers: list[dict[str, Any]]
    workloads: list[dict[str, Any]]
    owners: list[str]
    packages: list[Any]
    fixed_versions: list[Any]
    remediation: str


class AlertPage(BaseModel):
    items: list[AlertItem]
    next_cursor: str | None
    total: int


class AlertDetail(AlertItem):
    body: dict[str, Any]
    deliveries: list[dict[str, Any]]


class AlertAck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str = Field("", max_length=200, description="Who is on it (default: the token's name)")


class SlaOwner(Open):
    owner: str
    open: int
    due_soon: int
    breached: int
    next_due: str | None
    breached_alerts: list[dict[str, Any]]


class Sla(BaseModel):
    soon_seconds: int
    open: int
    due_soon: int
    breached: int
    items: list[SlaOwner]


class ValidationStep(Open):
    step: int
    name: str
    status: Literal["pass", "fail", "skipped"]
    evidence: list[str]


class Validation(BaseModel):
    passed: bool
    steps: list[ValidationStep]


class Health(BaseModel):
    status: str
    checks: dict[str, Any] = Field(default_factory=dict)
