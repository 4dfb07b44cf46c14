"""`keelwatch db` as users and scripts run it: a real process, `--config` pointing at a TOML file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

KEELWATCH = [sys.executable, "-m", "keelwatch"]


def write_config(path: Path, store_url: str, feeds: dict[str, Path | str], *, auto_migrate: bool = True) -> Path:
    lines = ["[store]", f'url = "{store_url}"', f"auto_migrate = {str(auto_migrate).lower()}", ""]
    for name, url in feeds.items():
        lines += ["[[feeds]]", f'name = "{name}"', 'kind = "osv"', f'url = "{url}"', ""]
    path.write_text("\n".join(lines))
    return path


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELWATCH_") or k == "KEELWATCH_SHARED"}
    env["KEELWATCH_HOME"] = str(config.parent / "home")
    return subprocess.run([*KEELWATCH, "--config", str(config), *args], capture_output=True, text=True, env=env,
                          timeout=300)


def as_json(out: subprocess.CompletedProcess[str]) -> Any:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_db_update_syncs_every_configured_feed(store: Any, store_url: str, feeds_dir: Path, tmp_path: Path) -> None:
    pypi = tmp_path / "PyPI.zip"  # the feed's file is replaced by a newer snapshot below
    pypi.write_bytes((feeds_dir / "osv/PyPI.before-2023-01-01.zip").read_bytes())
    config = write_config(tmp_path / "keelwatch.toml", store_url,
                          {"osv-pypi": pypi, "osv-maven": feeds_dir / "osv/Maven-ghsa-subset.zip"})
    out = run(config, "db", "update")
    assert out.returncode == 0, out.stderr
    assert "osv-pypi: fetching" in out.stderr and "osv-maven: writing" in out.stderr  # progress on stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line.strip().startswith("osv-")}
    assert rows["osv-pypi"][1:3] == ["ok", "2214"] and rows["osv-maven"][1:3] == ["ok", "7"]

    status = {s["name"]: s for s in as_json(run(config, "db", "status", "--format", "json"))}
    assert {n: (s["status"], s["advisories"], s["withdrawn"]) for n, s in status.items()} == {
        "osv-pypi": ("ok", 2214, 2), "osv-maven": ("ok", 7, 0)}
    assert status["osv-pypi"]["last_success"] and status["osv-pypi"]["age_seconds"] < 300
    first_sync = max(s["last_sync"] for s in status.values())
    changes = as_json(run(config, "db", "changes", "--since", "0", "--format", "json"))
    assert len(changes) == 2221 and {c["change"] for c in changes} == {"added"}

    pypi.write_bytes((feeds_dir / "osv/PyPI.zip").read_bytes())
    out = run(config, "db", "update", "--feed", "osv-pypi", "--format", "json")
    [report] = as_json(out)
    assert (report["feed"], report["added"], report["deleted"], report["changed"], report["withdrawn"]) == (
        "osv-pypi", 474, 27, 16, 3)
    changes = as_json(run(config, "db", "changes", "--since", str(first_sync), "--format", "json"))
    kinds = {c["change"] for c in changes}
    assert len(changes) == 474 + 27 + 19 and kinds == {"added", "deleted", "changed", "withdrawn"}
    assert all(c["sync"] == report["sync"] and c["source"] == "osv-pypi" for c in changes)
    table = run(config, "db", "changes", "--since", str(first_sync))
    assert table.returncode == 0 and "PYSEC-" in table.stdout and "520 changes" in table.stderr

    again = as_json(run(config, "db", "update", "--format", "json"))
    assert {r["feed"]: r["status"] for r in again} == {"osv-pypi": "unchanged", "osv-maven": "unchanged"}


def test_a_failed_feed_exits_non_zero_with_one_line(feeds_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "k.toml", f"sqlite:///{tmp_path / 'kw.db'}", {
        "broken": tmp_path / "missing.zip", "maven": feeds_dir / "osv/Maven-ghsa-subset.zip"})
    out = run(config, "db", "update")
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: feed broken:") and "missing.zip" in errors[0]
    assert "Traceback" not in out.stderr
    assert "broken" in out.stdout and "failed" in out.stdout  # the table still lists every feed
    status = {s["name"]: s for s in as_json(run(config, "db", "status", "--format", "json"))}
    assert status["maven"]["advisories"] == 7
    assert status["broken"]["status"] == "failed" and "missing.zip" in status["broken"]["error"]
    table = run(config, "db", "status")
    assert table.returncode == 0 and "failed" in table.stdout and "7 advisories" in table.stdout


@pytest.mark.parametrize(("feeds", "args", "message"), [
    ({"maven": "x.zip"}, ["db", "update", "--feed", "nope"], "no feed named nope"),
    ({}, ["db", "update"], "no feeds are configured"),
    ({}, ["db", "import", "/does/not/exist.zip"], "no such file"),
    ({}, ["db", "changes", "--since", "last tuesday"], "neither a sync id nor an ISO"),  # a usage error, boxed
])
def test_mistakes_are_one_line_and_non_zero(tmp_path: Path, feeds: dict[str, str], args: list[str],
                                            message: str) -> None:
    out = run(write_config(tmp_path / "k.toml", f"sqlite:///{tmp_path / 'kw.db'}", feeds), *args)
    assert out.returncode != 0 and out.stdout == ""
    assert message in " ".join(out.stderr.split()) and "Traceback" not in out.stderr


def test_export_and_import_across_an_air_gap(feeds_dir: Path, tmp_path: Path) -> None:
    connected = write_config(tmp_path / "connected.toml", f"sqlite:///{tmp_path / 'connected.db'}",
                             {"npm": feeds_dir / "osv/npm-ghsa-subset.zip"})
    isolated = write_config(tmp_path / "isolated.toml", f"sqlite:///{tmp_path / 'isolated.db'}", {})
    assert run(connected, "db", "update").returncode == 0
    out = run(connected, "db", "export", str(tmp_path / "kb.zip"))
    assert out.returncode == 0 and "33 advisories" in out.stdout and "manifest sha256" in out.stdout

    [report] = as_json(run(isolated, "db", "import", str(tmp_path / "kb.zip"), "--format", "json"))
    assert (report["kind"], report["added"]) == ("import", 33)
    [status] = as_json(run(isolated, "db", "status", "--format", "json"))
    npm = str(feeds_dir / "osv/npm-ghsa-subset.zip")
    assert (status["name"], status["advisories"], status["url"]) == ("npm", 33, npm)

    data = (tmp_path / "kb.zip").read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    out = run(isolated, "db", "import", str(tmp_path / "cut.zip"))
    assert out.returncode == 1 and out.stdout == "" and len(out.stderr.strip().splitlines()) == 1
    assert "database was not changed" in out.stderr
    [after] = as_json(run(isolated, "db", "status", "--format", "json"))
    assert {**after, "age_seconds": 0} == {**status, "age_seconds": 0}


def test_db_migrate_brings_an_old_schema_to_head(tmp_path: Path) -> None:
    config = write_config(tmp_path / "k.toml", f"sqlite:///{tmp_path / 'kw.db'}", {}, auto_migrate=False)
    out = run(config, "db", "status")
    assert out.returncode == 1 and "keelwatch db migrate" in out.stderr
    out = run(config, "db", "migrate")
    assert out.returncode == 0 and "upgraded to revision" in out.stdout
    assert "already at revision" in run(config, "db", "migrate").stdout
    assert as_json(run(config, "db", "status", "--format", "json")) == []


def test_help_shows_examples(tmp_path: Path) -> None:
    out = run(write_config(tmp_path / "k.toml", "sqlite:///x.db", {}), "db", "--help")
    assert out.returncode == 0 and "keelwatch --config keelwatch.toml db update" in out.stdout
    for command in ("update", "status", "changes", "export", "import", "migrate"):
        assert command in out.stdout
