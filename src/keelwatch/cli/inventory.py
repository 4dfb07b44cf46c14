"""``keelwatch inventory``: sync the configured sources once, follow them, list what runs."""

from __future__ import annotations

import json
import signal
import threading
from enum import StrEnum
from typing import Any

import typer
from rich import box
from rich.table import Table

from keelwatch.cli.context import app_context, stderr, stdout

inventory_app = typer.Typer(
    help="The running inventory: which containers run where, from which image digest.\n\n"
    "Examples:\n\n"
    "  keelwatch --config keelwatch.toml inventory sync\n\n"
    "  keelwatch inventory sync --source prod-eu\n\n"
    "  keelwatch inventory watch\n\n"
    "  keelwatch inventory list --namespace shop --format json\n\n"
    "  keelwatch inventory list --image nginx --unresolved",
    no_args_is_help=True,
)


class Format(StrEnum):
    table = "table"
    json = "json"


def _engine(ctx: typer.Context) -> Any:
    from keelwatch.inventory.sync import InventorySync

    app = app_context(ctx)
    return InventorySync(app.store, app.settings)


def _report_line(report: Any) -> str:
    c = report.counts
    text = (f"{report.source}: {report.status}, {report.containers} containers ({c.added} new, {c.changed} changed, "
            f"{c.ended} ended), {report.unresolved} unresolved, {len(report.problems)} problems")
    return f"{text}: {report.error}" if report.error else text


@inventory_app.command("sync")
def sync(
    ctx: typer.Context,
    source: list[str] = typer.Option(None, "--source", "-s", metavar="NAME",
                                     help="Only this configured source (repeatable). Default: all."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="Report format on stdout."),
    no_alerts: bool = typer.Option(False, "--no-alerts", help="Do not raise alerts for what now runs."),
) -> None:
    """Take one snapshot of each source and store it; exit 1 if any source failed.

    Then alerts are raised for vulnerable images that started running (and resolved for those
    that stopped), unless --no-alerts; `keelwatch alerts deliver` sends them.
    """
    engine = _engine(ctx)
    try:
        names = engine.sources(source)
        if not names:
            stderr.print("no [[inventory.sources]] configured", highlight=False)
            raise typer.Exit(2)
        reports = [engine.sync_source(s) for s in names]
    finally:
        engine.close()
    if format is Format.json:
        print(json.dumps([{"source": r.source, "kind": r.kind, "status": r.status, "error": r.error,
                           "containers": r.containers, "added": r.counts.added, "changed": r.counts.changed,
                           "ended": r.counts.ended, "unresolved": r.unresolved,
                           "problems": [{"where": p.where, "message": p.message} for p in r.problems],
                           "duration": round(r.duration, 3)} for r in reports], indent=2))
    else:
        for r in reports:
            for p in r.problems[:20]:
                stderr.print(f"[yellow]{r.source}[/]: {p.where}: {p.message}", highlight=False)
            stdout.print(_report_line(r), highlight=False, markup=False)
    if not no_alerts:
        from keelwatch.alerts.engine import raise_alerts

        app = app_context(ctx)
        raised = raise_alerts(app.store, app.settings.alerts)
        if not app.quiet:
            stderr.print(f"alerts: {raised.opened} opened, {raised.reopened} reopened, {raised.resolved} resolved, "
                         f"{raised.queued} messages queued", highlight=False)
    if any(r.status == "failed" for r in reports):
        raise typer.Exit(1)


@inventory_app.command("watch")
def watch(
    ctx: typer.Context,
    source: list[str] = typer.Option(None, "--source", "-s", metavar="NAME", help="Only this source (repeatable)."),
) -> None:
    """Follow the sources until interrupted: Kubernetes by its watch, the others by polling."""
    engine = _engine(ctx)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def report(r: Any) -> None:
        if not app_context(ctx).quiet:
            stderr.print(_report_line(r), highlight=False, markup=False)

    try:
        engine.watch(source or None, stop=stop.is_set, on_report=report)
    except KeyboardInterrupt:
        stop.set()
    finally:
        engine.close()


@inventory_app.command("list")
def list_(
    ctx: typer.Context,
    namespace: str = typer.Option(None, "--namespace", "-n", help="Only this namespace."),
    image: str = typer.Option(None, "--image", "-i",
                              help="Only this image: nginx (every tag), nginx:1.27, or a digest."),
    unresolved: bool = typer.Option(False, "--unresolved",
                                    help="Only containers whose digest is unknown or unverified."),
    source: str = typer.Option(None, "--source", "-s", metavar="NAME", help="Only this source."),
    ended: bool = typer.Option(False, "--ended", help="Include containers that are gone (history)."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
) -> None:
    """The containers in the inventory, live ones unless --ended."""
    from keelwatch.inventory.sync import dumps, list_inventory

    rows = list_inventory(app_context(ctx).store, namespace=namespace, image=image, unresolved=unresolved,
                          source=source, include_ended=ended)
    if format is Format.json:
        print(dumps(rows))
        return
    table = Table(box=box.SIMPLE, pad_edge=False)
    for column in ("cluster", "namespace", "workload", "pod", "container", "image", "digest", "platform", "state"):
        table.add_column(column, no_wrap=column != "image", overflow="fold")
    for r in rows:
        v = r.values
        digest = v.digest[:19] if v.digest else f"[red]{v.resolution_error or 'unresolved'}[/]"
        if r.drift:
            digest += " [yellow](tag moved)[/]"
        container = v.container if v.container_type == "container" else f"{v.container} ({v.container_type})"
        table.add_row(v.cluster, v.namespace, f"{v.workload_kind}/{v.workload}", v.pod, container, v.image, digest,
                      v.platform or "", v.state)
    stdout.print(table)
    stderr.print(f"{len(rows)} containers", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(inventory_app, name="inventory")
