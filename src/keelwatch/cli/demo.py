"""``keelwatch demo``: what ``make run`` runs — the demo world on the embedded store.

It uses the small real images that ship with keelwatch (``keelwatch/demo/images``) and, when
``$KEELWATCH_SHARED/data/images`` exists beside a checkout, the shared images too.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import typer
from rich.table import Table

from keelwatch.cli.context import app_context, layer_progress, stderr, stdout

BUNDLED = Path(__file__).resolve().parent.parent / "demo" / "images"


def demo_images() -> list[Path]:
    images = sorted(BUNDLED.glob("*.oci.tar"))
    # Beside a checkout (src/keelwatch/cli/demo.py → the repository root is parents[3]).
    shared = Path(os.environ.get("KEELWATCH_SHARED", Path(__file__).resolve().parents[3].parent / "shared"))
    shared_images = shared / "data" / "images"
    if shared_images.is_dir():
        images += sorted(shared_images.glob("*.oci.tar"))
    return images


def demo(ctx: typer.Context) -> None:
    """Catalog the demo images into the store and show what each one holds.

    Example: KEELWATCH_HOME=.keelwatch keelwatch demo
    """
    from keelwatch.pipeline import catalog_reference

    app = app_context(ctx)
    store = app.store
    stderr.print(f"store: {store}")
    table = Table(title="demo images", title_justify="left")
    for column in ("image", "digest", "os", "packages by ecosystem", "seconds", ""):
        table.add_column(column, overflow="fold")
    for path in demo_images():
        reference = f"oci-archive:{path}"
        started = time.perf_counter()
        with layer_progress(f"cataloging {path.name}", enabled=not app.quiet) as progress:
            done = catalog_reference(reference, store=store, progress=progress)
        elapsed = time.perf_counter() - started
        result = done.result
        counts = Counter(p.ecosystem or "?" for p in result.packages)
        os_release = result.image.os
        table.add_row(path.name.removesuffix(".oci.tar"), result.image.manifest_digest[:19],
                      os_release.pretty_name if os_release else "none",
                      ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), f"{elapsed:.2f}",
                      "stored before" if done.reused else "cataloged")
    stdout.print(table)
    stdout.print("Every image above is stored by digest: run `keelwatch images`, or "
                 "`keelwatch sbom oci-archive:PATH -f cyclonedx-json` for an SBOM (a stored digest is not read again).")
    stdout.print("[dim]Advisory matching, the running inventory, alerts and the dashboard are not built yet: "
                 "see docs/status.md.[/dim]")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
