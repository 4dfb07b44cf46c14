"""Falco and Tetragon output → RuntimeEvent, on samples written from the documented formats (data/README.md)."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keelwatch.runtime import SOURCES_BY_NAME, ReadStats, RuntimeEvent, read_lines
from keelwatch.runtime.falco import FalcoSource
from keelwatch.runtime.tetragon import TetragonSource

DATA = Path(__file__).with_name("data")
NETPERF = "sha256:8e86f744bfea165fd4ce68caa05abc96500f40130b857773186401926af7e9e6"
XWING = "551e161c47d8ff0eb665438a7bcd5b4e3ef5a297282b40a92b7c77d6bd168eb3"


def read(sensor: str, name: str) -> tuple[list[RuntimeEvent], ReadStats]:
    stats = ReadStats()
    with open(DATA / name, "rb") as f:
        events = list(read_lines(SOURCES_BY_NAME[sensor], f, stats))
    return events, stats


def test_falco_alerts_become_events_of_each_kind():
    events, stats = read("falco", "falco.jsonl")
    assert (stats.records, stats.skipped) == (9, 0)
    assert stats.ignored == 2  # the k8s_audit alert and the 2019 alert without evt.type
    assert [e.kind for e in events] == ["exec", "connect", "write", "open", "listen", "exec", "exec"]
    shell, connect, write, read_, listen, host, dropped = events
    assert shell.time == datetime(2024, 5, 2, 10, 14, 5, 123456, tzinfo=UTC)
    assert (shell.sensor, shell.container_id) == ("falco", "551e161c47d8")
    assert (shell.namespace, shell.pod) == ("default", "xwing")
    assert (shell.image, shell.image_digest, shell.container_name) == ("docker.io/tgraf/netperf", NETPERF, "spaceship")
    assert (shell.executable, shell.parent, shell.args, shell.pid) == ("/bin/bash", "runc", "bash", 52699)
    assert (shell.rule, shell.priority, shell.node) == ("Terminal shell in container", "Notice", "node-a")
    assert (connect.address, connect.port, connect.protocol) == ("203.0.113.7", 4444, "tcp")
    assert connect.executable == "/usr/bin/python3.11"
    assert (write.path, read_.path) == ("/etc/cron.d/backdoor", "/etc/shadow")
    assert (listen.address, listen.port) == ("0.0.0.0", 8080)
    assert host.container_id == "" and host.namespace == ""  # "host" and nulls are "not in a container"
    # "<NA>" is Falco's "could not fill": never a digest; an offset time is converted to UTC.
    assert (dropped.image, dropped.image_digest, dropped.parent) == ("", "", "/usr/bin/bash")
    assert dropped.time == datetime(2024, 5, 2, 10, 20, tzinfo=UTC)


def test_falco_malformed_lines_are_reported_and_skipped():
    events, stats = read("falco", "falco-malformed.jsonl")
    assert stats.skipped == 6 and stats.records == 7  # the blank line is not a record
    assert [p.line for p in stats.problems] == [1, 3, 4, 5, 6, 7]
    assert "not JSON" in stats.problems[0].reason
    assert "output_fields" in stats.problems[2].reason
    assert "port" in stats.problems[4].reason
    assert [e.executable for e in events] == ["/bin/sh"]  # the stream goes on after bad lines


def test_falcosidekick_webhook_body():
    body = (DATA / "falcosidekick-webhook.json").read_bytes()
    [event] = FalcoSource().parse_webhook(body)
    assert (event.kind, event.address, event.port) == ("connect", "198.51.100.20", 443)
    assert event.executable == "/usr/bin/curl"
    assert (event.image_digest, event.pod, event.node) == (NETPERF, "xwing", "node-a")


def test_tetragon_events_become_events_of_each_kind():
    events, stats = read("tetragon", "tetragon.jsonl")
    assert (stats.records, stats.skipped, stats.ignored) == (10, 0, 2)  # process_exit, tcp_close
    assert [e.kind for e in events] == ["exec", "connect", "write", "open", "listen", "connect", "open", "exec"]
    exec_, connect, write, read_, listen, dns, loaded, host = events
    assert exec_.time == datetime(2023, 10, 6, 22, 3, 57, 700326, tzinfo=UTC)
    assert (exec_.container_id, exec_.runtime) == (XWING, "containerd")
    assert (exec_.namespace, exec_.pod, exec_.workload) == ("default", "xwing", "xwing")
    assert exec_.container_name == "spaceship"
    assert (exec_.image, exec_.image_digest) == ("docker.io/tgraf/netperf:latest", NETPERF)
    assert (exec_.executable, exec_.parent, exec_.args) == (
        "/usr/bin/curl", "/bin/bash", "https://ebpf.io/applications/#tetragon")
    assert exec_.node == "gke-john-632-default-pool-7041cac0-9s95" and exec_.pid == 52699
    assert (connect.address, connect.port, connect.protocol) == ("104.198.14.52", 443, "tcp")
    assert connect.rule == "monitor-network-activity-outside-cluster-cidr-range"
    assert connect.priority == "KPROBE_ACTION_POST"
    assert (write.path, write.executable) == ("/etc/bar", "/bin/bash")
    assert read_.path == "/etc/shadow"
    assert (listen.address, listen.port) == ("0.0.0.0", 8080)
    assert (dns.protocol, dns.address, dns.port) == ("udp", "10.96.0.10", 53)
    assert (loaded.path, loaded.executable) == ("/plugins/libevil.so", "/usr/bin/python3.11")
    assert (host.container_id, host.pod, host.parent) == ("", "", "/usr/lib/systemd/systemd")


def test_tetragon_malformed_lines_are_reported_and_skipped():
    events, stats = read("tetragon", "tetragon-malformed.jsonl")
    assert stats.skipped == 6
    assert [p.line for p in stats.problems] == [1, 2, 3, 4, 5, 6]
    assert "time" in stats.problems[1].reason and "port" in stats.problems[3].reason
    assert len(events) == 1 and events[0].executable == "/usr/bin/curl"


def test_tetragon_openat_string_arg_flags():
    source = TetragonSource()
    base = {"process": {"binary": "/usr/bin/python3"}, "function_name": "__x64_sys_openat"}
    line = {"time": "2024-01-01T00:00:00Z"}
    wr = source.parse_record({**line, "process_kprobe": {**base, "args": [
        {"int_arg": -100}, {"string_arg": "/var/log/app.log"}, {"int_arg": 0o1101}]}})
    rd = source.parse_record({**line, "process_kprobe": {**base, "args": [
        {"int_arg": -100}, {"string_arg": "/usr/lib/libz.so.1"}, {"int_arg": 0o2000000}]}})
    assert [(e.kind, e.path) for e in wr + rd] == [("write", "/var/log/app.log"), ("open", "/usr/lib/libz.so.1")]


def test_every_event_round_trips_through_its_json_form():
    for sensor, name in (("falco", "falco.jsonl"), ("tetragon", "tetragon.jsonl")):
        for event in read(sensor, name)[0]:
            assert RuntimeEvent.from_json(json.loads(json.dumps(event.to_json()))) == event


@pytest.mark.parametrize("bad", [
    {"sensor": "agent", "kind": "exec"},
    {"time": "2024-01-01T00:00:00Z", "sensor": "agent", "kind": "teleport"},
    {"time": "2024-01-01T00:00:00Z", "sensor": "agent", "kind": "exec", "port": "80"},
    {"time": "2024-01-01T00:00:00", "sensor": "agent", "kind": "exec"},
    {"time": "2024-01-01T00:00:00Z", "sensor": "agent", "kind": "exec", "colour": "red"},
])
def test_agent_lines_are_checked(bad):
    events, stats = [], ReadStats()
    events = list(read_lines(SOURCES_BY_NAME["agent"], [json.dumps(bad)], stats))
    assert events == [] and stats.skipped == 1


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-02T10:14:05.123456789Z", datetime(2024, 5, 2, 10, 14, 5, 123456, tzinfo=UTC)),
    ("2024-05-02T10:14:05Z", datetime(2024, 5, 2, 10, 14, 5, tzinfo=UTC)),
    ("2024-05-02T12:14:05.5+02:00", datetime(2024, 5, 2, 10, 14, 5, 500000, tzinfo=UTC)),
    (1714644845123456789, datetime(2024, 5, 2, 10, 14, 5, 123457, tzinfo=UTC)),
])
def test_times(text, expected):
    from keelwatch.runtime.events import parse_time

    assert abs(parse_time(text) - expected).total_seconds() < 1e-6


@pytest.mark.parametrize("bad", ["2024-05-02T10:14:05.12345678xZ", "2024-05-02T10:14:05", "soon", "", True,
                                 "2024-13-02T10:14:05.123456789Z"])
def test_bad_times(bad):
    from keelwatch.runtime.events import parse_time

    with pytest.raises(ValueError):
        parse_time(bad)
