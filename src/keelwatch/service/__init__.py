"""``keelwatch serve``: one process running the API, the dashboard and the service's loops.

``loops.py`` holds the loop protocol, the registry (``LOOPS``, one line per loop) and the runner
that gives each loop its thread, cadence, metrics and a stop signal; ``server.py`` builds the app
with the runner in its lifespan and runs it under uvicorn, which turns SIGTERM and SIGINT into a
graceful shutdown: new connections are refused, requests in flight finish, then the loops are
told to stop and are waited for.
"""

from keelwatch.service.loops import LOOPS, Loop, LoopContext, LoopRunner
from keelwatch.service.server import build_app, serve

__all__ = ["LOOPS", "Loop", "LoopContext", "LoopRunner", "build_app", "serve"]
