"""``keelwatch posture``: the fleet's risk by any grouping, its top exposures, the remediation plan."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from keelwatch.cli.context import app_context, stdout


class Format(StrEnum):
    table = "table"
    json = "json"


class _PostureGroup(TyperGroup):
    """``keelwatch posture [--by …]`` shows posture; ``posture snapshot`` and ``posture diff`` are commands."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def,unused-ignore]
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["show", *args]
        return super().parse_args(ctx, args)


posture_app = typer.Typer(cls=_PostureGroup, help="Posture of what runs, its history and the difference since a "
                          "date.\n\nThe views' options (--by, --top, --plan, --freshness, --format): "
                          "keelwatch posture show --help"
                          "\n\nExamples:\n\n  keelwatch posture --by namespace\n\n"
                          "  keelwatch posture snapshot\n\n  keelwatch posture diff --since 2026-12-01")


@posture_app.command("show", hidden=True)
def posture(
    ctx: typer.Context,
    by: str = typer.Option("workload", "--by", help="container, workload, namespace, cluster, environment, owner, "
                                                     "team, image, or label:KEY."),
    top: bool = typer.Option(False, "--top", help="The advisories reaching the most running containers."),
    plan: bool = typer.Option(False, "--plan", help="The remediation plan: which rebuild removes the most "
                                                    "critical findings from production."),
    fresh: bool = typer.Option(False, "--freshness", help="Age of every feed, inventory source and image scan."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """Posture of what runs: each container inherits its image digest's open, unsuppressed findings.

    Counts are distinct findings over a group's containers (replicas of one image count once).
    Containers whose digest is unknown or whose image is not scanned are "unknown posture", with
    the reason.

    Examples:

      keelwatch posture --by namespace

      keelwatch posture --by workload --format json | jq '.[0]'

      keelwatch posture --plan
    """
    from keelwatch.posture import compute

    try:
        with app_context(ctx).store.session(write=False) as session:
            if top or plan or fresh:
                fleet = compute.fleet(session)
                rows: Any = (compute.top_exposures(fleet) if top else compute.remediation_plan(fleet) if plan
                             else compute.freshness(fleet))
            else:
                rows = compute.posture_rows(session, by)  # SQL aggregates: fast on 100,000 containers
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--by") from None
    if format is Format.json:
        print(json.dumps(rows, indent=2))
        return
    if top:
        _table("top exposures", rows, ("advisory", "severity", "kev", "containers", "images", "workloads",
                                       "packages"))
    elif plan:
        for p in rows:
            p["bump"] = ", ".join(f"{x['name']} {x['installed']} → {'/'.join(x['fixed'])}" for x in p["packages"])
        _table("remediation plan", rows, ("image", "containers", "critical_fixable", "fixable",
                                          "removes_from_production", "bump", "owners"))
    elif fresh:
        stdout.print_json(json.dumps(rows))
    else:
        keys = [k for k in rows[0] if k not in _VALUES] if rows else []
        for r in rows:
            r.update(r.pop("counts"))
            r["unknown posture"] = r.pop("unknown_posture") or ""
        _table(f"posture by {by}", rows, (*keys, "containers", "critical", "high", "medium", "low", "unknown",
                                          "kev", "fixable", "risk", "unknown posture"))


_VALUES = {"containers", "images", "counts", "total", "kev", "fixable", "epss_over_threshold", "risk",
           "unknown_posture", "unknown_reasons", "oldest_scan", "scan_age_seconds"}


def _table(title: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(*(", ".join(map(str, v)) if isinstance(v, list) else str(v if v is not None else "")
                        for v in (r.get(c.replace(" ", "_"), r.get(c, "")) for c in columns)))
    table.caption = f"{len(rows)} rows"
    stdout.print(table)




def validate(
    ctx: typer.Context,
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """Run the validation checklist against the store; exit 0 only when every step passes.

    Steps: a scanned image with a known CVE; a workload running it; container posture equal to
    the image's findings; a rebuild that removed the CVE; a redeploy that improved posture;
    feeds, inventory and scans configured, owned and fresh.

    Example: keelwatch --config keelwatch.toml validate --format json
    """
    from keelwatch.posture.validate import validate as run

    app = app_context(ctx)
    with app.store.session(write=False) as session:
        steps = run(session, app.settings)
    if format is Format.json:
        print(json.dumps([s.as_dict() for s in steps], indent=2))
    else:
        style = {"pass": "green", "fail": "red", "skipped": "yellow"}
        for s in steps:
            stdout.print(f"[{style[s.status]}]{s.status:7}[/] {s.step}. {s.name}")
            for line in s.evidence:
                stdout.print(f"          {line}", highlight=False, markup=False)
    if any(s.status != "pass" for s in steps):
        raise typer.Exit(1)


@posture_app.command("snapshot")
def snapshot(ctx: typer.Context) -> None:
    """Store the posture of the fleet, each cluster, namespace, workload and owner now (the service does it
    daily and after every fleet change)."""
    from datetime import UTC, datetime

    from keelwatch.posture import compute, history

    with app_context(ctx).store.session() as session:
        n = history.snapshot(session, compute.fleet(session), now=datetime.now(UTC))
    stdout.print(f"posture snapshot: {n} rows", highlight=False)


@posture_app.command("diff")
def diff(
    ctx: typer.Context,
    since: str = typer.Option(..., "--since", metavar="DATE", help="Compare with the newest snapshot at or before "
                                                                   "this date or ISO time."),
    by: str = typer.Option("workload", "--by", help="fleet, cluster, namespace, workload or owner."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """How posture changed since a date: per row, counts then and now, improved / worse / new / gone.

    Example: keelwatch posture diff --since 2026-12-01 --by workload
    """
    from datetime import UTC, datetime, time

    from keelwatch.posture import compute, history

    try:
        moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{since!r} is not a date or ISO time", param_hint="--since") from None
    if len(since) == 10:
        moment = datetime.combine(moment.date(), time.max)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    with app_context(ctx).store.session(write=False) as session:
        try:
            result = history.diff(session, compute.fleet(session), by, moment)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--by") from None
    if format is Format.json:
        print(json.dumps(result, indent=2))
        return
    rows = [{"row": r["key"], "change": r["change"],
             **{s: f"{r['before'][s]} → {r['after'][s]}" for s in ("critical", "high", "medium", "low")},
             "risk": f"{r['risk_before']:.0f} → {r['risk_after']:.0f}"} for r in result["rows"]]
    _table(f"posture by {by} since {result['snapshot'] or 'the beginning (no snapshot that old)'}", rows,
           ("row", "change", "critical", "high", "medium", "low", "risk"))




class ReportFormat(StrEnum):
    json = "json"
    csv = "csv"
    html = "html"
    pdf = "pdf"
    sarif = "sarif"


def report(
    ctx: typer.Context,
    format: ReportFormat = typer.Option(ReportFormat.html, "--format", "-f", help="json, csv, html, pdf or sarif"),
    by: str = typer.Option("workload", "--by", help="The grouping of the posture table (as posture --by)."),
    output: str = typer.Option(None, "--output", "-o", metavar="FILE", help="Write here (a PDF needs a file or a "
                                                                            "pipe)."),
) -> None:
    """A posture report: for humans (HTML, PDF with charts) or machines (JSON, CSV, SARIF).

    Examples:

      keelwatch report --format pdf -o posture.pdf

      keelwatch report --format csv --by namespace > posture.csv
    """
    import sys

    from keelwatch.posture import compute, history
    from keelwatch.reports import posture_report as r

    with app_context(ctx).store.session(write=False) as session:
        fleet = compute.fleet(session)
        try:
            data = r.report_data(fleet, by, history.trend(session))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--by") from None
    content: str | bytes
    if format is ReportFormat.json:
        content = r.to_json(data)
    elif format is ReportFormat.csv:
        content = r.to_csv(data)
    elif format is ReportFormat.sarif:
        content = r.to_sarif(fleet)
    elif format is ReportFormat.html:
        content = r.to_html(data)
    else:
        content = r.to_pdf(data)
    if output:
        from pathlib import Path

        Path(output).write_bytes(content if isinstance(content, bytes) else content.encode())
        stdout.print(f"wrote {output}", highlight=False)
    elif isinstance(content, bytes):
        sys.stdout.buffer.write(content)
    else:
        sys.stdout.write(content if content.endswith("\n") else content + "\n")


def register(app: typer.Typer) -> None:
    app.add_typer(posture_app, name="posture")
    app.command("validate")(validate)
    app.command("report")(report)
