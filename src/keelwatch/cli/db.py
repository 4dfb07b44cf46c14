"""``keelwatch db``: sync the advisory feeds, see their state and changes, move the data across an air gap."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.table import Table

from keelwatch.cli.context import app_context, stderr, stdout
from keelwatch.errors import ConfigError

db_app = typer.Typer(
    help="The vulnerability knowledge base: sync feeds, show their state and what changed, export/import.\n\n"
    "Examples:\n\n"
    "  keelwatch --config keelwatch.toml db update\n\n"
    "  keelwatch db update --feed osv-pypi --feed kev\n\n"
    "  keelwatch db status --format json\n\n"
    "  keelwatch db changes --since 41 --format json\n\n"
    "  keelwatch db changes --since 2026-11-01T00:00:00Z\n\n"
    "  keelwatch db export kb.zip   (then, on the air-gapped side: keelwatch db import kb.zip)",
    no_args_is_help=True,
)


class Format(StrEnum):
    table = "table"
    json = "json"


# --- formatting ------------------------------------------------------------------------------------------


def _age(delta: timedelta | None) -> str:
    if delta is None:
        return "never"
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else ""


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _report_json(r: Any) -> dict[str, Any]:
    return {"feed": r.feed, "kind": r.kind, "status": r.status, "sync": r.sync_id, "added": r.added,
            "changed": r.changed, "withdrawn": r.withdrawn, "deleted": r.deleted, "unchanged": r.unchanged,
            "exploitability": r.exploitability, "problems": r.problems, "error": r.error,
            "duration": round(r.duration, 3)}


def _print_reports(reports: list[Any], format: Format, title: str) -> None:
    if format is Format.json:
        print(json.dumps([_report_json(r) for r in reports], indent=2))
        return
    # Narrow enough for an 80-column pipe: names are never cut, numbers need little room.
    table = Table(title=title, title_justify="left", box=box.SIMPLE, pad_edge=False)
    for column in ("feed", "status", "added", "changed", "withdrawn", "deleted", "problems", "time"):
        table.add_column(column, justify="left" if column in ("feed", "status") else "right", no_wrap=True,
                         overflow="fold" if column == "feed" else "ellipsis")
    styles = {"failed": "red", "busy": "yellow"}
    for r in reports:
        status = f"[{styles[r.status]}]{r.status}[/]" if r.status in styles else r.status
        table.add_row(r.feed, status, str(r.added), str(r.changed), str(r.withdrawn), str(r.deleted),
                      str(r.problems), f"{r.duration:.1f}s")
    stdout.print(table)


def _fail_on_failures(reports: list[Any]) -> None:
    """One line per failed feed on stderr, then a non-zero exit; a busy feed is only noted."""
    for r in reports:
        if r.status == "busy":
            stderr.print(f"[yellow]note:[/yellow] feed {r.feed}: {r.error}", highlight=False, soft_wrap=True)
    failed = [r for r in reports if r.failed]
    for r in failed:
        stderr.print(f"[red]error:[/red] feed {r.feed}: {r.error}", markup=True, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


# --- commands --------------------------------------------------------------------------------------------


@db_app.command("update")
def update(
    ctx: typer.Context,
    feed: list[str] = typer.Option(None, "--feed", metavar="NAME",
                                   help="Sync only this feed (repeatable). Default: every [[feeds]] table."),
    force: bool = typer.Option(False, "--force", help="Fetch everything again, ignoring the stored fingerprints."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="Result as a table or JSON."),
    no_rematch: bool = typer.Option(False, "--no-rematch", help="Do not re-match stored findings afterwards "
                                                                "(keelwatch rematch does it later)."),
) -> None:
    """Sync the configured feeds: each one atomically, every change journaled.

    Then the stored findings of every scanned image are re-matched against what changed and the
    alerts raised (a summary line on stderr), unless --no-rematch.

    Progress goes to stderr, the result table to stdout. Exits 1 when a feed failed (one line
    each on stderr); the other feeds are still synced, and a failed feed keeps its previous data.

    Example: keelwatch --config keelwatch.toml db update --feed osv-pypi
    """
    from keelwatch.sync import sync_all

    context = app_context(ctx)
    settings = context.settings
    if not settings.feeds:
        where = settings.source or "the configuration (no config file found)"
        raise ConfigError(f"no feeds are configured in {where}",
                          hint='add [[feeds]] tables: name = "osv-pypi", kind = "osv", url = "https://…/PyPI/all.zip"')

    def progress(name: str, phase: str) -> None:
        if not context.quiet and phase != "done":
            stderr.print(f"[dim]{name}: {phase}…[/dim]", highlight=False)

    reports = sync_all(context.store, settings, names=feed or None, force=force, progress=progress)
    _print_reports(reports, format, "feed sync")
    if not no_rematch:
        from keelwatch.alerts.engine import AlertReport, raise_alerts_in
        from keelwatch.match.rematch import rematch

        raised = AlertReport()

        def alerts(session: Any, _: Any) -> None:  # in the re-match's transaction
            nonlocal raised
            raised = raise_alerts_in(session, settings.alerts)

        done = rematch(context.store, then=alerts)
        if not context.quiet:
            stderr.print(f"re-match: {done.journal_entries} changes, {done.images_considered} images considered, "
                         f"{done.opened} findings opened, {done.closed} closed, {done.changed} changed "
                         f"({done.seconds:.2f}s); alerts: {raised.opened} opened, {raised.updated} updated, "
                         f"{raised.resolved} resolved, {raised.queued} messages queued (keelwatch alerts deliver)",
                         highlight=False)
    _fail_on_failures(reports)


@db_app.command("status")
def status(
    ctx: typer.Context,
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """Each feed's last success and its age, what it holds, and its last error.

    Feeds configured but never synced are listed too, as "never".

    Example: keelwatch db status --format json | jq '.[] | select(.status != "ok")'
    """
    context = app_context(ctx)
    now = datetime.now(UTC)
    stored = {s.name: s for s in context.store.feed_status()}
    rows: list[dict[str, Any]] = []
    for name in sorted(stored.keys() | {f.name for f in context.settings.feeds}):
        s = stored.get(name)
        configured = next((f for f in context.settings.feeds if f.name == name), None)
        if s is None:
            assert configured is not None
            rows.append({"name": name, "kind": configured.kind, "url": configured.url, "status": "never",
                         "last_success": None, "last_attempt": None, "age_seconds": None, "advisories": 0,
                         "withdrawn": 0, "exploitability": 0, "problems": 0, "error": "", "last_sync": None,
                         "configured": True})
            continue
        age = s.age(now)
        rows.append({"name": name, "kind": s.kind, "url": s.url, "status": s.status,
                     "last_success": _iso(s.last_success), "last_attempt": _iso(s.last_attempt),
                     "age_seconds": None if age is None else int(age.total_seconds()), "advisories": s.advisories,
                     "withdrawn": s.withdrawn, "exploitability": s.exploitability, "problems": s.problems,
                     "error": s.error, "last_sync": s.last_sync, "configured": configured is not None})
    if format is Format.json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="feeds", title_justify="left", box=box.SIMPLE)
    for column in ("feed", "status", "last success", "age", "holds", "last error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        status_text = {"failed": "[red]failed[/]", "never": "[yellow]never[/]"}.get(row["status"], row["status"])
        age_text = _age(None if row["age_seconds"] is None else timedelta(seconds=row["age_seconds"]))
        holds = [f"{row['advisories']} advisories"] if row["advisories"] or not row["exploitability"] else []
        holds += [f"{row[key]} {label}" for key, label in (("withdrawn", "withdrawn"), ("exploitability", "CVEs"),
                                                           ("problems", "problems")) if row[key]]
        table.add_row(f"{row['name']} ({row['kind']})", status_text,
                      (row["last_success"] or "")[:16].replace("T", " "), age_text, ", ".join(holds), row["error"])
    stdout.print(table)


def _since(value: str) -> int | datetime:
    """A sync id (digits) or an ISO 8601 time or date (UTC when it names no offset)."""
    if re.fullmatch(r"\d+", value):
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value or " " in value else \
            datetime.combine(date.fromisoformat(value), datetime.min.time())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither a sync id nor an ISO time (e.g. 2026-11-01T00:00:00Z)",
                                 param_hint="--since") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@db_app.command("changes")
def changes(
    ctx: typer.Context,
    since: str = typer.Option(..., "--since", metavar="SYNC_ID|ISO_TIME",
                              help="Changes of syncs after this sync id, or finished at or after this time."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """What the syncs changed: advisories added, changed (which fields), withdrawn, deleted; KEV/EPSS moves.

    Example: keelwatch db changes --since "$(keelwatch db status -f json | jq '.[0].last_sync - 1')" -f json
    """
    entries = app_context(ctx).store.changes_since(_since(since))
    if format is Format.json:
        print(json.dumps([{
            "sync": e.sync_id, "time": _iso(e.time), "source": e.source, "id": e.advisory_id, "change": e.change,
            "fields": list(e.fields), "packages": [list(p) for p in e.packages], "before": e.before, "after": e.after,
        } for e in entries], indent=2))
        return
    table = Table(title=f"changes since {since}", title_justify="left", box=box.SIMPLE)
    for column in ("sync", "feed", "id", "change", "fields"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(str(e.sync_id), e.source, e.advisory_id, e.change, ", ".join(e.fields))
    stdout.print(table)
    if not app_context(ctx).quiet:
        stderr.print(f"{len(entries)} change{'s' if len(entries) != 1 else ''}", highlight=False)


@db_app.command("export")
def export(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE", help="Where to write the export (a zip)."),
) -> None:
    """Write the whole knowledge base (advisories, KEV/EPSS, feed state) to one checksummed file.

    Example: keelwatch db export /media/usb/keelwatch-kb.zip
    """
    from keelwatch.sync.exchange import export_database

    summary = export_database(app_context(ctx).store, file)
    stdout.print(f"{summary.path}: {summary.advisories} advisories, {summary.exploitability} exploitability "
                 f"records, feeds {', '.join(summary.feeds) or 'none'}; {summary.size / 1e6:.1f} MB, "
                 f"manifest sha256 {summary.manifest_sha256}", highlight=False)


@db_app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE", help="A file written by `keelwatch db export`."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="Result as a table or JSON."),
) -> None:
    """Load an export: checksums verified first, then one journaled sync, all or nothing.

    The feeds in the file replace what the store holds for them; other feeds are left alone.

    Example: keelwatch db import /media/usb/keelwatch-kb.zip
    """
    from keelwatch.sync.exchange import import_database

    report = import_database(app_context(ctx).store, file)
    _print_reports([report], format, f"import of {file.name}")


@db_app.command("migrate")
def migrate(ctx: typer.Context) -> None:
    """Bring the database schema to this keelwatch's version (for installs with \\[store] auto_migrate = false).

    Example: KEELWATCH_DATABASE_URL=postgresql://keelwatch@db/keelwatch keelwatch db migrate
    """
    from keelwatch.store import migrate as migrations
    from keelwatch.store.engine import create_engine, display_url, parse_url, translate_errors

    url = parse_url(app_context(ctx).settings.store.url)
    with translate_errors(url):
        engine = create_engine(url)
        try:
            applied = migrations.upgrade(engine)
        finally:
            engine.dispose()
    state = "upgraded to" if applied else "already at"
    stdout.print(f"{display_url(url)}: schema {state} revision {migrations.HEAD}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
