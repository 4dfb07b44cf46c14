"""The ``keelwatch`` command: a thin Typer adapter over the library.

One module per command group; each module adds its commands to ``app`` in ``register``. Errors
are the library's typed errors: printed as one line on stderr, with the error's exit code.
"""

from __future__ import annotations

import sys

import typer

from keelwatch import __version__
from keelwatch.cli import alerts, db, demo, images, inventory, posture, runtime, sbom, scan, serve, vex, worker
from keelwatch.cli.context import AppContext, setup_logging, stderr
from keelwatch.errors import KeelwatchError

app = typer.Typer(
    name="keelwatch",
    help="What is vulnerable in production, right now, and who must fix it by when.\n\n"
    "Examples:\n\n"
    "  keelwatch sbom oci-archive:app.tar --format cyclonedx-json > app.cdx.json\n\n"
    "  keelwatch sbom registry:localhost:5000/app:1.2 --platform linux/arm64\n\n"
    "  keelwatch --config keelwatch.toml db update\n\n"
    "  keelwatch scan oci-archive:app.tar --fail-on critical\n\n"
    "  keelwatch findings events --since 41 --format json",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"keelwatch {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: str = typer.Option(None, "--config", "-c", envvar="KEELWATCH_CONFIG", metavar="FILE",
                               help="Configuration file (TOML). Default: ./keelwatch.toml, "
                                    "$XDG_CONFIG_HOME/keelwatch/config.toml, /etc/keelwatch/config.toml."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More logging on stderr (-vv: debug)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr; no progress."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    setup_logging(verbose, quiet)
    ctx.obj = AppContext(config_path=config, quiet=quiet)
    ctx.call_on_close(ctx.obj.close)


sbom.register(app)
images.register(app)
demo.register(app)
db.register(app)
scan.register(app)
vex.register(app)
alerts.register(app)
inventory.register(app)
posture.register(app)
serve.register(app)
worker.register(app)
runtime.register(app)


def main() -> None:
    # Standalone mode: usage errors, --help and Ctrl-C are handled the usual way; our own typed
    # errors come out here and become one line on stderr with the error's exit code.
    try:
        app()
    except KeelwatchError as exc:
        stderr.print(f"[red]error:[/red] {exc}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
