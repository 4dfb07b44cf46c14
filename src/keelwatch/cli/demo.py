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
    serve: bool = typer.Option(False, "--serve", help="Then serve the dashboard and API on the demo world "
                                                      "(what make run does), with a printed login token."),
    port: int = typer.Option(8080, "--port", help="Port for --serve (on 127.0.0.1)."),
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
    inventory_file = home / "demo-inventory.csv"
    alerts_file = home / "demo-alerts.jsonl"
    alerts_file.unlink(missing_ok=True)
    config.write_text("# Written by `keelwatch demo`: the demo world's store, feeds, inventory and alerts.\n"
                      f'[store]\nurl = "{url}"\n\n'
                      + "".join(f'[[feeds]]\nname = "{f.name}"\nkind = "{f.kind}"\nurl = "{f.after}"\n\n'
                                for f in feeds)
                      + f'[[inventory.sources]]\nname = "demo-cmdb"\nkind = "static"\npath = "{inventory_file}"\n\n'
                      '[[alerts.overrides]]\nenvironment = "dev"\nnotify = "none"\n\n'
                      f'[[alerts.channels]]\nname = "demo-log"\nkind = "jsonl"\npath = "{alerts_file}"\n')
    from keelwatch.config import load_settings

    settings = load_settings(config)
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

        # 1b. What runs: a static inventory (a CMDB export) of workloads running those digests.
        write_inventory(inventory_file, digests)
        from keelwatch.inventory.sync import InventorySync

        engine = InventorySync(store, settings)
        try:
            for source in engine.sources():
                synced = engine.sync_source(source)
                stderr.print(f"[dim]{source.name}: {synced.status}, {synced.containers} containers[/dim]",
                             highlight=False)
        finally:
            engine.close()

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
        from keelwatch.alerts.engine import raise_alerts
        from keelwatch.alerts.outbox import deliver

        known = raise_alerts(store, settings.alerts)
        deliver(store, settings.alerts)
        show_posture(store, "2b. posture by workload (each container inherits its image digest's findings)")
        stdout.print(f"[dim]{known.opened} alerts for what was already known (dev never pages); "
                     f"delivered to {alerts_file}[/dim]", highlight=False)
        with store.session(write=False) as session:
            from keelwatch.store import alerts as stored_alerts

            before_ids = set(stored_alerts.load_alerts(session))

        # 3. Today's advisories: re-matched, not rescanned, and the alerts the new disclosures raise.
        for feed in feeds:
            if feed.after != feed.before:
                report = sync_feed(store, FeedSettings(name=feed.name, kind=feed.kind, url=str(feed.after)),
                                   workdir=work)
                stderr.print(f"[dim]{feed.name}: {report.status}, +{report.added} advisories, {report.changed} "
                             f"changed, {report.withdrawn} withdrawn ({feed.after.name})[/dim]", highlight=False)
        done_rematch = rematch(store)
        raised = raise_alerts(store, settings.alerts)
        delivered = deliver(store, settings.alerts)
        stdout.print(f"[bold]3. feeds updated to today:[/bold] {done_rematch.journal_entries} advisory changes "
                     f"re-matched over {done_rematch.images_considered} images in {done_rematch.seconds:.2f}s, "
                     f"no image read again: {done_rematch.opened} findings opened, {done_rematch.closed} closed, "
                     f"{done_rematch.changed} changed; {raised.opened} new alerts, {delivered.delivered} messages "
                     f"delivered.", highlight=False)

        # 4. The alerts of the new disclosures: one per advisory and image, with owners and deadlines.
        from keelwatch.alerts.policy import rank

        with store.session(write=False) as session:
            new_alerts = [a for a in stored_alerts.load_alerts(session).values() if a.id not in before_ids]
        new_alerts.sort(key=lambda a: (-rank(a.severity), a.due or a.first_raised, a.advisory))
        names = {d: n for n, d in digests.items()}
        table = Table(title="4. alerts raised by the new disclosures (for running containers only)",
                      title_justify="left")
        for column in ("severity", "advisory", "image", "workloads", "owners", "due", "fix"):
            table.add_column(column, overflow="fold")
        for a in new_alerts[:25]:
            workloads = ", ".join(f"{w['namespace']}/{w['name']}" for w in a.body.get("workloads", []))
            table.add_row(a.severity + (" KEV" if a.kev else ""), a.advisory,
                          names.get(a.image_digest, a.image_digest[:19]), workloads,
                          ", ".join(a.body.get("owners", [])),
                          f"{a.due:%Y-%m-%d %H:%M}" if a.due else "digest", a.body.get("remediation", ""))
        if len(new_alerts) > 25:
            table.caption = f"… and {len(new_alerts) - 25} more: keelwatch --config {config} alerts list"
        stdout.print(table)
        show_posture(store, "5. posture by workload now")
    finally:
        store.close()
    stdout.print(f"\nLook around: [bold]keelwatch --config {config} posture --plan[/bold], … alerts list, "
                 f"… sla, … findings events --since {first} --format json, … scan {next(iter(digests.values()), '')}."
                 f"\nAlert messages (the webhook body) are in {alerts_file}.", highlight=False)
    if not serve:
        stdout.print(f"[dim]Serve the dashboard on it: keelwatch --config {config} serve[/dim]", highlight=False)
        return
    from keelwatch.service import serve as run_server
    from keelwatch.store import tokens

    store = Store.open(url)
    with store.session() as session:
        token, _ = tokens.create_token(session, "admin", name="make run")
    stdout.print(f"\n[bold]Dashboard:[/bold] http://127.0.0.1:{port}/  —  log in with this token (admin):\n"
                 f"  {token}\nAPI: curl -H 'Authorization: Bearer {token}' http://127.0.0.1:{port}/api/v1/images\n"
                 "Ctrl-C stops it.", highlight=False)
    try:
        run_server(store, settings, host="127.0.0.1", port=port, workers=True)
    finally:
        store.close()


# Workloads of the demo world: (namespace, kind, workload, replicas, image, owner, environment).
WORKLOADS = (
    ("shop", "Deployment", "checkout", 2, "demo-web-v1", "payments", "prod"),
    ("shop", "Deployment", "search", 1, "demo-web-v2", "discovery", "prod"),
    ("shop-dev", "Deployment", "checkout", 1, "demo-web-v1", "payments", "dev"),
    ("data", "StatefulSet", "notebooks", 1, "debian12-python", "data-science", "prod"),
    ("data", "Deployment", "reports", 1, "debian12-python-v2", "data-science", "prod"),
    ("platform", "DaemonSet", "node-tools", 2, "go-tools", "platform", "prod"),
    ("web", "Deployment", "frontend", 2, "node-app", "web", "prod"),
    ("billing", "Deployment", "invoices", 1, "java-app", "payments", "prod"),
)


def write_inventory(path: Path, digests: dict[str, str]) -> None:
    """A CMDB export (the static source's CSV) of the workloads whose images the demo has."""
    lines = ["cluster,namespace,workload_kind,workload,pod,container,image,digest,owner,environment"]
    for namespace, kind, workload, replicas, image, owner, environment in WORKLOADS:
        if image not in digests:
            continue
        for n in range(replicas):
            pod = f"{workload}-{n}" if kind == "StatefulSet" else f"{workload}-7d9f{n}"
            lines.append(f"demo-eu-1,{namespace},{kind},{workload},{pod},app,registry.example/{image}:1.0,"
                         f"{digests[image]},{owner},{environment}")
    path.write_text("\n".join(lines) + "\n")


def show_posture(store: object, title: str) -> None:
    from keelwatch.posture import compute

    with store.session(write=False) as session:  # type: ignore[attr-defined]
        rows = compute.group_by(compute.fleet(session), "workload")
    table = Table(title=title, title_justify="left")
    for column in ("namespace", "workload", "containers", "critical", "high", "medium", "low", "unknown", "kev",
                   "risk"):
        table.add_column(column, justify="left" if column in ("namespace", "workload") else "right")
    for r in rows:
        c = r["counts"]
        table.add_row(r["namespace"], r["workload"], str(r["containers"]), str(c["critical"]), str(c["high"]),
                      str(c["medium"]), str(c["low"]), str(c["unknown"]), str(r["kev"]), f"{r['risk']:.0f}")
    stdout.print(table)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
