"""The dashboard's fleet pages: clusters → namespaces → workloads → containers, alerts, the plan, validation.

Pages render what ``keelwatch.api.posture_views`` returns (the same functions as ``/api/v1``).
Acknowledging or resolving an alert is a form POST that needs an operator token (the session's);
the session cookie is ``SameSite=Strict`` and a cross-origin ``Origin`` is refused as well.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from keelwatch.api import posture_views as pv
from keelwatch.reports.findings import SEVERITY_ORDER
from keelwatch.store import tokens as stored_tokens
from keelwatch.store.tokens import TokenInfo

router = APIRouter(include_in_schema=False)

#: What the overview counts as "SLA due soon" (``keelwatch sla``'s default).
SLA_SOON = timedelta(days=7)
TREND_DAYS = 90


def _web() -> Any:
    from keelwatch import web

    return web


def _user(request: Request) -> TokenInfo:
    return _web()._user(request)


def _render(request: Request, name: str, user: TokenInfo | None, status: int = 200, **context: Any) -> HTMLResponse:
    can_write = user is not None and stored_tokens.allows(user.role, "operator")
    return _web()._render(request, name, user, status, can_write=can_write, **context)


def _missing(request: Request, user: TokenInfo, what: str) -> HTMLResponse:
    return _render(request, "missing.html", user, status=404, what=what)


def _with_bars(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stacked = _web().stacked
    for r in rows:
        r["bar"] = stacked(r["counts"]) if r.get("counts") else []
    return rows


# --- the overview's fleet part ------------------------------------------------------------------------


def trend_chart(points: list[dict[str, Any]], *, today: date, days: int = TREND_DAYS, width: int = 540,
                height: int = 150) -> dict[str, Any]:
    """Stacked columns of an inline SVG: one per day with a snapshot, distinct findings by severity."""
    left, bottom = 36, 18
    plot_w, plot_h = width - left - 4, height - bottom - 6
    start = today - timedelta(days=days - 1)
    step = plot_w / days
    most = max((sum(p["counts"].values()) for p in points), default=0) or 1
    columns = []
    for p in points:
        day = date.fromisoformat(p["day"])
        if day < start or day > today:
            continue
        x = left + (day - start).days * step
        y = 6.0 + plot_h
        segments = []
        for label in reversed(SEVERITY_ORDER):  # critical on top
            n = int(p["counts"].get(label, 0))
            if n:
                h = plot_h * n / most
                y -= h
                segments.append({"label": label, "y": round(y, 1), "height": round(h, 1), "count": n})
        columns.append({"x": round(x, 1), "width": round(max(step - 1, 1.5), 1), "day": p["day"],
                        "total": sum(p["counts"].values()), "kev": p["kev"], "segments": segments,
                        "title": f"{p['day']}: " + ", ".join(f"{p['counts'].get(label, 0)} {label}"
                                                            for label in SEVERITY_ORDER) + f"; {p['kev']} KEV"})
    return {"width": width, "height": height, "left": left, "top": 6, "plot_h": plot_h, "base": 6 + plot_h,
            "max": most, "start": start.isoformat(), "end": today.isoformat(), "columns": columns}


def fleet_overview(request: Request) -> dict[str, Any]:
    """What the overview adds about the running fleet: posture, SLA and the 90-day trend."""
    store = request.app.state.store
    now = datetime.now(UTC)
    f = pv.load_fleet(store, now=now)
    posture = pv.fleet_posture(f)
    points = pv.trend(store, days=TREND_DAYS, now=now)
    today = now.date().isoformat()
    if f.containers and not any(p["day"] == today for p in points):
        # Today's column is the live posture until the day's snapshot is taken.
        points.append({"day": today, "counts": posture["counts"], "kev": posture["kev"],
                       "containers": posture["containers"], "live": True})
    return {"posture": posture, "sla": pv.sla(store, SLA_SOON, now=now), "trend": trend_chart(points, today=now.date()),
            "snapshots": sum(1 for p in points if not p.get("live")),
            "top": pv.top_exposures(f)[:5]}


# --- clusters → namespaces → workloads → containers -------------------------------------------------------


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (-r["risk"], -r["counts"]["critical"], r["key"]))


@router.get("/clusters", response_class=HTMLResponse)
def clusters_page(request: Request) -> HTMLResponse:
    user = _user(request)
    rows = _with_bars(_sorted(pv.group_rows(request.app.state.store, "cluster")))
    for r in rows:
        r["href"] = f"/clusters/{quote(r['cluster'], safe='')}"
        r["label"] = r["cluster"] or "(no cluster)"
    return _render(request, "groups.html", user, title="Clusters", level="cluster", rows=rows, crumbs=[],
                   empty="No container is in the inventory yet (keelwatch inventory sync).")


@router.get("/clusters/{cluster}", response_class=HTMLResponse)
def cluster_page(request: Request, cluster: str) -> HTMLResponse:
    user = _user(request)
    rows = [r for r in pv.group_rows(request.app.state.store, "namespace") if r["cluster"] == cluster]
    if not rows:
        return _missing(request, user, f"No live container runs in cluster {cluster}.")
    for r in _with_bars(rows):
        r["href"] = f"/clusters/{quote(cluster, safe='')}/namespaces/{quote(r['namespace'], safe='')}"
        r["label"] = r["namespace"] or "(no namespace)"
    return _render(request, "groups.html", user, title=f"Cluster {cluster}", level="namespace", rows=_sorted(rows),
                   crumbs=[("Clusters", "/clusters")], empty="")


@router.get("/clusters/{cluster}/namespaces/{namespace}", response_class=HTMLResponse)
def namespace_page(request: Request, cluster: str, namespace: str) -> HTMLResponse:
    user = _user(request)
    rows = [r for r in pv.group_rows(request.app.state.store, "workload")
            if r["cluster"] == cluster and r["namespace"] == namespace]
    if not rows:
        return _missing(request, user, f"No live container runs in {cluster}/{namespace}.")
    for r in _with_bars(rows):
        r["href"] = "/workloads/" + "/".join(quote(r[k], safe="") for k in pv.WORKLOAD_KEYS)
        r["label"] = f"{r['workload_kind']}/{r['workload']}"
    return _render(request, "groups.html", user, title=f"Namespace {namespace}", level="workload",
                   rows=_sorted(rows), empty="",
                   crumbs=[("Clusters", "/clusters"), (cluster, f"/clusters/{quote(cluster, safe='')}")])


@router.get("/workloads/{cluster}/{namespace}/{kind}/{name}", response_class=HTMLResponse)
def workload_page(request: Request, cluster: str, namespace: str, kind: str, name: str) -> HTMLResponse:
    user = _user(request)
    try:
        doc = pv.workload_detail(request.app.state.store, cluster, namespace, kind, name)
    except pv.NotFound as exc:
        return _missing(request, user, f"{exc}.")
    stacked = _web().stacked
    doc["workload"]["bar"] = stacked(doc["workload"]["counts"], width=360)
    crumbs = [("Clusters", "/clusters"), (cluster, f"/clusters/{quote(cluster, safe='')}"),
              (namespace, f"/clusters/{quote(cluster, safe='')}/namespaces/{quote(namespace, safe='')}")]
    return _render(request, "workload.html", user, doc=doc, crumbs=crumbs, kind=kind, workload_name=name)


@router.get("/containers/{key:path}", response_class=HTMLResponse)
def container_page(request: Request, key: str) -> HTMLResponse:
    user = _user(request)
    try:
        doc = pv.container_detail(request.app.state.store, key)
    except pv.NotFound as exc:
        return _missing(request, user, f"{exc}.")
    c = doc
    q = {k: quote(c[k] or "", safe="") for k in pv.WORKLOAD_KEYS}
    crumbs = [("Clusters", "/clusters"), (c["cluster"], f"/clusters/{q['cluster']}"),
              (c["namespace"], f"/clusters/{q['cluster']}/namespaces/{q['namespace']}"),
              (f"{c['workload_kind']}/{c['workload']}",
               f"/workloads/{q['cluster']}/{q['namespace']}/{q['workload_kind']}/{q['workload']}")]
    bar = _web().stacked(doc["counts"], width=360) if doc["counts"] else []
    return _render(request, "container.html", user, doc=doc, crumbs=crumbs, bar=bar)


# --- alerts --------------------------------------------------------------------------------------------


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, state: str = "active", severity: str = "") -> HTMLResponse:
    user = _user(request)
    states = {"active": ("open", "acknowledged"), "all": pv.ALERT_STATES}.get(state)
    if states is None:
        states = (state,) if state in pv.ALERT_STATES else ("open", "acknowledged")
    items = pv.list_alerts(request.app.state.store, states=states)
    if severity in SEVERITY_ORDER:
        items = [a for a in items if a["severity"] == severity]
    now = datetime.now(UTC).isoformat()
    soon = (datetime.now(UTC) + SLA_SOON).isoformat()
    for a in items:
        a["overdue"] = bool(a["due"] and a["due"] <= now and a["state"] != "resolved")
        a["due_soon"] = bool(a["due"] and now < a["due"] <= soon and a["state"] != "resolved")
        a["workload_names"] = sorted({f"{w.get('namespace', '')}/{w.get('name', '')}" for w in a["workloads"]})
    return _render(request, "alerts.html", user, items=items, state=state, severity=severity,
                   sla=pv.sla(request.app.state.store, SLA_SOON), states=("active", *pv.ALERT_STATES, "all"),
                   message=request.query_params.get("done", ""))


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


@router.post("/alerts/{alert_id}/{action}")
async def alert_action(request: Request, alert_id: str, action: str) -> Response:
    from starlette.concurrency import run_in_threadpool

    user = await run_in_threadpool(_user, request)
    if action not in ("ack", "resolve"):
        return _missing(request, user, f"No alert action {action}.")
    if not stored_tokens.allows(user.role, "operator") or not _same_origin(request):
        return _render(request, "missing.html", user, status=403,
                       what="Acknowledging and resolving alerts needs an operator token.")
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    back = (form.get("back") or ["/alerts"])[0]
    back = back if back.startswith("/alerts") and not back.startswith("//") else "/alerts"
    store = request.app.state.store
    try:
        if action == "ack":
            await run_in_threadpool(pv.acknowledge, store, alert_id, user.name or f"token {user.id}")
        else:
            await run_in_threadpool(pv.resolve, store, alert_id)
    except pv.NotFound as exc:
        return _missing(request, user, f"{exc}.")
    except pv.Conflict as exc:
        return _render(request, "missing.html", user, status=409, what=f"{exc}.")
    sep = "&" if "?" in back else "?"
    done = "acknowledged" if action == "ack" else "resolved"
    return RedirectResponse(f"{back}{sep}done={quote(f'{done} {alert_id[:12]}')}", status_code=303)


# --- the plan and the checklist --------------------------------------------------------------------------


@router.get("/plan", response_class=HTMLResponse)
def plan_page(request: Request) -> HTMLResponse:
    user = _user(request)
    f = pv.load_fleet(request.app.state.store)
    return _render(request, "plan.html", user, plan=pv.remediation_plan(f), top=pv.top_exposures(f)[:20],
                   fresh=pv.freshness(f))


@router.get("/validation", response_class=HTMLResponse)
def validation_page(request: Request) -> HTMLResponse:
    user = _user(request)
    doc = pv.validation(request.app.state.store, request.app.state.settings)
    return _render(request, "validation.html", user, doc=doc)
