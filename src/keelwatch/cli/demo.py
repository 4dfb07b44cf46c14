"""``keelwatch demo``: what ``make run`` runs — the demo world on the embedded store.

The story, on real images and real advisories, told in four steps:

1. catalog the images: the two small real ones that ship with keelwatch (``keelwatch/demo/images``)
   and, when ``$KEELWATCH_SHARED/data/images`` exists beside a checkout, the shared images too;
2. load the advisories as they stood on 2022-12-31 and scan every image;
3. update to the current advisories: the re-match opens the findings published since, on the
   images they reach, without reading any image again;
4. show the finding events (what alerts are raised from) and where to look next.

The demo world lives in its own SQLite file (``$KEELWATCH_HOME/demo.db``), rebuilt on each run so
the story starts at the same point; ``$KEELWATCH_HOME/demo.toml`` points the other commands at it.
The feeds are the small real OSV snapshots in ``keelwatch/demo/feeds`` (see tools/build_demo_feeds.py),
or the shared feeds when ``../shared`` is there.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.table import Table

from keelwatch.cli.context import app_context, layer_progress, stderr, stdout

PACKAGE = Path(__file__).resolve().parent.parent / "demo"
BUNDLED = PACKAGE / "images"
BUNDLED_FEEDS = PACKAGE / "feeds"


@dataclass(frozen=True)
class DemoFeed:
    name: str
    before: Path  # the snapshot as of 2022-12-31
    after: Path  # the current one
    kind: str = "osv"


def shared_dir() -> Path:
    # Beside a checkout (src/keelwatch/cli/demo.py → the repository root is parents[3]).
    return Path(os.environ.get("KEELWATCH_SHARED", Path(__file__).resolve().parents[3].parent / "shared"))


def demo_images(use_shared: bool = True) -> list[Path]:
    images = sorted(BUNDLED.glob("*.oci.tar"))
    shared_images = shared_dir() / "data" / "images"
    if use_shared and shared_images.is_dir():
        images += sorted(shared_images.glob("*.oci.tar"))
    return images


def demo_feeds(use_shared: bool = True) -> list[DemoFeed]:
    osv = shared_dir() / "data" / "feeds" / "osv"
    if use_shared and (osv / "PyPI.zip").is_file():
        feeds = [DemoFeed(f"osv-{e.lower()}", osv / f"{e}.before-2023-01-01.zip", osv / f"{e}.zip")
                 for e in ("PyPI", "Go", "Debian") if (osv / f"{e}.zip").is_file()]
        # The GHSA subsets have no older snapshot: they are loaded whole at the start.
        feeds += [DemoFeed(f"ghsa-{e.lower()}", osv / f"{e}-ghsa-subset.zip", osv / f"{e}-ghsa-subset.zip")
                  for e in ("npm", "Maven") if (osv / f"{e}-ghsa-subset.zip").is_file()]
        nvd = osv.parent / "nvd" / "records"
    else:
        feeds = [DemoFeed(f"demo-{e.lower()}", BUNDLED_FEEDS / f"{e}.2022-12-31.zip",
                          BUNDLED_FEEDS / f"{e}.current.zip") for e in ("PyPI", "npm")]
        nvd = BUNDLED_FEEDS / "nvd"
    if nvd.is_dir():
        feeds.append(DemoFeed("nvd", nvd, nvd, kind="nvd"))  # CVSS for advisories that carry none
    return feeds


def demo(
    ctx: typer.Context,
    no_shared: bool = typer.Option(False, "--no-shared", help="Only what ships with keelwatch, even if "
                                                              "../shared is there."),
    keep: bool = typer.Option(False, "--keep", help="Keep the existing demo store instead of rebuilding it."),
) -> None:
    """Build the demo world: real images, advisories as of 2022-12-31, then today's, and the findings it opens.

    Example: KEELWATCH_HOME=.keelwatch keelwatch demo
    """
    from keelwatch.config import FeedSettings, keelwatch_home
    from keelwatch.match.rematch import rematch
    from keelwatch.match.scan import scan_image
    from keelwatch.pipeline import catalog_reference
    from keelwatch.store import Store
    from keelwatch.sync.engine import sync_feed

    app = app_context(ctx)
    home = keelwatch_home()
    home.mkdir(parents=True, exist_ok=True)
    database = home / "demo.db"
    if not keep:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    use_shared = not no_shared
    feeds = demo_feeds(use_shared)
    config = home / "demo.toml"
    config.write_text("# Written by `keelwatch demo`: the demo world's store and feeds.\n"
                      f'[store]\nurl = "{url}"\n\n'
                      + "".join(f'[[feeds]]\nname = "{f.name}"\nkind = "{f.kind}"\nurl = "{f.after}"\n\n'
                                for f in feeds))
    store = Store.open(url)
    try:
        stderr.print(f"demo store: {database}", highlight=False)

        # 1. The images.
        digests: dict[str, str] = {}
        table = Table(title="1. the images, cataloged once by digest", title_justify="left")
        for column in ("image", "digest", "os", "packages by ecosystem", "seconds"):
            table.add_column(column, overflow="fold")
        for path in demo_images(use_shared):
            started = time.perf_counter()
            with layer_progress(f"cataloging {path.name}", enabled=not app.quiet) as progress:
                done = catalog_reference(f"oci-archive:{path}", store=store, progress=progress)
            result = done.result
            name = path.name.removesuffix(".oci.tar")
            digests[name] = result.image.manifest_digest
            counts = Counter(p.ecosystem or "?" for p in result.packages)
            os_release = result.image.os
            table.add_row(name, result.image.manifest_digest[:19], os_release.pretty_name if os_release else "none",
                          ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
                          f"{time.perf_counter() - started:.2f}")
        stdout.print(table)

        # 2. The advisories as they stood on 2022-12-31, and a scan of every image.
        work = home / "demo-work"
        for feed in feeds:
            report = sync_feed(store, FeedSettings(name=feed.name, kind=feed.kind, url=str(feed.before)),
                               workdir=work)
            stderr.print(f"[dim]{feed.name}: {report.status}, {report.added} advisories "
                         f"({feed.before.name})[/dim]", highlight=False)
        table = Table(title="2. scanned against the advisories of 2022-12-31", title_justify="left")
        for column in ("image", "critical", "high", "medium", "low", "unknown", "not judged"):
            table.add_column(column, justify="right" if column != "image" else "left")
        for name, digest in digests.items():
            scan = scan_image(store, digest).scan
            table.add_row(name, *(str(scan.counts[s]) for s in ("critical", "high", "medium", "low", "unknown")),
                          ", ".join(f"no data: {e}" for e in scan.no_data))
        stdout.print(table)
        first = store.latest_sync_id()

        # 3. Today's advisories: re-matched, not rescanned.
        for feed in feeds:
            if feed.after != feed.before:
                report = sync_feed(store, FeedSettings(name=feed.name, kind=feed.kind, url=str(feed.after)),
                                   workdir=work)
                stderr.print(f"[dim]{feed.name}: {report.status}, +{report.added} advisories, {report.changed} "
                             f"changed, {report.withdrawn} withdrawn ({feed.after.name})[/dim]", highlight=False)
        done_rematch = rematch(store)
        stdout.print(f"[bold]3. feeds updated to today:[/bold] {done_rematch.journal_entries} advisory changes "
                     f"re-matched over {done_rematch.images_considered} images in {done_rematch.seconds:.2f}s, "
                     f"no image read again: {done_rematch.opened} findings opened, {done_rematch.closed} closed, "
                     f"{done_rematch.changed} changed.", highlight=False)

        # 4. The events alerts are raised from.
        from keelwatch.reports.findings import severity_rank
        from keelwatch.store import findings as stored_findings

        with store.session(write=False) as session:
            events = stored_findings.finding_events(session, first)
        names = {d: n for n, d in digests.items()}
        table = Table(title="4. finding events of the update (most severe first; alerts are raised from these)",
                      title_justify="left")
        for column in ("event", "severity", "advisory", "package", "image"):
            table.add_column(column, overflow="fold")
        shown = sorted(events, key=lambda e: (severity_rank(e.severity), e.event, e.advisory_id))
        for e in shown[:25]:
            table.add_row(e.event, e.severity, ", ".join((e.advisory_id, *e.aliases[:1])),
                          f"{e.package_name} {e.package_version}", names.get(e.image_digest, e.image_digest[:19]))
        if len(shown) > 25:
            table.caption = f"… and {len(shown) - 25} more: keelwatch --config {config} findings events"
        stdout.print(table)
    finally:
        store.close()
    stdout.print(f"\nLook around: [bold]keelwatch --config {config} scan {next(iter(digests.values()), '')}[/bold], "
                 f"… findings events --since {first} --format json, … vex list.", highlight=False)
    stdout.print("[dim]The running inventory, posture, alerts and the dashboard are not built yet "
                 "(docs/status.md); the demo ends here.[/dim]")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
