"""``keelwatch`` for the scale-out tests: the real root options, ``serve`` and ``worker`` (until
cli/__init__.py registers worker), plus test knobs read from the environment:

- ``KEELWATCH_TEST_LEASE_TTL`` (seconds): the default lease TTL, short so a takeover is seen quickly (the
  tests set ``[service] lease_ttl`` in their config, which takes precedence);
- ``KEELWATCH_TEST_SCAN_HOLD`` (seconds): after cataloging, wait this long before matching, so a
  test can kill the worker in the middle of a scan job;
- ``KEELWATCH_TEST_CATALOG_LOG`` (a file): append ``pid manifest-digest`` for every image actually
  cataloged (layers read), not reused from the store: the count of catalog runs;
- ``KEELWATCH_TEST_PROBE`` (a file): add a singleton loop ``probe`` (role snapshot) that appends
  ``pid start end`` to the file for every run of 0.3 s: which process ran it, and when.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from datetime import timedelta

import typer

from keelwatch.cli import serve, worker
from keelwatch.cli.context import AppContext, setup_logging, stderr
from keelwatch.errors import KeelwatchError


def _knobs() -> None:
    from keelwatch.service import loops
    from keelwatch.service import worker as service_worker

    if os.environ.get("KEELWATCH_TEST_LEASE_TTL"):
        loops.DEFAULT_LEASE_TTL = timedelta(seconds=float(os.environ["KEELWATCH_TEST_LEASE_TTL"]))
    if os.environ.get("KEELWATCH_TEST_CATALOG_LOG"):
        import keelwatch.pipeline

        catalog_log = os.environ["KEELWATCH_TEST_CATALOG_LOG"]
        real_catalog = keelwatch.pipeline.catalog_image

        def counted(opened, *args, **kwargs):  # type: ignore[no-untyped-def]
            with open(catalog_log, "a") as out:
                out.write(f"{os.getpid()} {opened.image.manifest_digest}\n")
            return real_catalog(opened, *args, **kwargs)

        keelwatch.pipeline.catalog_image = counted
    if os.environ.get("KEELWATCH_TEST_SCAN_HOLD"):
        import keelwatch.pipeline

        hold = float(os.environ["KEELWATCH_TEST_SCAN_HOLD"])
        real = keelwatch.pipeline.catalog_reference

        def held(*args, **kwargs):  # type: ignore[no-untyped-def]
            done = real(*args, **kwargs)
            print(f"cataloged {args[0]}; holding", file=sys.stderr, flush=True)
            time.sleep(hold)
            return done

        keelwatch.pipeline.catalog_reference = held
    if os.environ.get("KEELWATCH_TEST_PROBE"):
        path = os.environ["KEELWATCH_TEST_PROBE"]

        def probe(ctx: loops.LoopContext) -> None:
            start = time.time()
            time.sleep(0.3)
            with open(path, "a") as out:
                out.write(f"{os.getpid()} {start} {time.time()}\n")

        extra = (loops.Loop("probe", timedelta(seconds=0.1), probe, role="snapshot"),)
        service_worker.run_worker = functools.partial(service_worker.run_worker,  # type: ignore[assignment]
                                                      loops=loops.LOOPS + extra)


def build() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

    @app.callback()
    def root(ctx: typer.Context, config: str = typer.Option(None, "--config", "-c", metavar="FILE"),
             verbose: int = typer.Option(0, "--verbose", "-v", count=True),
             quiet: bool = typer.Option(False, "--quiet", "-q")) -> None:
        setup_logging(verbose, quiet)
        ctx.obj = AppContext(config_path=config, quiet=quiet)
        ctx.call_on_close(ctx.obj.close)

    serve.register(app)
    worker.register(app)
    return app


def main() -> None:
    _knobs()
    try:
        build()()
    except KeelwatchError as exc:
        stderr.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
