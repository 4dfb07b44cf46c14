"""``keelwatch vex import|list|revoke`` and ``keelwatch accept``: suppressions that stay queryable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from keelwatch.cli.context import app_context, stderr, stdout


class Format(StrEnum):
    table = "table"
    json = "json"


vex_app = typer.Typer(
    help="VEX statements (OpenVEX, CycloneDX VEX) and risk acceptances: findings they cover count as "
    "suppressed, and stay listed with suppressed: true.\n\n"
    "Examples:\n\n"
    "  keelwatch vex import app.openvex.json\n\n"
    "  keelwatch vex import app.vex.cdx.json --format json\n\n"
    "  keelwatch vex list\n\n"
    "  keelwatch vex revoke 3",
    no_args_is_help=True,
)


@vex_app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE", help="An OpenVEX or CycloneDX VEX JSON document."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """Import a VEX document; importing it again replaces what it said before.

    Statements with status not_affected or fixed suppress the findings they name (by CVE or
    advisory id, on the image by digest / pkg:oci purl / reference, or on a package purl).
    """
    from keelwatch.match.vex import import_vex

    report = import_vex(app_context(ctx).store, file)
    for problem in report.problems:
        stderr.print(f"[yellow]skipped:[/yellow] {problem}", highlight=False)
    if format is Format.json:
        print(json.dumps({"document": report.document, "format": report.format, "statements": report.statements,
                          "replaced": report.replaced, "problems": list(report.problems)}, indent=2))
    else:
        stdout.print(f"imported {report.statements} statements from {report.document} ({report.format})"
                     + (f", replacing {report.replaced}" if report.replaced else ""), highlight=False)


@vex_app.command("list")
def list_(
    ctx: typer.Context,
    all_: bool = typer.Option(False, "--all", help="Include expired and revoked acceptances."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """VEX statements and risk acceptances in the store."""
    from keelwatch.match import vex

    with app_context(ctx).store.session(write=False) as session:
        statements = [{"id": s.id, "document": s.document, "format": s.format, "vulnerability": s.vulnerability,
                       "product": s.product, "subcomponent": s.subcomponent, "status": s.status,
                       "justification": s.justification, "detail": s.detail,
                       "issued": s.issued.isoformat() if s.issued else None} for s in vex.list_statements(session)]
        acceptances = [{"id": a.id, "vulnerability": a.vulnerability, "image": a.image, "package": a.package,
                        "until": a.until.isoformat(), "reason": a.reason, "created_by": a.created_by,
                        "created_at": a.created_at.isoformat(),
                        "revoked_at": a.revoked_at.isoformat() if a.revoked_at else None}
                       for a in vex.list_acceptances(session, include_inactive=all_)]
    if format is Format.json:
        print(json.dumps({"statements": statements, "acceptances": acceptances}, indent=2))
        return
    table = Table(title="VEX statements", title_justify="left")
    for column in ("id", "vulnerability", "status", "product", "subcomponent", "justification", "document"):
        table.add_column(column, overflow="fold")
    for s in statements:
        table.add_row(str(s["id"]), s["vulnerability"], s["status"], s["product"], s["subcomponent"],
                      s["justification"], s["document"])
    stdout.print(table)
    table = Table(title="risk acceptances", title_justify="left")
    for column in ("id", "vulnerability", "image", "package", "until", "reason", "revoked"):
        table.add_column(column, overflow="fold")
    for a in acceptances:
        table.add_row(str(a["id"]), a["vulnerability"], a["image"], a["package"], a["until"][:10], a["reason"],
                      (a["revoked_at"] or "")[:10])
    stdout.print(table)


@vex_app.command("revoke")
def revoke(ctx: typer.Context, acceptance_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Revoke a risk acceptance now (it stays listed with --all)."""
    from keelwatch.errors import KeelwatchError
    from keelwatch.match.vex import revoke as run

    if not run(app_context(ctx).store, acceptance_id):
        raise KeelwatchError(f"no active risk acceptance has id {acceptance_id}", hint="keelwatch vex list")
    stdout.print(f"revoked risk acceptance {acceptance_id}", highlight=False)


def _until(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (2027-03-31) or ISO time", param_hint="--until") from None
    if len(value) == 10:  # a date: until the end of that day, UTC
        moment = datetime.combine(moment.date(), time.max, tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def accept(
    ctx: typer.Context,
    vulnerability: str = typer.Argument(..., metavar="CVE", help="A CVE or advisory id (aliases match too)."),
    image: str = typer.Option(..., "--image", metavar="IMAGE",
                              help="An image digest (sha256:…), a reference or name (registry.example/app), "
                                   "or '*' for every image."),
    until: str = typer.Option(..., "--until", metavar="DATE", help="Last day the acceptance holds (2027-03-31)."),
    reason: str = typer.Option(..., "--reason", help="Why the risk is accepted (kept with the finding)."),
    package: str = typer.Option("", "--package", help="Only for this package name."),
    by: str = typer.Option("", "--by", envvar="USER", help="Who accepts (default: $USER)."),
) -> None:
    """Accept the risk of a vulnerability on an image until a date: its findings count as suppressed.

    Example: keelwatch accept CVE-2023-32681 --image registry.example/shop --until 2027-01-31 \\
    --reason "requests is only used against our own API"
    """
    from keelwatch.match.vex import accept as run

    acceptance_id = run(app_context(ctx).store, vulnerability, image=image, until=_until(until), reason=reason,
                        package=package, created_by=by)
    stdout.print(f"risk acceptance {acceptance_id}: {vulnerability} on {image} until {until}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(vex_app, name="vex")
    app.command("accept")(accept)
