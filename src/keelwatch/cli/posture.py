"""``keelwatch posture``: the fleet's risk by any grouping, its top exposures, the remediation plan."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import typer
from rich.table import Table

from keelwatch.cli.context import app_context, stdout


class Format(StrEnum):
    table = "table"
    json = "json"


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

    with app_context(ctx).store.session(write=False) as session:
        fleet = compute.fleet(session)
    try:
        if top:
            rows: Any = compute.top_exposures(fleet)
        elif plan:
            rows = compute.remediation_plan(fleet)
        elif fresh:
            rows = compute.freshness(fleet)
        else:
            rows = compute.group_by(fleet, by)
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


def register(app: typer.Typer) -> None:
    app.command("posture")(posture)
    app.command("validate")(validate)
