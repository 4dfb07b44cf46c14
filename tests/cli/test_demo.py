"""`keelwatch demo` (what `make run` runs) on what ships with keelwatch alone, as a user without ../shared."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from keelwatch.cli.demo import BUNDLED, BUNDLED_FEEDS


def ids(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        return {json.loads(archive.read(n))["id"] for n in archive.namelist()}


def test_the_demo_replays_the_advisories_and_opens_only_what_was_published_since(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELWATCH_")}
    env["KEELWATCH_HOME"] = str(tmp_path / "home")
    out = subprocess.run([sys.executable, "-m", "keelwatch", "demo", "--no-shared"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "no data: Debian:12" in out.stdout  # the base layer is reported as not judged, not as clean
    config = tmp_path / "home" / "demo.toml"
    # The demo names the sync its update started after (that of the 2022 snapshot and its scans).
    since = re.search(r"findings events --since (\d+)", out.stdout.replace("\n", " "))
    assert since, out.stdout

    def keelwatch(*args: str) -> object:
        done = subprocess.run([sys.executable, "-m", "keelwatch", "--config", str(config), *args],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    images = {Path(i["reference"]).name.removesuffix(".oci.tar"): i["digest"]
              for i in keelwatch("images", "--format", "json")}  # type: ignore[attr-defined]
    assert set(images) == {p.name.removesuffix(".oci.tar") for p in BUNDLED.glob("*.oci.tar")}
    events = keelwatch("findings", "events", "--since", since[1], "--format", "json")
    old = ids(BUNDLED_FEEDS / "PyPI.2022-12-31.zip") | ids(BUNDLED_FEEDS / "npm.2022-12-31.zip")
    opened = [e for e in events if e["event"] == "opened"]  # type: ignore[attr-defined]
    assert opened and all(e["id"] not in old for e in opened)
    # v1 carries the old versions; v2 was rebuilt on fixed ones and gains nothing.
    assert {e["image_digest"] for e in opened} == {images["demo-web-v1"]}

    # The alerts went to the demo's JSON-lines channel, once each, never for the dev-only workload.
    messages = [json.loads(line) for line in (tmp_path / "home" / "demo-alerts.jsonl").read_text().splitlines()]
    assert messages and len({m["idempotency_key"] for m in messages}) == len(messages)
    assert all(any(c["environment"] == "prod" for c in m["containers"]) for m in messages)
    new_alerts = {m["advisory"] for m in messages if m["first_raised"] > opened[0]["time"][:19]}
    assert new_alerts  # the update's new disclosures raised alerts

    # Running it again rebuilds the same world rather than piling events onto it.
    again = subprocess.run([sys.executable, "-m", "keelwatch", "demo", "--no-shared"], capture_output=True,
                           text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert len(keelwatch("findings", "events", "--since", since[1], "--format", "json")) == len(events)  # type: ignore[arg-type]


def test_make_run_serves_the_demo_world_with_a_printed_token(tmp_path: Path) -> None:
    import signal
    import socket
    import threading
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELWATCH_")}
    env["KEELWATCH_HOME"] = str(tmp_path / "home")
    env["COLUMNS"] = "200"
    proc = subprocess.Popen([sys.executable, "-m", "keelwatch", "demo", "--no-shared", "--serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 120
        token = None
        while time.monotonic() < deadline and token is None:
            token = next((m[1] for line in list(lines) if (m := re.search(r"^\s+(kw_\S+)\s*$", line))), None)
            time.sleep(0.2)
        assert token, "".join(lines)
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        images = httpx.get(f"http://127.0.0.1:{port}/api/v1/images", headers={"Authorization": f"Bearer {token}"},
                           timeout=10)
        assert images.status_code == 200, images.text
        assert len(images.json()["items"]) == len(list(BUNDLED.glob("*.oci.tar")))
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/images", timeout=10).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
