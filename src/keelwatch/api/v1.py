"""``/api/v1``: images, findings, vulnerabilities, feeds, finding events, VEX, scans, tokens.

Every route needs a token (``auth.viewer`` to read, ``auth.operator`` to change findings'
standing or trigger scans, ``auth.admin`` for tokens). Lists take ``sort`` (a field, ``-`` for
descending), filters, ``limit`` and an opaque ``cursor`` (``next_cursor`` of the previous page).
Routes are plain ``def``: FastAPI runs them in its thread pool, so database and registry I/O
never blocks the event loop.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from keelwatch.api import auth, models, views
from keelwatch.api.errors import ApiError, responses
from keelwatch.api.paging import DEFAULT_LIMIT, MAX_LIMIT, paginate
from keelwatch.reports.findings import SEVERITY_ORDER, severity_rank
from keelwatch.store import Store
from keelwatch.store import tokens as stored_tokens
from keelwatch.store.advisories import iso_time
from keelwatch.store.tokens import TokenInfo

router = APIRouter(prefix="/api/v1")

Severity = Literal["critical", "high", "medium", "low", "unknown"]
ImageSort = Literal["name", "-name", "reference", "-reference", "critical", "-critical", "high", "-high",
                    "total", "-total", "kev", "-kev", "fixable", "-fixable", "scanned_at", "-scanned_at",
                    "cataloged_at", "-cataloged_at", "packages", "-packages", "severity", "-severity"]
FindingSort = Literal["severity", "-severity", "id", "-id", "package", "-package", "epss", "-epss",
                      "cvss", "-cvss", "first_seen", "-first_seen"]
VulnerabilitySort = Literal["severity", "-severity", "id", "-id", "images", "-images", "epss", "-epss",
                            "cvss", "-cvss"]

READ = responses(400, 401, 403, 422)
READ_ONE = responses(400, 401, 403, 404, 422)
WRITE = responses(400, 401, 403, 404, 422)

Limit = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page")
Cursor = Query(None, max_length=2000, description="next_cursor of the previous page")


def _store(request: Request) -> Store:
    return request.app.state.store


def _worst(counts: dict[str, int]) -> int:
    """Rank of the most severe label with findings (0 critical … 4 unknown; 5 when there are none)."""
    return next((severity_rank(label) for label in SEVERITY_ORDER if counts.get(label)), len(SEVERITY_ORDER))


# --- who am I ----------------------------------------------------------------------------------------------


@router.get("/me", response_model=models.Me, responses=READ, tags=["tokens"], summary="The token in use")
def me(token: TokenInfo = Depends(auth.viewer)) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "role": token.role}


# --- images ------------------------------------------------------------------------------------------------


_IMAGE_KEYS = {
    "name": lambda i: i["name"], "reference": lambda i: i["reference"],
    "critical": lambda i: i["counts"]["critical"], "high": lambda i: i["counts"]["high"],
    "total": lambda i: i["total"], "kev": lambda i: i["kev"], "fixable": lambda i: i["fixable"],
    "scanned_at": lambda i: i["scanned_at"] or "", "cataloged_at": lambda i: i["cataloged_at"] or "",
    "packages": lambda i: i["package_count"],
    # Most severe first when ascending: by the worst label present, then by how many of each.
    "severity": lambda i: [_worst(i["counts"])] + [-i["counts"][label] for label in SEVERITY_ORDER],
}


@router.get("/images", response_model=models.ImagePage, responses=READ, tags=["images"],
            summary="Stored images with their severity counts")
def list_images(
    request: Request,
    _: TokenInfo = Depends(auth.viewer),
    q: str | None = Query(None, max_length=500, description="Substring of the name, reference or digest"),
    min_severity: Severity | None = Query(None, description="Only images with a finding this severe or worse"),
    kev: bool | None = Query(None, description="Only images with (true) or without (false) KEV findings"),
    scanned: bool | None = Query(None, description="Only scanned (true) or never scanned (false) images"),
    sort: ImageSort = Query("severity", description="A field; - before it for descending"),
    limit: int = Limit,
    cursor: str | None = Cursor,
) -> dict[str, Any]:
    items = views.list_images(_store(request))
    if q:
        needle = q.lower()
        items = [i for i in items if needle in i["name"].lower() or needle in i["reference"].lower()
                 or needle in i["digest"]]
    if min_severity is not None:
        limit_rank = severity_rank(min_severity)
        items = [i for i in items if _worst(i["counts"]) <= limit_rank]
    if kev is not None:
        items = [i for i in items if (i["kev"] > 0) == kev]
    if scanned is not None:
        items = [i for i in items if i["scanned"] == scanned]
    return paginate(items, sort=sort, keys=_IMAGE_KEYS, id_of=lambda i: i["digest"], cursor=cursor,
                    limit=limit).as_dict()


def _image_or_404(store: Store, digest: str) -> dict[str, Any]:
    doc = views.image_detail(store, digest)
    if doc is None:
        raise ApiError(404, "not_found", f"no stored image has digest {digest}")
    return doc


@router.get("/images/{digest}", response_model=models.ImageDetail, responses=READ_ONE, tags=["images"],
            summary="One image: its findings (suppressed ones listed), unknowns and counts")
def get_image(request: Request, digest: str, _: TokenInfo = Depends(auth.viewer)) -> dict[str, Any]:
    return _image_or_404(_store(request), digest)


_FINDING_KEYS = {
    "severity": lambda f: [severity_rank(f["severity"]), f["package"]["name"].lower(), f["id"]],
    "id": lambda f: f["id"], "package": lambda f: [f["package"]["name"].lower(), f["package"]["version"]],
    "epss": lambda f: f["epss"], "cvss": lambda f: f["cvss"]["score"] if f["cvss"] else None,
    "first_seen": lambda f: f["first_seen"],
}


@router.get("/images/{digest}/findings", response_model=models.FindingPage, responses=READ_ONE,
            tags=["images"], summary="An image's findings, filtered and paged")
def image_findings(
    request: Request,
    digest: str,
    _: TokenInfo = Depends(auth.viewer),
    min_severity: Severity | None = Query(None, description="Only findings this severe or worse"),
    kev: bool | None = Query(None),
    suppressed: bool | None = Query(None, description="Only suppressed (true) or counting (false) findings"),
    fixable: bool | None = Query(None, description="Only findings with (true) or without (false) a fixed version"),
    package: str | None = Query(None, max_length=500, description="Substring of the package name"),
    sort: FindingSort = Query("severity"),
    limit: int = Limit,
    cursor: str | None = Cursor,
) -> dict[str, Any]:
    items = _image_or_404(_store(request), digest)["findings"]
    if min_severity is not None:
        items = [f for f in items if severity_rank(f["severity"]) <= severity_rank(min_severity)]
    if kev is not None:
        items = [f for f in items if f["kev"] == kev]
    if suppressed is not None:
        items = [f for f in items if f["suppressed"] == suppressed]
    if fixable is not None:
        items = [f for f in items if f["fix_available"] == fixable]
    if package:
        items = [f for f in items if package.lower() in f["package"]["name"].lower()]
    return paginate(items, sort=sort, keys=_FINDING_KEYS, id_of=lambda f: f["key"], cursor=cursor,
                    limit=limit).as_dict()


# --- vulnerabilities -----------------------------------------------------------------------------------------


_VULN_KEYS = {
    "severity": lambda v: [severity_rank(v["severity"]), -v["images"]], "id": lambda v: v["id"],
    "images": lambda v: v["images"], "epss": lambda v: v["epss"], "cvss": lambda v: v["cvss_score"],
}


@router.get("/vulnerabilities", response_model=models.VulnerabilityPage, responses=READ, tags=["vulnerabilities"],
            summary="Every advisory some stored finding names, with how many images carry it")
def list_vulnerabilities(
    request: Request,
    _: TokenInfo = Depends(auth.viewer),
    q: str | None = Query(None, max_length=200, description="Substring of the id or an alias"),
    min_severity: Severity | None = Query(None),
    kev: bool | None = Query(None),
    sort: VulnerabilitySort = Query("severity"),
    limit: int = Limit,
    cursor: str | None = Cursor,
) -> dict[str, Any]:
    items = views.list_vulnerabilities(_store(request))
    if q:
        needle = q.lower()
        items = [v for v in items if needle in v["id"].lower() or any(needle in a.lower() for a in v["aliases"])]
    if min_severity is not None:
        items = [v for v in items if severity_rank(v["severity"]) <= severity_rank(min_severity)]
    if kev is not None:
        items = [v for v in items if v["kev"] == kev]
    return paginate(items, sort=sort, keys=_VULN_KEYS, id_of=lambda v: v["id"], cursor=cursor,
                    limit=limit).as_dict()


@router.get("/vulnerabilities/{vuln_id}", response_model=models.Vulnerability, responses=READ_ONE,
            tags=["vulnerabilities"], summary="Which images have this CVE (or advisory id, or alias)")
def get_vulnerability(request: Request, vuln_id: str, _: TokenInfo = Depends(auth.viewer)) -> dict[str, Any]:
    doc = views.vulnerability(_store(request), vuln_id)
    if doc is None:
        raise ApiError(404, "not_found", f"no stored advisory or finding names {vuln_id}")
    return doc


# --- feeds and events ----------------------------------------------------------------------------------------


@router.get("/feeds", response_model=models.FeedList, responses=READ, tags=["feeds"],
            summary="Every feed's status and age")
def feeds(request: Request, _: TokenInfo = Depends(auth.viewer)) -> dict[str, Any]:
    return {"items": views.feed_items(_store(request))}


def parse_since(value: str | None) -> int | datetime | None:
    if value is None or value == "":
        return None
    if value.isdigit() and value.isascii():
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "bad_request", f"since={value!r} is neither a sync id nor an ISO time",
                       hint="e.g. since=41 or since=2026-12-01T00:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/events", response_model=models.EventPage, responses=READ, tags=["events"],
            summary="Finding events (opened, closed, changed), oldest first")
def events(
    request: Request,
    _: TokenInfo = Depends(auth.viewer),
    since: str | None = Query(None, max_length=64, description="A sync id (events after it) or an ISO time"),
    image: str | None = Query(None, max_length=200, description="Only this image digest's events"),
    event: Literal["opened", "closed", "changed"] | None = Query(None),
    limit: int = Limit,
    cursor: str | None = Cursor,
) -> dict[str, Any]:
    items = views.event_items(_store(request), parse_since(since), image=image)
    if event is not None:
        items = [e for e in items if e["event"] == event]
    return paginate(items, sort="event_id", keys={"event_id": lambda e: e["event_id"]}, id_of=lambda e: e["event_id"],
                    cursor=cursor, limit=limit).as_dict()


# --- VEX statements and risk acceptances ---------------------------------------------------------------------


def _statement(r: Any) -> dict[str, Any]:
    return {"id": r.id, "document": r.document, "format": r.format, "vulnerability": r.vulnerability,
            "product": r.product, "subcomponent": r.subcomponent, "status": r.status,
            "justification": r.justification, "detail": r.detail, "issued": iso_time(r.issued),
            "imported_at": iso_time(r.imported_at)}


def _acceptance(r: Any, now: datetime) -> dict[str, Any]:
    until = r.until if r.until.tzinfo else r.until.replace(tzinfo=UTC)
    return {"id": r.id, "vulnerability": r.vulnerability, "image": r.image, "package": r.package,
            "until": iso_time(r.until), "reason": r.reason, "created_by": r.created_by,
            "created_at": iso_time(r.created_at), "revoked_at": iso_time(r.revoked_at),
            "active": r.revoked_at is None and until > now}


@router.get("/vex/statements", response_model=models.VexStatementPage, responses=READ, tags=["vex"],
            summary="Imported VEX statements")
def vex_statements(
    request: Request,
    _: TokenInfo = Depends(auth.viewer),
    vulnerability: str | None = Query(None, max_length=200),
    limit: int = Limit,
    cursor: str | None = Cursor,
) -> dict[str, Any]:
    from keelwatch.match.vex import list_statements

    with _store(request).session(write=False) as session:
        items = [_statement(r) for r in list_statements(session)]
    if vulnerability:
        items = [s for s in items if s["vulnerability"] == vulnerability]
    return paginate(items, sort="id", keys={"id": lambda s: s["id"]}, id_of=lambda s: s["id"], cursor=cursor,
                    limit=limit).as_dict()


@router.post("/vex/statements", response_model=models.VexImportResult, status_code=201, responses=WRITE,
             tags=["vex"], summary="Import an OpenVEX or CycloneDX VEX document (operator)")
def import_vex(
    request: Request,
    document: dict[str, Any] = Body(..., description="The VEX document (OpenVEX or CycloneDX JSON)"),
    name: str = Query("api-upload.json", min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._-]+$",
                      description="Document name, used when the document has no @id / serialNumber"),
    _: TokenInfo = Depends(auth.operator),
) -> dict[str, Any]:
    import json

    from keelwatch.match.vex import import_vex as run

    with tempfile.TemporaryDirectory(prefix="keelwatch-vex-") as tmp:
        path = Path(tmp) / name
        path.write_text(json.dumps(document))
        report = run(_store(request), path)
    return {"document": report.document, "format": report.format, "statements": report.statements,
            "replaced": report.replaced, "problems": list(report.problems)}


@router.get("/vex/acceptances", response_model=models.AcceptancePage, responses=READ, tags=["vex"],
            summary="Risk acceptances (those in force, or all)")
def acceptances(
    request: Request,
    _: TokenInfo = Depends(auth.viewer),
    include_inactive: bool = Query(False, description="Also expired and revoked ones"),
    vulnerability: str | None = Query(None, max_length=200),
    limit: int = Limit,
    cursor: str | None = Cursor,
) -> dict[str, Any]:
    from keelwatch.match.vex import list_acceptances

    now = datetime.now(UTC)
    with _store(request).session(write=False) as session:
        items = [_acceptance(r, now) for r in list_acceptances(session, include_inactive=include_inactive, now=now)]
    if vulnerability:
        items = [a for a in items if a["vulnerability"] == vulnerability]
    return paginate(items, sort="id", keys={"id": lambda a: a["id"]}, id_of=lambda a: a["id"], cursor=cursor,
                    limit=limit).as_dict()


@router.post("/vex/acceptances", response_model=models.AcceptanceItem, status_code=201, responses=WRITE,
             tags=["vex"], summary="Accept a vulnerability's risk on an image until a date (operator)")
def accept(request: Request, body: models.AcceptanceCreate,
           token: TokenInfo = Depends(auth.operator)) -> dict[str, Any]:
    from keelwatch.match.vex import accept as run
    from keelwatch.match.vex import list_acceptances

    until = body.until if body.until.tzinfo else body.until.replace(tzinfo=UTC)
    store = _store(request)
    acceptance_id = run(store, body.vulnerability, image=body.image, until=until, reason=body.reason,
                        package=body.package, created_by=f"token {token.name or token.id} ({token.role})")
    now = datetime.now(UTC)
    with store.session(write=False) as session:
        row = next(r for r in list_acceptances(session, include_inactive=True) if r.id == acceptance_id)
        return _acceptance(row, now)


@router.delete("/vex/acceptances/{acceptance_id}", status_code=204, responses=WRITE, tags=["vex"],
               summary="Revoke a risk acceptance (operator)")
def revoke_acceptance(request: Request, acceptance_id: int, _: TokenInfo = Depends(auth.operator)) -> Response:
    from keelwatch.match.vex import revoke

    if not revoke(_store(request), acceptance_id):
        raise ApiError(404, "not_found", f"no acceptance {acceptance_id} in force")
    return Response(status_code=204)


# --- scans ---------------------------------------------------------------------------------------------------


@router.post("/scans", response_model=models.ScanResult, status_code=201, responses=WRITE, tags=["scans"],
             summary="Catalog a reference (or reuse its stored catalog) and scan it (operator)")
def scan(request: Request, body: models.ScanRequest, _: TokenInfo = Depends(auth.operator)) -> dict[str, Any]:
    from keelwatch.images.reference import parse_source
    from keelwatch.match.scan import scan_image
    from keelwatch.match.vex import suppressions_for
    from keelwatch.reports.findings import summary

    store = _store(request)
    reference = body.reference.strip()
    reused = True
    if reference.startswith("sha256:") and not body.refresh:
        digest = reference
        with store.session(write=False) as session:
            if views._summary(session, digest) is None:
                raise ApiError(404, "not_found", f"no stored image has digest {digest}",
                               hint="scan it by registry reference first")
    else:
        spec = parse_source(reference)
        if spec.scheme != "registry" and not request.app.state.options.allow_local_sources:
            raise ApiError(400, "bad_request", f"the API scans registry references only, not {spec.scheme}:",
                           hint="local sources (files on the server) are off; use keelwatch scan on the host")
        from keelwatch.images.layers import Limits
        from keelwatch.images.source import OpenOptions
        from keelwatch.model import Platform
        from keelwatch.pipeline import catalog_reference, registry_is_insecure

        scan_settings = request.app.state.settings.scan
        platform = body.platform or scan_settings.platform
        try:
            parsed_platform = Platform.parse(platform) if platform else None
        except ValueError as exc:
            raise ApiError(400, "bad_request", f"platform: {exc}") from None
        options = OpenOptions(platform=parsed_platform,
                              insecure=registry_is_insecure(reference, scan_settings.insecure_registries),
                              limits=Limits(max_layer_bytes=scan_settings.max_layer_bytes,
                                            max_file_bytes=scan_settings.max_file_bytes))
        done = catalog_reference(reference, options=options, store=store, refresh=body.refresh)
        digest, reused = done.result.image.manifest_digest, done.reused
    report = scan_image(store, digest)
    with store.session(write=False) as session:
        image = views.image_ref_json(views._summary(session, digest))  # type: ignore[arg-type]
    return {"image": image, "summary": summary(report.findings, suppressions_for(store, digest, report.findings)),
            "opened": report.opened, "closed": report.closed, "changed": report.changed, "reused_catalog": reused,
            "seconds": round(report.seconds, 3)}


# --- tokens (admin) ------------------------------------------------------------------------------------------


@router.get("/tokens", response_model=models.TokenList, responses=READ, tags=["tokens"],
            summary="API tokens (admin); never their secrets")
def list_tokens(request: Request, include_revoked: bool = Query(False),
                _: TokenInfo = Depends(auth.admin)) -> dict[str, Any]:
    with _store(request).session(write=False) as session:
        return {"items": [t.as_dict() for t in stored_tokens.list_tokens(session, include_revoked=include_revoked)]}


@router.post("/tokens", response_model=models.TokenCreated, status_code=201, responses=WRITE, tags=["tokens"],
             summary="Create a token (admin); the secret is in this response only")
def create_token(request: Request, body: models.TokenCreate, _: TokenInfo = Depends(auth.admin)) -> dict[str, Any]:
    with _store(request).session() as session:
        token, info = stored_tokens.create_token(session, body.role, name=body.name)
    return {"token": token, "info": info.as_dict()}


@router.delete("/tokens/{token_id}", status_code=204, responses=WRITE, tags=["tokens"],
               summary="Revoke a token (admin)")
def revoke_token(request: Request, token_id: int, _: TokenInfo = Depends(auth.admin)) -> Response:
    with _store(request).session() as session:
        try:
            stored_tokens.revoke_token(session, str(token_id))
        except stored_tokens.TokenError:
            raise ApiError(404, "not_found", f"no active token {token_id}") from None
    return Response(status_code=204)
