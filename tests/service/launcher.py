"""A stand-in for the ``keelwatch`` command with only cli/serve.py registered (until cli/__init__ wires it).

``python launcher.py --config FILE serve …`` / ``token …``: the same root options and context as
``keelwatch``, so the subprocess runs exactly what the real command will.
"""

from __future__ import annotations

import sys

import typer

from keelwatch.cli import serve
from keelwatch.cli.context import AppContext, setup_logging, stderr
from keelwatch.errors import KeelwatchError


def build() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

    @app.callback()
    def root(ctx: typer.Context, config: str = typer.Option(None, "--config", "-c", metavar="FILE"),
             verbose: int = typer.Option(0, "--verbose", "-v", count=True),
             quiet: bool = typer.Option(False, "--quiet", "-q")) -> None:
        setup_logging(verbose, quiet)
        ctx.obj = AppContext(config_path=config, quiet=quiet)
        ctx.call_on_close(ctx.obj.close)

    serve.register(app)
    return app


def main() -> None:
    try:
        build()()
    except KeelwatchError as exc:
        stderr.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
