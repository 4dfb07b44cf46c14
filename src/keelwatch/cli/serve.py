"""``keelwatch serve`` and ``keelwatch token create|list|revoke``."""

from __future__ import annotations

import json
from enum import StrEnum

import typer
from rich.table import Table

from keelwatch.cli.context import app_context, stderr, stdout


class Role(StrEnum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"


class Format(StrEnum):
    table = "table"
    json = "json"


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8080, "--port", "-p", min=0, max=65535, help="TCP port."),
    no_workers: bool = typer.Option(False, "--no-workers",
                                    help="Serve the API and dashboard only; run none of the service loops."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request on stderr."),
) -> None:
    """Serve the REST API (/api/v1, /openapi.json), the dashboard, /healthz, /readyz and /metrics,
    and run the service loops, until SIGTERM or Ctrl-C (then shut down gracefully).

    Every /api/v1 route and the dashboard need a token: keelwatch token create --role viewer.

    Examples:

      keelwatch --config /etc/keelwatch/config.toml serve --host 0.0.0.0 --port 8080

      keelwatch serve --no-workers   # API and dashboard only
    """
    from keelwatch.service import serve as run

    app = app_context(ctx)
    store = app.store
    if not app.quiet:
        where = store.url.render_as_string(hide_password=True)
        stderr.print(f"keelwatch serving on http://{host}:{port} (store {where}{', no loops' if no_workers else ''}); "
                     "Ctrl-C or SIGTERM stops it", highlight=False)
    run(store, app.settings, host=host, port=port, workers=not no_workers, access_log=access_log)


token_app = typer.Typer(
    help="API tokens for the REST API and the dashboard. Roles: viewer (read) < operator (import VEX, "
    "accept risks, trigger scans) < admin (tokens too). Only a token's hash is stored.\n\n"
    "Examples:\n\n"
    "  TOKEN=$(keelwatch token create --role viewer --name grafana)\n\n"
    "  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8080/api/v1/images\n\n"
    "  keelwatch token list\n\n"
    "  keelwatch token revoke grafana",
    no_args_is_help=True,
)


@token_app.command("create")
def create(
    ctx: typer.Context,
    role: Role = typer.Option(..., "--role", "-r", help="viewer, operator or admin"),
    name: str = typer.Option("", "--name", "-n", help="What the token is for (shown by token list)."),
) -> None:
    """Create a token and print it (only the token, on stdout): it is shown this once."""
    from keelwatch.store import tokens

    app = app_context(ctx)
    with app.store.session() as session:
        token, info = tokens.create_token(session, role.value, name=name)
    print(token)
    if not app.quiet:
        stderr.print(f"created token {info.id} ({info.role}{', ' + info.name if info.name else ''}); "
                     "it cannot be shown again", highlight=False)


@token_app.command("list")
def list_(
    ctx: typer.Context,
    all_: bool = typer.Option(False, "--all", "-a", help="Include revoked tokens."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
) -> None:
    """List tokens: id, name, role, the first characters, last use. Never the secrets."""
    from keelwatch.store import tokens

    with app_context(ctx).store.session(write=False) as session:
        found = tokens.list_tokens(session, include_revoked=all_)
    if format is Format.json:
        print(json.dumps([t.as_dict() for t in found], indent=2))
        return
    table = Table(title="API tokens", title_justify="left")
    for column in ("id", "name", "role", "prefix", "created", "last used", "revoked"):
        table.add_column(column)
    for t in found:
        table.add_row(str(t.id), t.name, t.role, t.prefix + "…", t.created_at.isoformat()[:19],
                      t.last_used.isoformat()[:19] if t.last_used else "never",
                      t.revoked_at.isoformat()[:19] if t.revoked_at else "")
    table.caption = f"{len(found)} tokens"
    stdout.print(table)


@token_app.command("revoke")
def revoke(
    ctx: typer.Context,
    ident: str = typer.Argument(..., metavar="ID|NAME|PREFIX", help="As token list shows it."),
) -> None:
    """Revoke a token: the API and the dashboard refuse it from the next request on."""
    from keelwatch.store import tokens

    with app_context(ctx).store.session() as session:
        revoked = tokens.revoke_token(session, ident)
    for t in revoked:
        stdout.print(f"revoked token {t.id} ({t.role}{', ' + t.name if t.name else ''})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(token_app, name="token")
