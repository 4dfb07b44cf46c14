"""``keelwatch sbom IMAGE`` (write an SBOM) and ``keelwatch sbom import FILE`` (read one)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from keelwatch.cli.context import app_context, image_options, layer_progress, stderr, stdout
from keelwatch.model import CatalogResult


class DefaultCommandGroup(TyperGroup):
    """A group whose first argument is a command name, or else an argument of the default command.

    ``keelwatch sbom IMAGE`` and ``keelwatch sbom import FILE`` both read naturally this way.
    """

    default_command = "create"

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def,unused-ignore]
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


class SbomFormat(StrEnum):
    cyclonedx_json = "cyclonedx-json"
    spdx_json = "spdx-json"
    table = "table"
    json = "json"


sbom_app = typer.Typer(
    cls=DefaultCommandGroup,
    help="Write an image's SBOM (CycloneDX 1.6, SPDX 2.3, table, JSON), or import one.\n\n"
    "Examples:\n\n"
    "  keelwatch sbom oci-archive:app.oci.tar --format cyclonedx-json > app.cdx.json\n\n"
    "  keelwatch sbom docker-archive:saved.tar --format table\n\n"
    "  keelwatch sbom registry:localhost:5000/app:1.2 --platform linux/arm64 --insecure\n\n"
    "  keelwatch sbom import trivy.cdx.json",
    no_args_is_help=True,
)


@sbom_app.command("create", help="Catalog IMAGE and write its SBOM to stdout (progress and logs go to stderr).\n\n"
                  "IMAGE is docker-archive:PATH, oci-archive:PATH, oci-dir:PATH, dir:ROOTFS, registry:REF, "
                  "or a bare registry reference (nginx:1.27 means registry:docker.io/library/nginx:1.27).")
def create(
    ctx: typer.Context,
    image: str = typer.Argument(..., metavar="IMAGE"),
    format: SbomFormat = typer.Option(SbomFormat.table, "--format", "-f", help="Output format."),
    platform: str = typer.Option(None, "--platform", help="Platform to pick from a multi-arch image, e.g. linux/arm64 "
                                 "(default: this machine's)."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow plain HTTP and unverified TLS for the registry."),
    docker_config: str = typer.Option(None, "--docker-config", envvar="DOCKER_CONFIG", metavar="PATH",
                                      help="Docker config.json (or its directory) with registry credentials "
                                           "(default ~/.docker/config.json)."),
    output: Path = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    refresh: bool = typer.Option(False, "--refresh", help="Catalog again even if this digest is already stored."),
    no_store: bool = typer.Option(False, "--no-store", help="Do not read or write the database."),
) -> None:
    from keelwatch.pipeline import catalog_reference

    app = app_context(ctx)
    options = image_options(app, image, platform=platform, insecure=insecure, docker_config=docker_config)
    with layer_progress(f"cataloging {image}", enabled=not app.quiet) as progress:
        done = catalog_reference(image, options=options, store=None if no_store else app.store,
                                 refresh=refresh, progress=progress)
    result = done.result
    for warning in result.warnings[:20]:
        stderr.print(f"[yellow]warning:[/yellow] {warning.path}: {warning.message}", highlight=False)
    if len(result.warnings) > 20:
        stderr.print(f"[yellow]warning:[/yellow] … and {len(result.warnings) - 20} more", highlight=False)
    _write(render(result, format), output)


def render(result: CatalogResult, format: SbomFormat) -> str | Table:
    if format is SbomFormat.cyclonedx_json:
        from keelwatch.sbom.cyclonedx import to_cyclonedx

        return to_cyclonedx(result)
    if format is SbomFormat.spdx_json:
        from keelwatch.sbom.spdx import to_spdx

        return to_spdx(result)
    if format is SbomFormat.json:
        return json.dumps(result_to_json(result), indent=2)
    return packages_table(result)


def result_to_json(result: CatalogResult) -> dict[str, Any]:
    image = result.image
    return {
        "image": {
            "reference": image.reference, "name": image.name, "digest": image.manifest_digest,
            "index_digest": image.index_digest, "config_digest": image.config_digest,
            "platform": str(image.platform),
            "os": {"id": image.os.id, "version_id": image.os.version_id, "ecosystem": image.os.ecosystem}
            if image.os else None,
            "layers": [{"digest": layer.digest, "diff_id": layer.diff_id, "media_type": layer.media_type,
                        "size": layer.size} for layer in image.layers],
        },
        "packages": [
            {"ecosystem": p.ecosystem, "name": p.name, "version": p.version, "purl": p.purl, "kind": p.kind,
             "source_name": p.source_name, "source_version": p.source_version, "arch": p.arch,
             "layer_digest": p.layer_digest, "location": p.location, "found_by": p.found_by,
             "files": len(p.files)}
            for p in sorted(result.packages, key=lambda p: (p.ecosystem, p.name, p.version, p.location))
        ],
        "warnings": [{"path": w.path, "message": w.message, "layer_digest": w.layer_digest} for w in result.warnings],
    }


def packages_table(result: CatalogResult) -> Table:
    image = result.image
    os_text = image.os.pretty_name or f"{image.os.id} {image.os.version_id}" if image.os else "unknown OS"
    table = Table(title=f"{image.reference}\n{image.manifest_digest}  {image.platform}  {os_text}",
                  title_justify="left")
    for column in ("ecosystem", "name", "version", "source", "found by", "location"):
        table.add_column(column, overflow="fold")
    for p in sorted(result.packages, key=lambda p: (p.ecosystem, p.name, p.version)):
        source = f"{p.source_name} {p.source_version}" if p.source_name and p.source_name != p.name else ""
        table.add_row(p.ecosystem, p.name, p.version, source, p.found_by, p.location)
    table.caption = f"{len(result.packages)} packages"
    return table


def _write(content: str | Table, output: Path | None) -> None:
    if isinstance(content, Table):
        if output:
            with output.open("w") as f:
                from rich.console import Console

                Console(file=f, width=200).print(content)
        else:
            stdout.print(content)
        return
    if output:
        output.write_text(content + "\n")
    else:
        sys.stdout.write(content + "\n")


@sbom_app.command("import", help="Import an SBOM (CycloneDX, SPDX, Syft JSON, Trivy JSON) as an image's catalog.\n\n"
                  "Example: keelwatch sbom import image.trivy.cdx.json")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    format: SbomFormat = typer.Option(SbomFormat.table, "--format", "-f", help="How to show what was imported."),
) -> None:
    from keelwatch.sbom.importers import import_sbom

    result = import_sbom(file.read_bytes(), str(file))
    app_context(ctx).store.save_catalog(result)
    stderr.print(f"imported {len(result.packages)} packages as {result.image.manifest_digest}")
    _write(render(result, format), None)


def register(app: typer.Typer) -> None:
    app.add_typer(sbom_app, name="sbom")
