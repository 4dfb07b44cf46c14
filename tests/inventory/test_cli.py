"""``keelwatch inventory``: the commands on a locally built Typer app (the main app wires them the same way)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from keelwatch.cli import inventory
from keelwatch.cli.context import AppContext

REQUIRED_KEYS = {"cluster", "namespace", "workload_kind", "workload", "pod", "container", "image", "digest",
                 "platform", "state", "first_seen", "last_seen", "resolution_error"}
DIGEST = "sha256:" + "d" * 64


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context, config: str = typer.Option(None, "--config")) -> None:
        ctx.obj = AppContext(config_path=config)
        ctx.call_on_close(ctx.obj.close)

    inventory.register(app)
    return app


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "cmdb.csv").write_text(
        "cluster,namespace,workload_kind,workload,pod,container,image,digest\n"
        f"prod,shop,Deployment,web,web-1,nginx,nginx:1.27,{DIGEST}\n"
        "prod,shop,Deployment,web,web-1,envoy,envoyproxy/envoy:v1.31.2,\n"
        f"prod,data,StatefulSet,db,db-0,postgres,postgres:16,{DIGEST}\n")
    path = tmp_path / "keelwatch.toml"
    path.write_text('[store]\nurl = "sqlite:///kw.db"\n\n[[inventory.sources]]\nname = "cmdb"\nkind = "static"\n'
                    'path = "cmdb.csv"\nresolve = false\n\n[[inventory.sources]]\nname = "down"\nkind = "docker"\n'
                    f'url = "unix://{tmp_path}/none.sock"\n')
    return path


def test_sync_then_list_as_json(app: typer.Typer, config: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["--config", str(config), "inventory", "sync", "--source", "cmdb"])
    assert done.exit_code == 0, done.output
    assert "cmdb: ok, 3 containers (3 new" in done.stdout
    listed = runner.invoke(app, ["--config", str(config), "inventory", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert len(rows) == 3 and all(set(r) >= REQUIRED_KEYS for r in rows)
    assert {r["pod"] for r in rows} == {"web-1", "db-0"}
    only = json.loads(runner.invoke(app, ["--config", str(config), "inventory", "list", "--namespace", "data",
                                          "--format", "json"]).stdout)
    assert [r["container"] for r in only] == ["postgres"]
    nginx = json.loads(runner.invoke(app, ["--config", str(config), "inventory", "list", "--image", "nginx",
                                           "--format", "json"]).stdout)
    assert [r["container"] for r in nginx] == ["nginx"]
    unresolved = json.loads(runner.invoke(app, ["--config", str(config), "inventory", "list", "--unresolved",
                                                "--format", "json"]).stdout)
    assert [(r["container"], r["digest"], r["resolution_error"]) for r in unresolved] == [
        ("envoy", None, "unresolved: resolution is off for this source")]
    table = runner.invoke(app, ["--config", str(config), "inventory", "list"])
    assert table.exit_code == 0 and "sha256:dddd" in table.stdout


def test_a_failing_source_exits_1_and_says_why(app: typer.Typer, config: Path) -> None:
    done = CliRunner().invoke(app, ["--config", str(config), "inventory", "sync", "--format", "json"])
    assert done.exit_code == 1
    reports = {r["source"]: r for r in json.loads(done.stdout)}
    assert reports["cmdb"]["status"] == "ok" and reports["down"]["status"] == "failed"
    assert "Docker API at unix://" in reports["down"]["error"]
