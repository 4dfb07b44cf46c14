"""``keelwatch images``: the images the store has cataloged."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from keelwatch.cli.context import app_context, stdout


def images(
    ctx: typer.Context,
    format: str = typer.Option("table", "--format", "-f", help="table or json"),
) -> None:
    """List cataloged images (digest, platform, OS, packages).

    Example: keelwatch images --format json | jq '.[].digest'
    """
    rows = app_context(ctx).store.list_images()
    if format == "json":
        print(json.dumps([{
            "digest": r.manifest_digest, "index_digest": r.index_digest, "name": r.name, "reference": r.reference,
            "platform": r.platform, "ecosystem": r.ecosystem, "os": r.os_pretty_name,
            "packages": r.package_count, "cataloged_at": r.cataloged_at.isoformat(),
        } for r in rows], indent=2))
        return
    table = Table(title="cataloged images", title_justify="left")
    for column in ("reference", "digest", "platform", "os", "packages", "cataloged"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r.reference, r.manifest_digest[:19], r.platform, r.os_pretty_name or r.ecosystem or "",
                      str(r.package_count), r.cataloged_at.strftime("%Y-%m-%d %H:%M"))
    stdout.print(table)


def register(app: typer.Typer) -> None:
    app.command("images")(images)
