"""The dashboard: server-rendered pages (Jinja2) served by the same process as the API.

Every asset is served from this package (``/static``); no CDN, no script is needed to read a page.
Login takes an API token (any role) and keeps it in an ``HttpOnly``, ``SameSite=Strict`` cookie;
each page checks it against the store like the API does, so revoking the token logs the
browser out. Pages show what ``keelwatch.api.views`` and ``keelwatch.api.posture_views`` return:
the same data as ``/api/v1`` (the fleet pages are in ``keelwatch.web.fleet``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from keelwatch.api import views
from keelwatch.api.auth import authenticate
from keelwatch.reports.findings import SEVERITY_ORDER, severity_rank
from keelwatch.store.tokens import TokenInfo

HERE = Path(__file__).resolve().parent
COOKIE = "keelwatch_session"
COOKIE_MAX_AGE = 12 * 3600

templates = Jinja2Templates(directory=str(HERE / "templates"))


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _short(digest: str) -> str:
    algorithm, _, hexes = digest.partition(":")
    return f"{algorithm}:{hexes[:12]}" if hexes else digest[:19]


templates.env.filters["age"] = _age
templates.env.filters["short"] = _short
templates.env.filters["urlquote"] = lambda s: quote(str(s), safe="")
templates.env.globals["SEVERITIES"] = SEVERITY_ORDER


def _user(request: Request) -> TokenInfo:
    token = request.cookies.get(COOKIE)
    info = authenticate(request.app.state.store, token) if token else None
    if info is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    return info


def _render(request: Request, name: str, user: TokenInfo | None, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"user": user, **context}, status_code=status)


def severity_bars(counts: dict[str, int], width: int = 360) -> list[dict[str, Any]]:
    """Bars of an inline SVG chart: one per severity, widths proportional to the largest."""
    most = max(counts.values(), default=0) or 1
    return [{"label": label, "count": counts.get(label, 0), "width": round(width * counts.get(label, 0) / most, 1),
             "y": i * 28} for i, label in enumerate(SEVERITY_ORDER)]


def stacked(counts: dict[str, int], width: int = 120) -> list[dict[str, Any]]:
    """Segments of an image's one-line stacked bar (most severe first)."""
    total = sum(counts.values())
    x, out = 0.0, []
    for label in SEVERITY_ORDER:
        n = counts.get(label, 0)
        if n:
            w = width * n / total
            out.append({"label": label, "count": n, "x": round(x, 1), "width": round(w, 1)})
            x += w
    return out


def _safe_next(value: str) -> str:
    # Only local paths: a login form must not become an open redirect.
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return _render(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    next_path = _safe_next((form.get("next") or ["/"])[0])
    from starlette.concurrency import run_in_threadpool

    info = await run_in_threadpool(authenticate, request.app.state.store, token) if token else None
    if info is None:
        return _render(request, "login.html", None, status=401, next=next_path,
                       error="That token is unknown or revoked.")
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(COOKIE, token, max_age=COOKIE_MAX_AGE, httponly=True, samesite="strict",
                        secure=request.app.state.options.secure_cookies, path="/")
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    user = _user(request)
    store = request.app.state.store
    data = views.fleet_overview(store, now=datetime.now(UTC))
    images = views.list_images(store)
    worst = sorted((i for i in images if i["total"]),
                   key=lambda i: ([-i["counts"][label] for label in SEVERITY_ORDER], i["name"]))[:8]
    for i in worst:
        i["bar"] = stacked(i["counts"])
    from keelwatch.web.fleet import fleet_overview

    return _render(request, "overview.html", user, data=data, bars=severity_bars(data["counts"]), worst=worst,
                   fleet=fleet_overview(request))


@router.get("/images", response_class=HTMLResponse)
def images_page(request: Request, q: str = "") -> HTMLResponse:
    user = _user(request)
    items = views.list_images(request.app.state.store)
    if q:
        items = [i for i in items if q.lower() in i["name"].lower() or q.lower() in i["reference"].lower()
                 or q in i["digest"]]
    items.sort(key=lambda i: ([-i["counts"][label] for label in SEVERITY_ORDER], i["name"], i["digest"]))
    for i in items:
        i["bar"] = stacked(i["counts"])
    return _render(request, "images.html", user, items=items, q=q)


@router.get("/images/{digest}", response_class=HTMLResponse)
def image_page(request: Request, digest: str) -> HTMLResponse:
    user = _user(request)
    doc = views.image_detail(request.app.state.store, digest)
    if doc is None:
        return _render(request, "missing.html", user, status=404, what=f"No stored image has digest {digest}.")
    return _render(request, "image.html", user, doc=doc, bar=stacked(doc["item"]["counts"], width=360))


@router.get("/vulnerabilities", response_class=HTMLResponse)
def vulnerabilities_page(request: Request, q: str = "") -> Response:
    user = _user(request)
    store = request.app.state.store
    q = q.strip()
    items = views.list_vulnerabilities(store)
    if q:
        exact = [v for v in items if v["id"].lower() == q.lower() or q.lower() in (a.lower() for a in v["aliases"])]
        if exact or views.vulnerability(store, q) is not None:
            return RedirectResponse(f"/vulnerabilities/{quote(q, safe='')}", status_code=303)
        items = [v for v in items if q.lower() in v["id"].lower() or any(q.lower() in a.lower() for a in v["aliases"])]
    items.sort(key=lambda v: (severity_rank(v["severity"]), not v["kev"], -v["images"], v["id"]))
    return _render(request, "vulnerabilities.html", user, items=items, q=q)


@router.get("/vulnerabilities/{vuln_id}", response_class=HTMLResponse)
def vulnerability_page(request: Request, vuln_id: str) -> HTMLResponse:
    user = _user(request)
    doc = views.vulnerability(request.app.state.store, vuln_id)
    if doc is None:
        return _render(request, "missing.html", user, status=404,
                       what=f"No stored advisory or finding names {vuln_id}.")
    return _render(request, "vulnerability.html", user, doc=doc)


def mount(app: FastAPI, *, secure_cookies: bool = False) -> None:
    """Add the dashboard's pages and ``/static`` to ``app``."""

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)

    from keelwatch.web.fleet import router as fleet_router

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)
    app.include_router(fleet_router)
