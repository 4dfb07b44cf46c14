"""``keelwatch agent`` and ``keelwatch runtime ingest --dry-run``, on a local Typer app built with ``register``.

The commands that store (ingest, baselines, deviations, accept, verify) are tested in test_ingest.py.
"""

import json
import os
from pathlib import Path

import typer
from typer.testing import CliRunner

from keelwatch.cli.runtime import Sensor, register
from keelwatch.runtime import SOURCES_BY_NAME

from .test_agent import CGROUPS, CONTAINERD_ID, make_process, net_line

DATA = Path(__file__).with_name("data")


def app() -> typer.Typer:
    built = typer.Typer()

    @built.callback()
    def root() -> None:
        pass

    register(built)
    return built


def run(*args, input=None):
    return CliRunner().invoke(app(), list(args), input=input)


def test_sensor_choices_are_the_registry():
    assert {s.value for s in Sensor} == set(SOURCES_BY_NAME)


def test_ingest_falco_file():
    result = run("runtime", "ingest", "--sensor", "falco", "--dry-run", str(DATA / "falco.jsonl"))
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["kind"] for e in events] == ["exec", "connect", "write", "open", "listen", "exec", "exec"]
    assert all(e["sensor"] == "falco" for e in events)
    assert "7 event(s) from 9 record(s); 0 malformed line(s) skipped" in result.stderr


def test_ingest_tetragon_from_stdin_with_malformed_lines():
    text = (DATA / "tetragon-malformed.jsonl").read_text()
    result = run("runtime", "ingest", "--sensor", "tetragon", "--dry-run", "-", input=text)
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 1
    assert "6 malformed line(s) skipped" in result.stderr and "line 2: no time" in result.stderr


def test_ingest_missing_file_and_unknown_sensor():
    missing = run("runtime", "ingest", "--sensor", "falco", "--dry-run", "/nonexistent/events.json")
    assert missing.exit_code == 2 and "cannot read" in missing.stderr
    assert run("runtime", "ingest", "--sensor", "sysdig", "-", input="").exit_code == 2


def test_agent_server_is_not_yet():
    result = run("agent", "--server", "https://keelwatch:8443", "--token", "t", "--once")
    assert result.exit_code == 2 and "needs keelwatch serve" in result.stderr


def test_agent_once_on_a_proc_tree(tmp_path):
    root = tmp_path / "proc"
    root.mkdir()
    make_process(root, 1, ppid=0, exe="/usr/lib/systemd/systemd", argv=["/sbin/init"], cgroup="0::/init.scope\n")
    make_process(root, 77, ppid=1, exe="/usr/bin/java", argv=["java", "-jar", "/app/app.jar"],
                 cgroup=(CGROUPS / "containerd-k8s-systemd-v2").read_text(), fds={"3": "/app/app.jar",
                                                                                  "4": "socket:[500]"},
                 tcp=[net_line(0, ("10.0.0.2", 41000), ("10.0.0.9", 9092), "01", 500)])
    out = tmp_path / "events.jsonl"
    result = run("agent", "--proc-root", str(root), "--once", "--output", str(out), "--node", "n1")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in out.read_text().splitlines()]
    java = [e for e in events if e["pid"] == 77]
    assert [(e["kind"], e.get("path") or e.get("address")) for e in java] == [
        ("exec", None), ("open", "/app/app.jar"), ("connect", "10.0.0.9")]
    assert all(e["container_id"] == CONTAINERD_ID and e["node"] == "n1" for e in java)
    assert "2 process reading(s)" in result.stderr
    # What the agent wrote, ingest reads back unchanged.
    again = run("runtime", "ingest", "--sensor", "agent", "--dry-run", str(out))
    assert [json.loads(line) for line in again.stdout.splitlines()] == events


def test_agent_once_on_this_machine():
    result = run("agent", "--once")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert any(e["kind"] == "exec" and e["pid"] == os.getpid() for e in events)
