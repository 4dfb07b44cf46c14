"""Baselines: learning by period or count, freezing, each deviation kind, repeats, accept, digests, JSON."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from keelwatch.runtime.baseline import (
    FROZEN,
    LEARNING,
    BaselineEngine,
    BaselineKey,
    BaselinePolicy,
    PeerGrouping,
    key_of,
    workload_of_pod,
)
from keelwatch.runtime.events import RuntimeEvent

T0 = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def ev(kind, minutes=0.0, *, digest=D1, pod="web-7d4b9c8f6-x2kqz", **fields):
    return RuntimeEvent(time=T0 + timedelta(minutes=minutes), sensor="tetragon", kind=kind, namespace="shop",
                        pod=pod, container_name="app", image_digest=digest, **fields)


def learned(policy=None, digest=D1):
    """An engine whose shop/web/app baseline learned a small, plausible behaviour, then froze."""
    engine = BaselineEngine(policy or BaselinePolicy(learning_period=timedelta(hours=1)), cluster="prod")
    engine.observe_all([
        ev("exec", 0, digest=digest, executable="/usr/local/bin/gunicorn", parent="/usr/bin/tini"),
        ev("exec", 1, digest=digest, executable="/usr/bin/python3.11", parent="/usr/local/bin/gunicorn"),
        ev("connect", 2, digest=digest, protocol="tcp", address="10.96.4.17", port=5432),
        ev("listen", 3, digest=digest, protocol="tcp", address="0.0.0.0", port=8000),
        ev("write", 4, digest=digest, path="/app/cache/session-1"),
        ev("write", 5, digest=digest, path="/tmp/upload-1"),
    ])
    return engine


@pytest.mark.parametrize(("pod", "workload"), [
    ("web-7d4b9c8f6-x2kqz", "web"),  # Deployment
    ("node-exporter-b7xqz", "node-exporter"),  # DaemonSet
    ("postgres-0", "postgres"),  # StatefulSet
    ("my-app-cache", "my-app-cache"),  # "cache" has vowels: not a generated suffix
    ("standalone", "standalone"),
])
def test_workload_of_pod(pod, workload):
    assert workload_of_pod(pod) == workload


def test_keys():
    assert key_of(ev("exec"), "prod") == BaselineKey("prod", "shop", "web", "app", D1)
    named = RuntimeEvent(time=T0, sensor="tetragon", kind="exec", pod="xwing", workload="xwing-deploy")
    assert key_of(named).workload == "xwing-deploy"  # the sensor's own word wins over the guess
    docker = RuntimeEvent(time=T0, sensor="agent", kind="exec", container_id="abc")
    assert key_of(docker).workload == "container:abc"


def test_learning_then_frozen_by_period():
    engine = learned()
    [baseline] = engine.baselines.values()
    assert baseline.state == LEARNING and engine.deviations() == []
    assert baseline.execs == {"/usr/local/bin/gunicorn", "/usr/bin/python3.11"}
    assert baseline.peers == {("tcp", "10.96.4.0/24", 5432)}
    assert baseline.listeners == {("tcp", 8000)} and baseline.write_dirs == {"/app/cache"}  # /tmp is writable
    # Known behaviour after the period: silence, and the baseline is frozen.
    assert engine.observe(ev("exec", 61, executable="/usr/bin/python3.11", parent="/usr/local/bin/gunicorn")) == []
    assert baseline.state == FROZEN and baseline.frozen_at == T0 + timedelta(minutes=61)
    assert engine.observe(ev("connect", 62, protocol="tcp", address="10.96.4.200", port=5432)) == []  # same /24
    assert engine.observe(ev("write", 63, path="/app/cache/session-99")) == []


def test_learning_by_event_count():
    engine = BaselineEngine(BaselinePolicy(learning_period=None, learning_events=2))
    assert engine.observe_all([ev("exec", 0, executable="/a"), ev("exec", 0, executable="/b")]) == []
    [deviation] = engine.observe(ev("exec", 0, executable="/c"))
    assert deviation.kind == "new_exec"


def test_each_deviation_kind_and_severity():
    engine = learned()
    found = engine.observe_all([
        ev("exec", 70, executable="/bin/sh", parent="/usr/bin/python3.11"),
        ev("exec", 71, executable="/usr/bin/python3.11", parent="/bin/sh"),
        ev("exec", 72, executable="/tmp/.x/miner", parent="/bin/sh"),
        ev("connect", 73, protocol="tcp", address="203.0.113.7", port=4444),
        ev("connect", 73.5, protocol="tcp", address="10.96.4.17", port=6379),  # known host, new port
        ev("listen", 74, protocol="tcp", address="0.0.0.0", port=31337),
        ev("write", 75, path="/etc/cron.d/backdoor"),
        ev("write", 76, path="/app/static/index.html"),
        ev("open", 77, path="/usr/lib/libz.so.1"),  # not behaviour: no deviation
    ])
    assert [(d.kind, d.severity, d.detail) for d in found] == [
        ("new_exec", "high", "/bin/sh (parent /usr/bin/python3.11)"),
        ("new_exec_pair", "low", "/bin/sh → /usr/bin/python3.11"),
        ("exec_from_writable_path", "critical", "/tmp/.x/miner (parent /bin/sh)"),
        ("new_peer", "medium", "tcp 203.0.113.0/24 port 4444"),
        ("new_peer", "medium", "tcp 10.96.4.0/24 port 6379"),
        ("new_listener", "high", "tcp port 31337"),
        ("unexpected_write", "high", "write to /etc/cron.d/backdoor"),
        ("unexpected_write", "medium", "write to /app/static/index.html"),
    ]
    first = found[0].to_json()
    assert {k: first[k] for k in ("workload", "container", "image_digest", "count")} == {
        "workload": "web", "container": "app", "image_digest": D1, "count": 1}
    assert first["evidence"]["executable"] == "/bin/sh"


def test_a_writable_exec_is_flagged_even_while_learning_unless_told_not_to():
    strict = BaselineEngine(BaselinePolicy())
    assert [d.kind for d in strict.observe(ev("exec", 0, executable="/dev/shm/x"))] == ["exec_from_writable_path"]
    lenient = BaselineEngine(BaselinePolicy(flag_writable_exec_while_learning=False))
    assert lenient.observe(ev("exec", 0, executable="/dev/shm/x")) == []
    assert "/dev/shm/x" in next(iter(lenient.baselines.values())).execs


def test_repeats_count_instead_of_opening_new_deviations():
    engine = learned()
    opened = [engine.observe(ev("connect", 70 + i, protocol="tcp", address="203.0.113.7", port=4444)) for i in range(5)]
    assert [len(o) for o in opened] == [1, 0, 0, 0, 0]
    [deviation] = engine.deviations()
    assert deviation.count == 5 and deviation.last_seen == T0 + timedelta(minutes=74)
    # A skewed sensor clock reporting an earlier time moves first_seen back, not forward.
    engine.observe(ev("connect", 65, protocol="tcp", address="203.0.113.8", port=4444))
    assert deviation.count == 6 and deviation.first_seen == T0 + timedelta(minutes=65)


def test_accepting_a_deviation_puts_it_into_the_baseline():
    engine = learned()
    [shell] = engine.observe(ev("exec", 70, executable="/bin/sh", parent="/usr/bin/python3.11"))
    [peer] = engine.observe(ev("connect", 71, protocol="tcp", address="203.0.113.7", port=443))
    [write] = engine.observe(ev("write", 72, path="/var/lib/app/state.db"))
    for deviation in (shell, peer, write):
        engine.accept(deviation.id)
    assert engine.deviations() == []
    assert engine.observe_all([
        ev("exec", 80, executable="/bin/sh", parent="/usr/bin/python3.11"),
        ev("connect", 81, protocol="tcp", address="203.0.113.99", port=443),
        ev("write", 82, path="/var/lib/app/state.db-journal"),
    ]) == []
    with pytest.raises(KeyError):
        engine.accept(shell.id)


def test_a_new_digest_starts_a_new_baseline_or_inherits():
    fresh = learned()
    fresh.observe(ev("exec", 70, executable="/usr/bin/python3.11", parent="/usr/local/bin/gunicorn"))
    assert fresh.observe(ev("exec", 71, digest=D2, executable="/bin/sh")) == []  # D2 is learning, from nothing
    assert len(fresh.baselines) == 2
    assert fresh.baselines[BaselineKey("prod", "shop", "web", "app", D2)].execs == {"/bin/sh"}

    inherit = learned(BaselinePolicy(learning_period=timedelta(hours=1), inherit_previous_digest=True))
    inherit.observe(ev("exec", 70, digest=D2, executable="/bin/true"))
    new = inherit.baselines[BaselineKey("prod", "shop", "web", "app", D2)]
    assert new.inherited_from == D1 and new.state == LEARNING
    assert {"/usr/local/bin/gunicorn", "/usr/bin/python3.11", "/bin/true"} == new.execs
    old = inherit.baselines[BaselineKey("prod", "shop", "web", "app", D1)]
    assert "/bin/true" not in old.execs  # copied, not shared


def test_peer_grouping_rules():
    exact = PeerGrouping(ipv4_prefix=32, ipv6_prefix=128)
    assert exact.group("203.0.113.7") == "203.0.113.7/32"
    named = PeerGrouping(networks=("10.96.0.0/12", "fd00::/8"))
    assert named.group("10.100.3.4") == "10.96.0.0/12" and named.group("fd00::1:2") == "fd00::/8"
    assert named.group("2001:db8::1") == "2001:db8::/64" and named.group("db.internal") == "db.internal"
    with pytest.raises(ValueError):
        PeerGrouping(networks=("10.0.0.0/33",))
    with pytest.raises(ValueError):
        BaselinePolicy(learning_period=None, learning_events=None)


def test_bounded_memory():
    engine = BaselineEngine(BaselinePolicy(learning_period=None, learning_events=1, max_deviations=3, max_items=2))
    engine.observe_all([ev("exec", 0, executable=f"/learn/{i}") for i in range(1)])
    engine.observe_all([ev("exec", 1, executable=f"/new/{i}") for i in range(10)])
    [baseline] = engine.baselines.values()
    assert len(engine.deviations()) == 3 and baseline.dropped_deviations == 7
    learning = BaselineEngine(BaselinePolicy(max_items=2))
    learning.observe_all([ev("exec", 0, executable=f"/bin/{i}") for i in range(5)])
    [baseline] = learning.baselines.values()
    assert len(baseline.execs) == 2 and baseline.dropped_items == 3


def test_state_round_trips_through_json():
    engine = learned()
    engine.observe_all([ev("exec", 70, executable="/bin/sh", parent="/usr/bin/python3.11"),
                        ev("listen", 71, protocol="udp", port=53)])
    text = json.dumps(engine.to_json())
    again = BaselineEngine.from_json(json.loads(text), engine.policy, cluster="prod")
    assert again.to_json() == engine.to_json()
    # The restored engine goes on where the first stopped: repeats count, acceptance works.
    assert again.observe(ev("exec", 72, executable="/bin/sh", parent="/usr/bin/python3.11")) == []
    [shell] = [d for d in again.deviations() if d.kind == "new_exec"]
    assert shell.count == 2
    again.accept(shell.id)
    assert [d.kind for d in again.deviations()] == ["new_listener"]
