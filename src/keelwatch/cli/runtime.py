"""``keelwatch agent`` (read /proc, write what changed) and ``keelwatch runtime …``.

``runtime ingest`` stores sensor events (attribution, baselines, deviations, alerts; ``--dry-run``
prints the normalised events instead); ``runtime baselines|deviations|accept|verify|attribute|layers``
read and act on what was stored. The agent writes JSON lines, one ``RuntimeEvent`` each; counts,
skipped lines and errors go to stderr. Sending to ``keelwatch serve`` comes with the service.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import IO

import typer
from rich.table import Table

from keelwatch.cli.context import app_context, stderr, stdout

runtime_app = typer.Typer(
    help="Runtime verification: ingest Falco, Tetragon or agent events into behavioural baselines, list "
    "deviations, verify what ran against the image's SBOM.\n\n"
    "Examples:\n\n"
    "  keelwatch runtime ingest --sensor falco /var/log/falco/events.json\n\n"
    "  kubectl logs -n kube-system ds/tetragon -c export-stdout | keelwatch runtime ingest --sensor tetragon -\n\n"
    "  keelwatch runtime deviations --since 24h --format json\n\n"
    "  keelwatch runtime verify --format json",
    no_args_is_help=True,
)

MAX_PROBLEMS_SHOWN = 10


class Sensor(StrEnum):
    falco = "falco"
    tetragon = "tetragon"
    agent = "agent"


class Format(StrEnum):
    table = "table"
    json = "json"


def _say(text: str) -> None:
    stderr.print(text, markup=False, highlight=False, soft_wrap=True)


@runtime_app.command("ingest", help="Read a sensor's JSON lines (FILE, or - for stdin): attribute each event to an "
                     "inventory container, learn and check its baseline, store deviations and queue their alerts. "
                     "--dry-run prints the normalised events instead, one JSON object per line. Malformed lines are "
                     "skipped and counted on stderr.")
def ingest(
    ctx: typer.Context,
    file: str = typer.Argument(..., metavar="FILE|-"),
    sensor: Sensor = typer.Option(..., "--sensor", "-s", help="Whose output FILE is."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only parse: print the events, store nothing."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="How to print the summary (json: stdout)."),
) -> None:
    from keelwatch.runtime import ReadStats, get, read_lines
    from keelwatch.runtime.agent import write_events

    source = get(sensor.value)
    stats = ReadStats()
    with contextlib.ExitStack() as stack:
        if file == "-":
            handle: IO[bytes] = sys.stdin.buffer
        else:
            try:
                handle = stack.enter_context(Path(file).open("rb"))
            except OSError as exc:
                _say(f"error: cannot read {file}: {exc.strerror or exc}")
                raise typer.Exit(2) from None
        report = None
        events = read_lines(source, handle, stats)
        if dry_run:
            write_events(events, sys.stdout)
        else:
            from keelwatch.runtime.ingest import Ingestor

            context = app_context(ctx)
            report = Ingestor(context.store, context.settings).ingest(events)
    for problem in stats.problems[:MAX_PROBLEMS_SHOWN]:
        _say(f"line {problem.line}: {problem.reason}")
    if stats.skipped > MAX_PROBLEMS_SHOWN:
        _say(f"… and {stats.skipped - MAX_PROBLEMS_SHOWN} more")
    _say(f"{stats.events} event(s) from {stats.records} record(s); {stats.skipped} malformed line(s) skipped; "
         f"{stats.ignored} record(s) with nothing to baseline")
    if report is not None:
        if format is Format.json:
            print(json.dumps({**report.as_dict(), "records": stats.records, "malformed": stats.skipped}, indent=2))
        else:
            r = report.as_dict()
            _say(f"{r['attributed']} attributed to {r['baselines']} baseline(s), {r['host']} on hosts, "
                 f"{r['unattributed']} kept unattributed ({r['still_unattributed']} waiting, "
                 f"{r['unattributed_dropped']} dropped), {r['attributed_later']} attributed from earlier; "
                 f"{r['deviations_opened']} new deviation(s), {r['deviations_repeated']} repeat(s); "
                 f"{r['alerts_queued']} alert message(s) queued")


@runtime_app.command("attribute")
def attribute(ctx: typer.Context) -> None:
    """Attribute kept events to containers the inventory now knows (run after an inventory sync)."""
    from keelwatch.runtime.ingest import Ingestor

    context = app_context(ctx)
    report = Ingestor(context.store, context.settings).attribute_pending()
    with context.store.session(write=False) as session:
        from keelwatch.store.runtime import count_unattributed

        waiting = count_unattributed(session)
    _say(f"{report.attributed_later} event(s) attributed, {waiting} still unattributed; "
         f"{report.deviations_opened} new deviation(s), {report.alerts_queued} alert message(s) queued")


def _parse_since(text: str) -> datetime:
    from keelwatch.runtime.events import parse_time

    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if match:
        seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return datetime.now(UTC) - timedelta(seconds=seconds)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)
        return parse_time(text)
    except ValueError:
        raise typer.BadParameter(f"not a date, time or duration: {text!r} (e.g. 2024-05-02, 24h, 7d)") from None


@runtime_app.command("baselines")
def baselines(
    ctx: typer.Context,
    workload: str = typer.Option(None, "--workload", "-w", help="Only this workload's baselines."),
    namespace: str = typer.Option(None, "--namespace", "-n", help="Only this namespace."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """Behavioural baselines: per (cluster, namespace, workload, container, image digest), learning or frozen."""
    from keelwatch.store.runtime import list_baselines

    with app_context(ctx).store.session(write=False) as session:
        out = [dict(row.state) for row in list_baselines(session, workload=workload, namespace=namespace)]
    if format is Format.json:
        print(json.dumps(out, indent=2))
        return
    table = Table(title="runtime baselines", title_justify="left")
    for column in ("namespace", "workload", "container", "image", "state", "events", "execs", "peers",
                   "listeners"):
        table.add_column(column, overflow="fold")
    for b in out:
        table.add_row(b["namespace"], b["workload"], b["container"], b["image_digest"][:19], b["state"],
                      str(b["events_seen"]), str(len(b["execs"])), str(len(b["peers"])), str(len(b["listeners"])))
    table.caption = f"{len(out)} baselines"
    stdout.print(table)


@runtime_app.command("deviations")
def deviations(
    ctx: typer.Context,
    since: str = typer.Option(None, "--since", help="Only those seen since: a date or time (2024-05-02, "
                                                    "2024-05-02T10:00Z) or a duration back from now (24h, 7d)."),
    workload: str = typer.Option(None, "--workload", "-w", help="Only this workload's."),
    all_: bool = typer.Option(False, "--all", help="Also the accepted ones."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """Events outside their frozen baseline, one per workload, kind and detail, counted; most recent first."""
    from keelwatch.store.runtime import deviation_json, list_deviations

    when = _parse_since(since) if since else None
    with app_context(ctx).store.session(write=False) as session:
        out = [deviation_json(r) for r in list_deviations(session, since=when, include_accepted=all_,
                                                          workload=workload)]
    if format is Format.json:
        print(json.dumps(out, indent=2))
        return
    table = Table(title="runtime deviations", title_justify="left")
    for column in ("id", "severity", "kind", "workload", "container", "detail", "count", "last seen"):
        table.add_column(column, overflow="fold")
    for d in out:
        table.add_row(d["id"][:12], d["severity"], d["kind"], f"{d['namespace']}/{d['workload']}", d["container"],
                      d["detail"], str(d["count"]),
                      (d["last_seen"] or "")[:19] + (" accepted" if d["accepted"] else ""))
    table.caption = f"{len(out)} deviations"
    stdout.print(table)


@runtime_app.command("accept")
def accept(
    ctx: typer.Context,
    deviation_id: str = typer.Argument(..., metavar="DEVIATION_ID", help="The id, or a unique prefix of it."),
    by: str = typer.Option("", "--by", help="Who accepted it (recorded)."),
) -> None:
    """Accept a deviation into its baseline: what it showed is normal for that workload from now on."""
    from keelwatch.errors import KeelwatchError
    from keelwatch.runtime.ingest import accept as accept_deviation

    context = app_context(ctx)
    try:
        d = accept_deviation(context.store, context.settings, deviation_id, by=by)
    except KeelwatchError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from None
    _say(f"accepted {d['id']}: {d['kind']} {d['detail']} ({d['namespace']}/{d['workload']} {d['container']})")


@runtime_app.command("verify")
def verify(
    ctx: typer.Context,
    workload: str = typer.Option(None, "--workload", "-w", help="Only this workload's containers."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """Runtime SBOM verification: per container, the packages whose code ran, unpackaged code, and drift
    (code run or loaded that is not in the image)."""
    from keelwatch.runtime.inuse import verify_containers

    with app_context(ctx).store.session(write=False) as session:
        out = verify_containers(session, workload=workload)
    if format is Format.json:
        print(json.dumps(out, indent=2))
        return
    table = Table(title="runtime verification", title_justify="left")
    for column in ("namespace", "workload", "pod", "container", "in use", "unpackaged", "drift", "unowned"):
        table.add_column(column, overflow="fold")
    for c in out:
        table.add_row(c["namespace"], c["workload"], c["pod"], c["container"],
                      ", ".join(p["name"] for p in c["in_use_packages"]), "\n".join(c["unpackaged"]),
                      "\n".join(d["path"] for d in c["drift"]), "\n".join(c["unowned"]))
    table.caption = f"{len(out)} containers"
    stdout.print(table)


@runtime_app.command("layers")
def layers(
    ctx: typer.Context,
    reference: str = typer.Argument(..., metavar="IMAGE", help="As keelwatch scan takes it (oci-archive:…, "
                                                               "registry:…, docker-daemon:…)."),
) -> None:
    """Keep the list of every file in an image's layers: verification then tells unpackaged code from drift."""
    from keelwatch.runtime.inuse import record_image_files

    digest = record_image_files(app_context(ctx).store, reference)
    _say(f"listed the files of {digest}")


def agent(
    proc_root: Path = typer.Option(Path("/proc"), "--proc-root", metavar="DIR",
                                   help="The /proc to read (a host's /proc mounted into the agent's container)."),
    output: Path = typer.Option(None, "--output", "-o", metavar="FILE",
                                help="Append events to FILE as JSON lines (default: stdout)."),
    interval: float = typer.Option(10.0, "--interval", min=0.1, metavar="SECONDS", help="Seconds between samples."),
    once: bool = typer.Option(False, "--once", help="Take one sample (everything running now) and exit."),
    server: str = typer.Option(None, "--server", metavar="URL", help="Send batches to keelwatch serve (not yet)."),
    token: str = typer.Option(None, "--token", metavar="T", envvar="KEELWATCH_AGENT_TOKEN",
                              help="Token with the operator role, for --server."),
    node: str = typer.Option(None, "--node", help="Node name put on every event (default: this host's name)."),
) -> None:
    """Read processes from /proc: executables, loaded libraries, jars and scripts, peers and listeners.

    Each sample reports only what changed since the one before, as JSON lines.
    """
    from keelwatch.runtime.agent import ProcReader, Sampler, write_events

    if server or token:
        stderr.print("error: --server/--token are not available yet: sending events needs keelwatch serve "
                     "(use --output FILE or stdout for now)", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    if not proc_root.is_dir():
        stderr.print(f"error: {proc_root} is not a directory", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    reader = ProcReader(str(proc_root))
    sampler = Sampler(reader, node=node or socket.gethostname())
    out = output.open("a", encoding="utf-8") if output else sys.stdout
    total = 0
    try:
        while True:
            total += write_events(sampler.sample(), out)
            if once:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        if output:
            out.close()
    stats = reader.stats
    stderr.print(f"{total} event(s); {stats.processes} process reading(s), {stats.vanished} vanished while read, "
                 f"{stats.partial} partly readable", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("agent")(agent)
    app.add_typer(runtime_app, name="runtime")
