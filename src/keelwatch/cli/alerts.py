"""``keelwatch alerts list|show|ack|resolve|raise|deliver|digest|retry`` and ``keelwatch sla``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import typer
from rich.table import Table

from keelwatch.cli.context import app_context, stderr, stdout
from keelwatch.errors import KeelwatchError


class Format(StrEnum):
    table = "table"
    json = "json"


alerts_app = typer.Typer(
    help="Alerts: one per advisory and image, for findings on running containers, with SLA deadlines.\n\n"
    "Examples:\n\n"
    "  keelwatch alerts raise && keelwatch alerts deliver     (what db update and serve do)\n\n"
    "  keelwatch alerts list --state open --format json\n\n"
    "  keelwatch alerts ack 3f2a… --by alice\n\n"
    "  keelwatch sla",
    no_args_is_help=True,
)


def _alert_json(a: Any) -> dict[str, Any]:
    return {"id": a.id, "advisory": a.advisory, "advisory_ids": a.advisory_ids, "aliases": a.aliases,
            "image_digest": a.image_digest, "severity": a.severity, "finding_severity": a.finding_severity,
            "kev": a.kev, "notify": a.notify, "state": a.state, "version": a.version,
            "due": a.due.isoformat() if a.due else None, "first_raised": a.first_raised.isoformat(),
            "updated": a.updated.isoformat(), "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
            "acknowledged_by": a.acknowledged_by or None,
            "containers": a.body.get("containers", []), "owners": a.body.get("owners", []),
            "fixed_versions": a.body.get("fixed_versions", []), "remediation": a.body.get("remediation", "")}


@alerts_app.command("list")
def list_(
    ctx: typer.Context,
    state: list[str] = typer.Option(None, "--state", help="open, acknowledged, resolved (repeatable; default: "
                                                          "open and acknowledged)."),
    severity: str = typer.Option(None, "--severity", help="Only this severity."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """Alerts, most urgent first (severity, then due date)."""
    from keelwatch.alerts.policy import rank
    from keelwatch.store import alerts as stored

    with app_context(ctx).store.session(write=False) as session:
        rows = list(stored.load_alerts(session, states=set(state or ("open", "acknowledged"))).values())
        rows = [r for r in rows if severity is None or r.severity == severity]
        rows.sort(key=lambda a: (-rank(a.severity), a.due or datetime.max.replace(tzinfo=UTC), a.id))
        out = [_alert_json(a) for a in rows]
    if format is Format.json:
        print(json.dumps(out, indent=2))
        return
    table = Table(title="alerts", title_justify="left")
    for column in ("id", "severity", "advisory", "image", "containers", "owners", "due", "state"):
        table.add_column(column, overflow="fold")
    for a in out:
        table.add_row(a["id"][:12], a["severity"] + (" KEV" if a["kev"] else ""), a["advisory"],
                      a["image_digest"][:19], str(len(a["containers"])), ", ".join(a["owners"]),
                      (a["due"] or "")[:16], a["state"])
    table.caption = f"{len(out)} alerts"
    stdout.print(table)


def _find(session: Any, prefix: str) -> Any:
    from keelwatch.store.tables import AlertRow

    matches = [a for a in session.query(AlertRow).filter(AlertRow.id.startswith(prefix)).limit(2)]
    if not matches:
        raise KeelwatchError(f"no alert id starts with {prefix!r}", hint="keelwatch alerts list")
    if len(matches) > 1:
        raise KeelwatchError(f"{prefix!r} names more than one alert: give more of the id")
    return matches[0]


@alerts_app.command("show")
def show(ctx: typer.Context, alert_id: str = typer.Argument(..., metavar="ID"),
         format: Format = typer.Option(Format.json, "--format", "-f", help="json or table")) -> None:
    """One alert with what it says and every delivery of it (channel, attempts, errors)."""
    from keelwatch.store import alerts as stored

    with app_context(ctx).store.session(write=False) as session:
        alert = _find(session, alert_id)
        outbox = stored.outbox_for(session, alert.id)
        attempts = stored.attempts_for(session, [o.id for o in outbox])
        doc = {**_alert_json(alert), "body": alert.body, "deliveries": [
            {"channel": o.channel, "event": o.event, "idempotency_key": o.idempotency_key,
             "delivered_at": o.delivered_at.isoformat() if o.delivered_at else None,
             "failed_at": o.failed_at.isoformat() if o.failed_at else None, "attempts": o.attempts,
             "last_error": o.last_error or None,
             "log": [{"time": t.time.isoformat(), "ok": t.ok, "detail": t.detail, "sender": t.sender}
                     for t in attempts if t.outbox_id == o.id]} for o in outbox]}
    print(json.dumps(doc, indent=2))


@alerts_app.command("ack")
def ack(ctx: typer.Context, alert_id: str = typer.Argument(..., metavar="ID"),
        by: str = typer.Option("", "--by", envvar="USER", help="Who acknowledges (default: $USER).")) -> None:
    """Acknowledge an alert: someone is on it (it stays open until its findings are gone)."""
    with app_context(ctx).store.session() as session:
        alert = _find(session, alert_id)
        if alert.state == "resolved":
            raise KeelwatchError(f"alert {alert.id[:12]} is resolved already")
        alert.state, alert.acknowledged_by, alert.acknowledged_at = "acknowledged", by, datetime.now(UTC)
    stdout.print(f"acknowledged {alert_id}", highlight=False)


@alerts_app.command("resolve")
def resolve(ctx: typer.Context, alert_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Mark an alert resolved (e.g. its ticket is closed).

    An alert whose findings are still present on a running image opens again at the next raise:
    to silence a finding that does not matter, import a VEX statement or accept the risk.
    """
    with app_context(ctx).store.session() as session:
        alert = _find(session, alert_id)
        alert.state, alert.resolved_at = "resolved", datetime.now(UTC)
    stdout.print(f"resolved {alert_id}", highlight=False)


@alerts_app.command("raise")
def raise_(ctx: typer.Context, format: Format = typer.Option(Format.table, "--format", "-f")) -> None:
    """Bring alerts in line with findings, suppressions and the inventory; queue the messages."""
    from keelwatch.alerts.engine import raise_alerts

    app = app_context(ctx)
    report = raise_alerts(app.store, app.settings.alerts)
    if format is Format.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        stdout.print(", ".join(f"{k} {v}" for k, v in report.as_dict().items()), highlight=False)


@alerts_app.command("deliver")
def deliver(ctx: typer.Context, format: Format = typer.Option(Format.table, "--format", "-f")) -> None:
    """Send everything the outbox holds that is due, in one pass (for cron and tests).

    Exits 1 when some message could not be delivered (it stays queued and is retried later).
    """
    from keelwatch.alerts.outbox import deliver as run

    app = app_context(ctx)
    report = run(app.store, app.settings.alerts)
    if format is Format.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        stdout.print(f"delivered {report.delivered}, failed {report.failed} (will retry), parked {report.parked}",
                     highlight=False)
    for error in report.errors[:10]:
        stderr.print(f"[yellow]delivery failed:[/yellow] {error}", highlight=False)
    if report.failed or report.parked or report.unknown_channel:
        raise typer.Exit(1)


@alerts_app.command("digest")
def digest(ctx: typer.Context) -> None:
    """Queue one digest per channel with the open Medium/Low ("digest") alerts not sent in one yet."""
    from keelwatch.alerts.outbox import make_digests

    app = app_context(ctx)
    stdout.print(f"queued {make_digests(app.store, app.settings.alerts)} digest message(s)", highlight=False)


@alerts_app.command("retry")
def retry(ctx: typer.Context) -> None:
    """Give messages parked after too many failures another round (after fixing a channel)."""
    from keelwatch.store import alerts as stored

    with app_context(ctx).store.session() as session:
        n = stored.retry_failed(session, now=datetime.now(UTC))
    stdout.print(f"{n} message(s) queued again", highlight=False)


def sla(
    ctx: typer.Context,
    soon: str = typer.Option("7d", "--soon", help="What counts as due soon (e.g. 72h, 7d)."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """Remediation deadlines by owner: open alerts, due soon, breached.

    Example: keelwatch sla --soon 72h --format json
    """
    from keelwatch.alerts.sla import parse_soon, sla_by_owner
    from keelwatch.store import alerts as stored

    try:
        horizon = parse_soon(soon)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--soon") from None
    with app_context(ctx).store.session(write=False) as session:
        alerts = list(stored.load_alerts(session, states={"open", "acknowledged"}).values())
    rows = sla_by_owner(alerts, horizon, datetime.now(UTC))["items"]
    if format is Format.json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"SLA (due soon: within {soon})", title_justify="left")
    for column in ("owner", "open", "due soon", "breached", "next due"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["owner"], str(r["open"]), str(r["due_soon"]), f"[red]{r['breached']}[/]" if r["breached"]
                      else "0", (r["next_due"] or "")[:16])
    stdout.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
    app.command("sla")(sla)
