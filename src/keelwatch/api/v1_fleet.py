"""``/api/v1`` for the running fleet: containers, workloads, namespaces, clusters, posture, alerts, SLA, validation.

Same conventions as ``keelwatch.api.v1``: a viewer token reads, an operator token acknowledges and
resolves alerts; lists take ``sort``, filters, ``limit`` and an opaque ``cursor``; errors are the
JSON ``ErrorBody``. The data comes from ``keelwatch.api.posture_views`` (shared with the dashboard).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request

from keelwatch.api import auth, models
from keelwatch.api import posture_views as pv
from keelwatch.api.errors import ApiError, responses
from keelwatch.api.paging import DEFAULT_LIMIT, MAX_LIMIT, paginate
from keelwatch.posture.history import SNAPSHOT_GROUPINGS
from keelwatch.reports.findings import SEVERITY_ORDER
from keelwatch.store import Store
from keelwatch.store.tokens import TokenInfo

router = APIRouter(prefix="/api/v1")

READ = responses(400, 401, 403, 422)
READ_ONE = responses(400, 401, 403, 404, 422)
WRITE = responses(400, 401, 403, 404, 409, 422)

Limit = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page")
Cursor = Query(None, max_length=2000, description="next_cursor of the previous page")

Severity = Literal["critical", "high", "medium", "low", "unknown"]
ContainerSort = Literal["name", "-name", "risk", "-risk", "critical", "-critical", "total", "-total",
                        "kev", "-kev", "first_seen", "-first_seen"]
GroupSort = Literal["risk", "-risk", "name", "-name", "critical", "-critical", "total", "-total",
                    "containers", "-containers", "kev", "-kev", "unknown_posture", "-unknown_posture"]
AlertSort = Literal["urgency", "-urgency", "due", "-due", "first_raised", "-first_raised", "severity", "-severity"]
HistoryBy = Literal[SNAPSHOT_GROUPINGS]  # type: ignore[valid-type]


def _store(request: Request) -> Store:
    return request.app.state.store


def _num(value: Any) -> Any:
    return -1 if value is None else value  # unknown posture sorts below every known count


_CONTAINER_KEYS = {
    "name": lambda c: [c["cluster"], c["namespace"], c["pod"], c["container"]],
    "risk": lambda c: _num(c["risk"]), "critical": lambda c: _num(c["counts"]["critical"] if c["counts"] else None),
    "total": lambda c: _num(c["total"]), "kev": lambda c: _num(c["kev"]), "first_seen": lambda c: c["first_seen"],
}

_GROUP_KEYS = {
    # Ascending risk is the least exposed first; the default -risk is the most exposed first.
    "risk": lambda r: [r["risk"], r["counts"]["critical"]], "name": lambda r: r["key"],
    "critical": lambda r: r["counts"]["critical"], "total": lambda r: r["total"],
    "containers": lambda r: r["containers"], "kev": lambda r: r["kev"],
    "unknown_posture": lambda r: r["unknown_posture"],
}


def _page_groups(rows: list[dict[str, Any]], by: str, sort: str, cursor: str | None, limit: int) -> dict[str, Any]:
    page = paginate(rows, sort=sort, keys=_GROUP_KEYS, id_of=lambda r: r["key"], cursor=cursor, limit=limit)
    return {"by": by, **page.as_dict()}


def _grouped(request: Request, by: str) -> list[dict[str, Any]]:
    try:
        return pv.group_rows(_store(request), by)
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc), hint="e.g. by=workload or by=label:app") from None


# --- containers ----------------------------------------------------------------------------------------------


@router.get("/containers", response_model=models.ContainerPage, responses=READ, tags=["fleet"],
            summary="Live containers, each with its image's posture counts (or why they are unknown)")
def list_containers(
    request: Request,
    _: TokenInfo = Depends(auth.viewer),
    cluster: str | None = Query(None, max_length=500),
    namespace: str | None = Query(None, max_length=500),
    workload: str | None = Query(None, max_length=1000, description="A workload name or cluster/namespace/kind/name"),
    image: str | None = Query(None, max_length=1000, description="The image as given, its reference, or a digest"),
    digest: str | None = Query(None, max_length=200, description="The manifest (or index) digest it runs"),
    unresolved: bool | None = Query(None, description="Only containers whose digest is unknown (true) or known"),
    unknown_posture: bool | None = Query(None, description="Only containers whose posture is unknown (true)"),
    owner: str | None = Query(None, max_length=500, description="Owner or team"),
    environment: str | None = Query(None, max_length=500),
    min_severity: Severity | None = Query(None, description="Only containers with an open finding this severe"),
    sort: ContainerSort = Query("-risk"),
    limit: int = Limit,
    cursor: str | None = Cursor,
) -> dict[str, Any]:
    items = pv.filter_containers(pv.list_containers(_store(request)), cluster=cluster, namespace=namespace,
                                 workload=workload, image=image, digest=digest, unresolved=unresolved, owner=owner,
                                 environment=environment, unknown_posture=unknown_posture)
    if min_severity is not None:
        worse = SEVERITY_ORDER[:SEVERITY_ORDER.index(min_severity) + 1]
        items = [c for c in items if c["counts"] and any(c["counts"][label] for label in worse)]
    return paginate(items, sort=sort, keys=_CONTAINER_KEYS, id_of=lambda c: c["key"], cursor=cursor,
                    limit=limit).as_dict()


@router.get("/containers/{key:path}", response_model=models.ContainerDetail, responses=READ_ONE, tags=["fleet"],
            summary="One live container (by its key) with its image's open findings")
def get_container(request: Request, key: str, _: TokenInfo = Depends(auth.viewer)) -> dict[str, Any]:
    try:
        return pv.container_detail(_store(request), key)
    except pv.NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None


# --- workloads, namespaces, clusters, any grouping -----------------------------------------------------------


@router.get("/workloads", response_model=models.PosturePage, responses=READ, tags=["fleet"],
            summary="Workloads with their posture (distinct findings over their containers)")
def list_workloads(
    request: Request,
    _: TokenInfo = Depends(auth.viewer),
    cluster: str | None = Query(None, max_length=500),
    namespace: str | None = Query(None, max_length=500),
    sort: GroupSort = Query("-risk"),
    limit: int = Limit,
    cursor: str | None = Cursor,
) -> dict[str, Any]:
    rows = [r for r in _grouped(request, "workload") if (cluster is None or r["cluster"] == cluster)
            and (namespace is None or r["namespace"] == namespace)]
    return _page_groups(rows, "workload", sort, cursor, limit)


@router.get("/workloads/{cluster}/{namespace}/{kind}/{name}", response_model=models.WorkloadDetail,
            responses=READ_ONE, tags=["fleet"], summary="One workload: its containers, images and open findings")
def get_workload(request: Request, cluster: str, namespace: str, kind: str, name: str,
                 _: TokenInfo = Depends(auth.viewer)) -> dict[str, Any]:
    try:
        return pv.workload_detail(_store(request), cluster, namespace, kind, name)
    except pv.NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@router.get("/namespaces", response_model=models.PosturePage, responses=READ, tags=["fleet"],
            summary="Namespaces with their posture")
def list_namespaces(
    request: Request,
    _: TokenInfo = Depends(auth.viewer),
    cluster: str | None = Query(None, max_length=500),
    sort: GroupSort = Query("-risk"),
    limit: int = Limit,
    cursor: str | None = Cursor,
) -> dict[str, Any]:
    rows = [r for r in _grouped(request, "namespace") if cluster is None or r["cluster"] == cluster]
    return _page_groups(rows, "namespace", sort, cursor, limit)


@router.get("/clusters", response_model=models.PosturePage, responses=READ, tags=["fleet"],
            summary="Clusters with their posture")
def list_clusters(request: Request, _: TokenInfo = Depends(auth.viewer), sort: GroupSort = Query("-risk"),
                  limit: int = Limit, cursor: str | None = Cursor) -> dict[str, Any]:
    return _page_groups(_grouped(request, "cluster"), "cluster", sort, cursor, limit)


@router.get("/posture", response_model=models.PosturePage, responses=READ, tags=["posture"],
            summary="Posture by any grouping: container, workload, namespace, cluster, environment, owner, team, "
                    "image, label:KEY")
def posture(
    request: Request,
    _: TokenInfo = Depends(auth.viewer),
    by: str = Query("workload", min_length=1, max_length=300,
                    description="container, workload, namespace, cluster, environment, owner, team, image or "
                                "label:KEY"),
    sort: GroupSort = Query("-risk"),
    limit: int = Limit,
    cursor: str | None = Cursor,
) -> dict[str, Any]:
    return _page_groups(_grouped(request, by), by, sort, cursor, limit)


@router.get("/posture/top", response_model=models.ExposurePage, responses=READ, tags=["posture"],
            summary="The advisories that reach the most running containers, in rank order")
def posture_top(request: Request, _: TokenInfo = Depends(auth.viewer), limit: int = Limit,
                cursor: str | None = Cursor) -> dict[str, Any]:
    rows = pv.top_exposures(pv.load_fleet(_store(request)))
    return paginate(rows, sort="rank", keys={"rank": lambda r: r["rank"]}, id_of=lambda r: r["advisory"],
                    cursor=cursor, limit=limit).as_dict()


@router.get("/posture/plan", response_model=models.PlanPage, responses=READ, tags=["posture"],
            summary="The remediation plan: which image rebuild removes the most critical findings from production")
def posture_plan(request: Request, _: TokenInfo = Depends(auth.viewer), limit: int = Limit,
                 cursor: str | None = Cursor) -> dict[str, Any]:
    rows = pv.remediation_plan(pv.load_fleet(_store(request)))
    return paginate(rows, sort="rank", keys={"rank": lambda r: r["rank"]}, id_of=lambda r: r["digest"],
                    cursor=cursor, limit=limit).as_dict()


@router.get("/posture/freshness", response_model=models.Freshness, responses=READ, tags=["posture"],
            summary="How old the feeds, the inventory sources and the running images' scans are")
def posture_freshness(request: Request, _: TokenInfo = Depends(auth.viewer)) -> dict[str, Any]:
    return pv.freshness(pv.load_fleet(_store(request)))


@router.get("/posture/history", response_model=models.History, responses=READ, tags=["posture"],
            summary="Posture now against the newest snapshot at or before `since`, row by row")
def posture_history(
    request: Request,
    _: TokenInfo = Depends(auth.viewer),
    by: HistoryBy = Query("workload", description="A grouping snapshots keep"),
    since: str | None = Query(None, max_length=64, description="7d, 24h, 30m (ago) or an ISO time; default 7d"),
    change: Literal["new", "gone", "improved", "worse", "same"] | None = Query(None),
) -> dict[str, Any]:
    try:
        moment = pv.parse_moment(since, default=timedelta(days=7))
    except (ValueError, OverflowError):
        raise ApiError(400, "bad_request", f"since={since!r} is neither a duration nor an ISO time",
                       hint="e.g. since=7d or since=2026-12-01T00:00:00Z") from None
    doc = pv.posture_diff(_store(request), by, moment)
    if change is not None:
        doc["rows"] = [r for r in doc["rows"] if r["change"] == change]
    return doc


@router.get("/posture/trend", response_model=models.Trend, responses=READ, tags=["posture"],
            summary="The fleet's posture snapshots of the last days (the newest of each day), oldest first")
def posture_trend(request: Request, _: TokenInfo = Depends(auth.viewer),
                  days: int = Query(90, ge=1, le=3660)) -> dict[str, Any]:
    return {"days": days, "items": pv.trend(_store(request), days=days)}


# --- alerts and SLA ------------------------------------------------------------------------------------------


def _alert_or_404(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        return fn(*args, **kwargs)
    except pv.NotFound as exc:
        raise ApiError(404, "not_found", str(exc), hint="GET /api/v1/alerts lists them") from None
    except pv.Conflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None


_ALERT_KEYS = {
    "urgency": lambda a: list(pv._urgency(a)[:2]), "due": lambda a: a["due"] or "9999",
    "first_raised": lambda a: a["first_raised"] or "",
    "severity": lambda a: SEVERITY_ORDER.index(a["severity"]) if a["severity"] in SEVERITY_ORDER else 9,
}


@router.get("/alerts", response_model=models.AlertPage, responses=READ, tags=["alerts"],
            summary="Alerts (one per advisory and image), most urgent first")
def list_alerts(
    request: Request,
    _: TokenInfo = Depends(auth.viewer),
    state: list[Literal["open", "acknowledged", "resolved"]] | None = Query(
        None, description="Repeatable; default open and acknowledged"),
    severity: Severity | None = Query(None, description="As the policy handles it"),
    owner: str | None = Query(None, max_length=500),
    advisory: str | None = Query(None, max_length=200, description="The advisory, or any of its ids and aliases"),
    image: str | None = Query(None, max_length=200, description="The image digest"),
    sort: AlertSort = Query("urgency"),
    limit: int = Limit,
    cursor: str | None = Cursor,
) -> dict[str, Any]:
    items = pv.list_alerts(_store(request), states=state or ("open", "acknowledged"))
    if severity is not None:
        items = [a for a in items if a["severity"] == severity]
    if owner is not None:
        items = [a for a in items if owner in a["owners"]]
    if advisory is not None:
        items = [a for a in items if advisory in (a["advisory"], *a["advisory_ids"], *a["aliases"])]
    if image is not None:
        items = [a for a in items if a["image_digest"] == image]
    return paginate(items, sort=sort, keys=_ALERT_KEYS, id_of=lambda a: a["id"], cursor=cursor,
                    limit=limit).as_dict()


@router.get("/alerts/{alert_id}", response_model=models.AlertDetail, responses=READ_ONE, tags=["alerts"],
            summary="One alert, what its last message said, and every delivery of it")
def get_alert(request: Request, alert_id: str, _: TokenInfo = Depends(auth.viewer)) -> dict[str, Any]:
    return _alert_or_404(pv.alert_detail, _store(request), alert_id)


@router.post("/alerts/{alert_id}/ack", response_model=models.AlertItem, responses=WRITE, tags=["alerts"],
             summary="Acknowledge an alert: someone is on it (operator); 409 when it is resolved")
def ack_alert(request: Request, alert_id: str, body: models.AlertAck | None = Body(None),
              token: TokenInfo = Depends(auth.operator)) -> dict[str, Any]:
    by = (body.by.strip() if body else "") or f"token {token.name or token.id}"
    return _alert_or_404(pv.acknowledge, _store(request), alert_id, by)


@router.post("/alerts/{alert_id}/resolve", response_model=models.AlertItem, responses=WRITE, tags=["alerts"],
             summary="Mark an alert resolved (operator); still-present findings open it again at the next raise")
def resolve_alert(request: Request, alert_id: str, _: TokenInfo = Depends(auth.operator)) -> dict[str, Any]:
    return _alert_or_404(pv.resolve, _store(request), alert_id)


@router.get("/sla", response_model=models.Sla, responses=READ, tags=["alerts"],
            summary="Remediation deadlines by owner: open alerts, due soon, breached")
def sla(request: Request, _: TokenInfo = Depends(auth.viewer),
        soon: str = Query("7d", max_length=20, description="What counts as due soon: hours or days, e.g. 72h, 7d")
        ) -> dict[str, Any]:
    try:
        window = pv.parse_soon(soon)
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"soon: {exc}") from None
    return pv.sla(_store(request), window.delta)


# --- validation ----------------------------------------------------------------------------------------------


@router.get("/validation", response_model=models.Validation, responses=READ, tags=["posture"],
            summary="The validation checklist (keelwatch validate) with its evidence")
def validation(request: Request, _: TokenInfo = Depends(auth.viewer)) -> dict[str, Any]:
    return pv.validation(_store(request), request.app.state.settings)
