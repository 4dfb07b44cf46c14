"""``keelwatch serve`` as a real process, ``keelwatch token``, and the loop runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from conftest import free_port  # tests/ is on sys.path
from keelwatch.config import Settings
from keelwatch.service.loops import Loop, LoopContext, LoopRunner

from .launcher import build

LAUNCHER = Path(__file__).with_name("launcher.py")


def _config(tmp_path: Path, store: Any) -> Path:
    config = tmp_path / "keelwatch.toml"
    url = store.url.render_as_string(hide_password=False)
    config.write_text(f'[store]\nurl = "{url}"\n')
    return config


def test_token_create_prints_only_the_token(store: Any, tmp_path: Path) -> None:
    config = _config(tmp_path, store)
    runner = CliRunner()
    app = build()
    created = runner.invoke(app, ["--config", str(config), "token", "create", "--role", "operator", "--name", "ci"])
    assert created.exit_code == 0, created.output
    lines = created.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kw_") and len(lines[0]) > 40
    listed = runner.invoke(app, ["--config", str(config), "token", "list", "--format", "json"])
    assert listed.exit_code == 0
    assert '"role": "operator"' in listed.stdout and lines[0] not in listed.stdout
    bad = runner.invoke(app, ["--config", str(config), "token", "create", "--role", "root"])
    assert bad.exit_code == 2
    revoked = runner.invoke(app, ["--config", str(config), "token", "revoke", "ci"])
    assert revoked.exit_code == 0 and "revoked token 1" in revoked.stdout
    assert runner.invoke(app, ["--config", str(config), "token", "list", "--format", "json"]).stdout.strip() == "[]"


def _wait_healthy(base: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early with {process.returncode}: {process.stderr.read().decode()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("serve did not answer /healthz in time")


def test_serve_runs_as_a_process_and_stops_cleanly_on_sigterm(store: Any, tmp_path: Path) -> None:
    config = _config(tmp_path, store)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(LAUNCHER.parent), *sys.path])}
    token = subprocess.run([sys.executable, str(LAUNCHER), "--config", str(config), "token", "create", "--role",
                            "viewer"], capture_output=True, text=True, env=env, check=True, timeout=60).stdout.strip()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, str(LAUNCHER), "--config", str(config), "serve", "--host",
                                "127.0.0.1", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env)
    try:
        _wait_healthy(base, process)
        assert httpx.get(f"{base}/readyz").json()["checks"] == {"store": "ok", "loops": "ok"}
        assert httpx.get(f"{base}/api/v1/images").status_code == 401
        me = httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["role"] == "viewer"
        assert httpx.get(f"{base}/api/v1/images", headers={"Authorization": f"Bearer {token}"}).json()["total"] == 0
        assert "keelwatch_http_request_duration_seconds" in httpx.get(f"{base}/metrics").text
        assert httpx.get(f"{base}/", follow_redirects=False).headers["location"].startswith("/login")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err
    assert out == b""


def test_loops_run_on_their_cadence_fail_alone_and_stop(store: Any) -> None:
    seen: list[str] = []
    started = threading.Event()

    def counting(ctx: LoopContext) -> None:
        seen.append("count")

    def failing(ctx: LoopContext) -> None:
        raise RuntimeError("feed unreachable")

    def slow(ctx: LoopContext) -> None:
        started.set()
        while not ctx.stopping:  # a long unit of work that checks for shutdown between steps
            time.sleep(0.01)

    loops = [Loop("count", timedelta(milliseconds=10), counting), Loop("fail", timedelta(milliseconds=10), failing),
             Loop("slow", timedelta(seconds=60), slow),
             Loop("off", timedelta(seconds=1), counting, enabled=lambda settings: False)]
    runner = LoopRunner(store, Settings(), loops)
    assert set(runner.states) == {"count", "fail", "slow"}
    runner.start()
    deadline = time.monotonic() + 10
    while (len(seen) < 5 or runner.status()["fail"]["failures"] < 3) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert started.wait(5)
    assert len(seen) >= 5
    status = runner.status()
    assert status["fail"]["last_error"] == "RuntimeError: feed unreachable" and status["count"]["failures"] == 0
    assert "fail: RuntimeError: feed unreachable" in (runner.readiness() or "")
    assert runner.stop(timeout=5)
    assert not any(s["running"] for s in runner.status().values())
    with pytest.raises(ValueError, match="registered twice"):
        LoopRunner(store, Settings(), [loops[0], loops[0]])


def test_loops_start_and_stop_with_the_app(store: Any) -> None:
    from fastapi.testclient import TestClient

    from keelwatch.service import build_app

    runs: list[int] = []
    app = build_app(store, Settings(), loops=[Loop("tick", timedelta(milliseconds=10), lambda ctx: runs.append(1))])
    with TestClient(app) as client:
        deadline = time.monotonic() + 5
        while not runs and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runs
        assert 'keelwatch_loop_runs_total{loop="tick"}' in client.get("/metrics").text
        assert client.get("/readyz").json()["checks"]["loops"] == "ok"
    assert app.state.loops.status()["tick"]["running"] is False
    assert not any(t.is_alive() for t in app.state.loops._threads)
