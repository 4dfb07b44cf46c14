"""``keelwatch scan IMAGE`` (the build-time gate), ``keelwatch rematch``, ``keelwatch findings events``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import typer
from rich.table import Table

from keelwatch.cli.context import app_context, image_options, layer_progress, stderr, stdout
from keelwatch.errors import KeelwatchError

#: ``--fail-on`` found a finding at or above the threshold (errors exit 1, usage errors 2).
GATE_EXIT = 3


class ScanFormat(StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"
    cyclonedx_vex = "cyclonedx-vex"


class FailOn(StrEnum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    unknown = "unknown"


class Format(StrEnum):
    table = "table"
    json = "json"


_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "unknown": "dim"}


def scan(
    ctx: typer.Context,
    image: str = typer.Argument(..., metavar="IMAGE"),
    format: ScanFormat = typer.Option(ScanFormat.table, "--format", "-f", help="Output format."),
    fail_on: FailOn = typer.Option(None, "--fail-on", metavar="SEVERITY",
                                   help="Exit 3 when an unsuppressed finding of this severity or higher is present "
                                        "(critical, high, medium, low, unknown)."),
    platform: str = typer.Option(None, "--platform", help="Platform of a multi-arch image, e.g. linux/arm64."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow plain HTTP and unverified TLS for the registry."),
    docker_config: str = typer.Option(None, "--docker-config", envvar="DOCKER_CONFIG", metavar="PATH",
                                      help="Docker config.json (or its directory) with registry credentials."),
    refresh: bool = typer.Option(False, "--refresh", help="Catalog again even if this digest is already stored."),
) -> None:
    """Catalog IMAGE (or reuse its stored catalog), match it against the knowledge base, keep the findings.

    IMAGE is docker-archive:PATH, oci-archive:PATH, oci-dir:PATH, dir:ROOTFS, registry:REF, a bare
    registry reference, or the sha256: digest of an image already cataloged. The findings are
    stored: later feed updates re-match them without a rescan (keelwatch rematch).

    Exit codes: 0 no gate breached, 1 error, 2 usage error, 3 --fail-on breached.

    Examples:

      keelwatch db update && keelwatch scan oci-archive:app.oci.tar --fail-on critical

      keelwatch scan registry:localhost:5000/app:1.2 --format sarif > keelwatch.sarif

      keelwatch scan nginx:1.27 --format json | jq '.findings[] | select(.kev)'
    """
    from keelwatch.match.scan import scan_image
    from keelwatch.pipeline import catalog_reference
    from keelwatch.store import catalog as stored_catalog

    app = app_context(ctx)
    store = app.store
    if store.latest_sync_id() is None:
        stderr.print("[yellow]warning:[/yellow] the knowledge base is empty: run keelwatch db update first; "
                     "every package will be reported as 'no advisory data'", highlight=False)
    if image.startswith("sha256:") and not refresh:
        digest = image
        with store.session(write=False) as session:
            summary = next((s for s in stored_catalog.list_images(session) if s.manifest_digest == digest), None)
        if summary is None:
            raise KeelwatchError(f"no stored image has digest {digest}",
                                 hint="scan it by reference (oci-archive:…, registry:…) first")
        image_json = {"digest": digest, "reference": summary.reference, "name": summary.name,
                      "index_digest": summary.index_digest, "platform": summary.platform,
                      "ecosystem": summary.ecosystem}
    else:
        options = image_options(app, image, platform=platform, insecure=insecure, docker_config=docker_config)
        with layer_progress(f"cataloging {image}", enabled=not app.quiet) as progress:
            done = catalog_reference(image, options=options, store=store, refresh=refresh, progress=progress)
        i = done.result.image
        digest = i.manifest_digest
        image_json = {"digest": digest, "reference": i.reference, "name": i.name, "index_digest": i.index_digest,
                      "platform": str(i.platform), "ecosystem": i.os.ecosystem if i.os else None}
    report = scan_image(store, digest)
    suppressions = _suppressions(store, digest, report.findings)

    for ecosystem in report.scan.no_data:
        stderr.print(f"[yellow]warning:[/yellow] no advisory data for {ecosystem}: its packages are not judged",
                     highlight=False)
    if format is ScanFormat.json:
        from keelwatch.reports.findings import scan_to_json

        print(json.dumps(scan_to_json(image_json, report.findings, report.unknowns, report.scan, suppressions),
                         indent=2))
    elif format is ScanFormat.sarif:
        from keelwatch.reports.sarif import to_sarif

        print(to_sarif(image_json, report.findings, suppressions))
    elif format is ScanFormat.cyclonedx_vex:
        from keelwatch.reports.cyclonedx_vex import to_cyclonedx_vex

        print(to_cyclonedx_vex(image_json, report.findings, suppressions))
    else:
        stdout.print(_findings_table(image_json, report, suppressions))
    if fail_on is not None:
        from keelwatch.reports.findings import breaches

        breached = breaches(report.findings, suppressions, fail_on.value)
        if breached:
            stderr.print(f"[red]gate:[/red] {len(breached)} unsuppressed finding(s) at {fail_on.value} or higher "
                         f"in {image_json['reference'] or digest}", highlight=False)
            raise typer.Exit(GATE_EXIT)


def _suppressions(store: Any, digest: str, findings: Any) -> dict[str, Any]:
    """The findings' VEX statements and risk acceptances in force."""
    from keelwatch.match.vex import suppressions_for

    return suppressions_for(store, digest, findings)


def _findings_table(image: dict[str, Any], report: Any, suppressions: dict[str, Any]) -> Table:
    from keelwatch.reports.findings import ordered, summary

    counts = summary(report.findings, suppressions)
    table = Table(title=f"{image['reference'] or image['digest']}\n{image['digest']}  {image['platform']}",
                  title_justify="left")
    for column in ("severity", "advisory", "aliases", "package", "installed", "fixed in", "kev", "epss"):
        table.add_column(column, overflow="fold")
    for s in ordered(report.findings):
        f = s.finding
        style = "dim strike" if s.key in suppressions else _STYLE.get(f.severity, "")
        table.add_row(f"[{style}]{f.severity}[/]" if style else f.severity, f.id, ", ".join(f.aliases[:3]),
                      f.package.name, f.installed_version, ", ".join(f.fixed_versions) or "-",
                      "KEV" if f.kev else "", f"{f.epss:.3f}" if f.epss is not None else "")
    table.caption = (f"{counts['total']} findings: {counts['critical']} critical, {counts['high']} high, "
                     f"{counts['medium']} medium, {counts['low']} low, {counts['unknown']} unknown; "
                     f"{counts['kev']} KEV, {counts['fixable']} fixable"
                     + (f"; {counts['suppressed']} suppressed" if counts["suppressed"] else "")
                     + (f"; {len(report.unknowns)} not judged (see --format json 'unknowns')"
                        if report.unknowns else ""))
    return table


def rematch(
    ctx: typer.Context,
    full: bool = typer.Option(False, "--full", help="Re-judge every package of every scanned image, not only "
                                                    "what the feeds changed (after an upgrade of keelwatch)."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """Bring stored findings up to date with the feeds, without reading any image again.

    Only the packages the change journal names since the last re-match are re-judged; each
    change is a finding event (keelwatch findings events). db update runs this by itself.

    Examples:

      keelwatch rematch

      keelwatch rematch --full --format json
    """
    from keelwatch.match.rematch import rematch as run

    print_rematch(run(app_context(ctx).store, full=full), format)


def print_rematch(report: Any, format: Format) -> None:
    if format is Format.json:
        print(json.dumps(report.as_dict(), indent=2))
        return
    stdout.print(f"re-matched syncs {report.since}..{report.until}: {report.journal_entries} journal entries, "
                 f"{report.images_considered} images considered, {report.images_written} written; "
                 f"{report.opened} opened, {report.closed} closed, {report.changed} changed "
                 f"in {report.seconds:.2f}s", highlight=False)


findings_app = typer.Typer(help="Stored findings and their history.\n\n"
                           "Examples:\n\n"
                           "  keelwatch findings events --since 41 --format json\n\n"
                           "  keelwatch findings events --since 2026-12-01T00:00:00Z --image sha256:…",
                           no_args_is_help=True)


def _since(value: str | None) -> int | datetime | None:
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither a sync id nor an ISO time (2026-12-01T00:00:00Z)",
                                 param_hint="--since") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@findings_app.command("events")
def events(
    ctx: typer.Context,
    since: str = typer.Option(None, "--since", metavar="SYNC_ID|ISO_TIME",
                              help="Only events after this sync id, or at/after this time. Default: all."),
    image: str = typer.Option(None, "--image", metavar="DIGEST", help="Only this image's events."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """Finding events: opened, closed and changed findings, with the sync that caused them.

    A script that remembers the newest sync it handled asks --since that id and never misses one.
    """
    from keelwatch.store import findings as stored_findings

    with app_context(ctx).store.session(write=False) as session:
        found = stored_findings.finding_events(session, _since(since), image_digest=image)
    rows = [{"event": e.event, "id": e.advisory_id, "aliases": list(e.aliases), "image_digest": e.image_digest,
             "finding_key": e.finding_key, "package": {"ecosystem": e.package_ecosystem, "name": e.package_name,
                                                       "version": e.package_version},
             "severity": e.severity, "sync": e.sync, "time": e.time.isoformat(), "changes": e.changes,
             "event_id": e.id} for e in found]
    if format is Format.json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="finding events", title_justify="left")
    for column in ("time", "sync", "event", "advisory", "severity", "package", "image", "changes"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["time"][:19], str(r["sync"] or ""), r["event"], r["id"], r["severity"],
                      f"{r['package']['name']} {r['package']['version']}", r["image_digest"][:19],
                      ", ".join(sorted(r["changes"])))
    table.caption = f"{len(rows)} events"
    stdout.print(table)


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)
    app.command("rematch")(rematch)
    app.add_typer(findings_app, name="findings")
