"""``keelwatch worker``: run the service's loops without the HTTP server."""

from __future__ import annotations

from enum import StrEnum

import typer

from keelwatch.cli.context import app_context, stderr


class Role(StrEnum):
    scan = "scan"
    sync = "sync"
    inventory = "inventory"
    deliver = "deliver"
    snapshot = "snapshot"
    all = "all"


def worker(
    ctx: typer.Context,
    role: list[Role] = typer.Option(None, "--role", "-r",
                                    help="Loops to run: scan, sync (feeds + re-match), inventory, deliver "
                                         "(alerts and digests), snapshot (posture history) or all; repeatable. "
                                         "Default: [service] roles, else all."),
    concurrency: int = typer.Option(1, "--concurrency", "-j", min=1, max=64,
                                    help="Scans this worker runs at once."),
    metrics_port: int = typer.Option(None, "--metrics-port", min=1, max=65535,
                                     help="Serve this worker's /metrics on this port (all interfaces)."),
) -> None:
    """Run the service loops, without the API, until SIGTERM or Ctrl-C (then stop gracefully).

    Any number of workers and `keelwatch serve --no-workers` processes on one PostgreSQL behave as
    one keelwatch: each scan and each alert is claimed by one worker, each feed sync and posture
    snapshot runs in one process at a time, and a worker that dies leaves its work to the others
    after the lease TTL (docs/scale-out.md).

    Examples:

      keelwatch --config /etc/keelwatch/config.toml worker --role scan --concurrency 2

      keelwatch worker --role sync --role inventory
    """
    from keelwatch.service.worker import run_worker

    app = app_context(ctx)
    roles = [r.value for r in role] if role else None
    store = app.store
    if not app.quiet:
        where = store.url.render_as_string(hide_password=True)
        stderr.print(f"keelwatch worker ({', '.join(roles or ['configured roles'])}, concurrency {concurrency}) "
                     f"on {where}; Ctrl-C or SIGTERM stops it", highlight=False)
    stopped = run_worker(store, app.settings, roles=roles, concurrency=concurrency, metrics_port=metrics_port)
    if not stopped and not app.quiet:
        stderr.print("some loops were still running after the grace period and were abandoned "
                     "(their leases expire; another worker redoes their work)", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
