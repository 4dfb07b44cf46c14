"""``keelwatch agent`` (read /proc, write what changed) and ``keelwatch runtime ingest`` (sensor output → events).

Events go to stdout (or ``--output``) as JSON lines, one ``RuntimeEvent`` each; counts, skipped
lines and errors go to stderr. Sending to ``keelwatch serve`` comes with the service.
"""

from __future__ import annotations

import socket
import sys
import time
from enum import StrEnum
from pathlib import Path

import typer

from keelwatch.cli.context import stderr

runtime_app = typer.Typer(
    help="Runtime sensors: ingest Falco or Tetragon output as keelwatch events.\n\n"
    "Examples:\n\n"
    "  keelwatch runtime ingest --sensor falco /var/log/falco/events.json\n\n"
    "  kubectl logs -n kube-system ds/tetragon -c export-stdout | keelwatch runtime ingest --sensor tetragon -",
    no_args_is_help=True,
)

MAX_PROBLEMS_SHOWN = 10


class Sensor(StrEnum):
    falco = "falco"
    tetragon = "tetragon"
    agent = "agent"


@runtime_app.command("ingest", help="Parse a sensor's JSON lines (FILE, or - for stdin) and print them as "
                     "normalised events, one JSON object per line. Malformed lines are skipped and counted on stderr.")
def ingest(
    file: str = typer.Argument(..., metavar="FILE|-"),
    sensor: Sensor = typer.Option(..., "--sensor", "-s", help="Whose output FILE is."),
) -> None:
    from keelwatch.runtime import ReadStats, get, read_lines
    from keelwatch.runtime.agent import write_events

    source = get(sensor.value)
    stats = ReadStats()
    if file == "-":
        write_events(read_lines(source, sys.stdin.buffer, stats), sys.stdout)
    else:
        path = Path(file)
        try:
            handle = path.open("rb")
        except OSError as exc:
            stderr.print(f"error: cannot read {file}: {exc.strerror or exc}",
                         markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        with handle:
            write_events(read_lines(source, handle, stats), sys.stdout)
    for problem in stats.problems[:MAX_PROBLEMS_SHOWN]:
        stderr.print(f"line {problem.line}: {problem.reason}", markup=False, highlight=False, soft_wrap=True)
    if stats.skipped > MAX_PROBLEMS_SHOWN:
        stderr.print(f"… and {stats.skipped - MAX_PROBLEMS_SHOWN} more", markup=False, highlight=False, soft_wrap=True)
    stderr.print(f"{stats.events} event(s) from {stats.records} record(s); {stats.skipped} malformed line(s) skipped; "
                 f"{stats.ignored} record(s) with nothing to baseline", markup=False, highlight=False, soft_wrap=True)


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
