"""The HTTP side of ``keelwatch serve``: ``create_app(store, settings)`` builds the whole app.

``/healthz`` (the process answers), ``/readyz`` (the store answers and its schema is current,
plus any readiness check the service registers), ``/metrics`` (Prometheus), ``/openapi.json``,
``/api/v1/...`` (token required on every route) and the dashboard (``keelwatch.web``) at ``/``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from keelwatch import __version__
from keelwatch.api import errors, models
from keelwatch.api.metrics import LatencyMiddleware, Metrics
from keelwatch.config import Settings
from keelwatch.store import Store

log = logging.getLogger(__name__)

#: A readiness check: returns None when ready, else why not.
ReadinessCheck = Callable[[], str | None]


@dataclass(slots=True)
class ApiOptions:
    """How this app behaves beyond the settings file."""

    #: ``POST /api/v1/scans`` reads only registries by default: a file path would let an API
    #: client read the server's disk. Turn on for a trusted demo or test.
    allow_local_sources: bool = False
    #: Serve the dashboard at ``/`` (``keelwatch.web``).
    dashboard: bool = True
    #: Set the dashboard's session cookie with ``Secure`` (behind TLS).
    secure_cookies: bool = False
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)


def store_ready(store: Store) -> str | None:
    """None when the store answers a query and its schema is at this keelwatch's head."""
    from keelwatch.store import migrate

    try:
        with store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        if migrate.needs_upgrade(store.engine):
            return "the database schema is behind this keelwatch (run keelwatch db migrate)"
    except Exception as exc:
        return f"the database does not answer: {' '.join(str(exc).split())[:300]}"
    return None


def create_app(store: Store, settings: Settings, *, options: ApiOptions | None = None,
               lifespan: Any = None) -> FastAPI:
    options = options or ApiOptions()
    app = FastAPI(
        title="keelwatch", version=__version__,
        description="What is vulnerable in production, right now. Every `/api/v1` route needs "
                    "`Authorization: Bearer TOKEN` (`keelwatch token create --role viewer|operator|admin`).",
        docs_url="/api/docs", redoc_url=None, openapi_url="/openapi.json", lifespan=lifespan,
    )
    app.state.store = store
    app.state.settings = settings
    app.state.options = options
    app.state.metrics = metrics = Metrics(store)
    errors.install(app)
    app.add_middleware(LatencyMiddleware, metrics=metrics)

    @app.get("/healthz", response_model=models.Health, tags=["health"], summary="The process answers")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "checks": {}}

    @app.get("/readyz", response_model=models.Health, tags=["health"],
             responses={503: {"model": models.Health, "description": "not ready"}},
             summary="The store answers at the current schema, and every service check passes")
    def readyz(request: Request) -> Any:
        checks: dict[str, Any] = {"store": store_ready(store)}
        for name, check in options.readiness.items():
            try:
                checks[name] = check()
            except Exception as exc:
                checks[name] = f"check failed: {exc}"
        failing = {k: v for k, v in checks.items() if v is not None}
        body = {"status": "ok" if not failing else "unavailable", "checks": {k: v or "ok" for k, v in checks.items()}}
        return JSONResponse(body, status_code=503 if failing else 200)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics",
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "Prometheus text format"}})
    def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    from keelwatch.api.v1 import router
    from keelwatch.api.v1_fleet import router as fleet_router

    app.include_router(router)
    app.include_router(fleet_router)
    if options.dashboard:
        from keelwatch.web import mount

        mount(app, secure_cookies=options.secure_cookies)
    return app


__all__ = ["ApiOptions", "create_app", "store_ready"]
