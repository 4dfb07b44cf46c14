"""Build the served app (API + dashboard + loops in its lifespan) and run it under uvicorn."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI

from keelwatch.api import ApiOptions, create_app
from keelwatch.config import Settings
from keelwatch.service.loops import LOOPS, Loop, LoopRunner
from keelwatch.store import Store

log = logging.getLogger(__name__)

#: Seconds uvicorn lets requests in flight finish after SIGTERM, then as long again for the loops.
GRACEFUL_SECONDS = 20


def build_app(store: Store, settings: Settings, *, workers: bool = True, loops: Sequence[Loop] = LOOPS,
              options: ApiOptions | None = None) -> FastAPI:
    """The app ``keelwatch serve`` runs: the loops start with it and stop (gracefully) with it."""
    options = options or ApiOptions()
    runner = LoopRunner(store, settings, loops) if workers else None
    if runner is not None:
        options.readiness.setdefault("loops", runner.readiness)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                import asyncio

                stopped = await asyncio.to_thread(runner.stop, GRACEFUL_SECONDS)
                log.info("loops stopped" if stopped else "some loops were abandoned at shutdown")

    app = create_app(store, settings, options=options, lifespan=lifespan)
    app.state.loops = runner
    if runner is not None:
        app.state.metrics.registry.register(runner.collector())
    return app


def serve(store: Store, settings: Settings, *, host: str = "127.0.0.1", port: int = 8080, workers: bool = True,
          options: ApiOptions | None = None, access_log: bool = False, **uvicorn_options: Any) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully; returns when everything stopped."""
    import uvicorn

    app = build_app(store, settings, workers=workers, options=options)
    config = uvicorn.Config(app, host=host, port=port, lifespan="on", log_config=None, access_log=access_log,
                            timeout_graceful_shutdown=GRACEFUL_SECONDS, server_header=False, **uvicorn_options)
    server = _Server(config)
    server.run()


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, except that a SIGTERM or SIGINT that ended in a graceful shutdown is not
        raised again afterwards: the process then exits 0, as a clean stop should."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list) and sig in (signal.SIGTERM, signal.SIGINT) and not self.force_exit:
                captured.remove(sig)

    return Server


def _Server(config: Any) -> Any:  # noqa: N802 - a class, built on first use so uvicorn loads only to serve
    return _server_class()(config)
