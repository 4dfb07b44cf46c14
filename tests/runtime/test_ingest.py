"""Runtime events into the store: baselines, deviations alerted once, runtime SBOM verification, late attribution.

The world: the shared debian12-python image, cataloged and its layers listed, run by the ``xwing``
pod of the Falco and Tetragon samples (its ``spaceship`` container) in an inventory written
through the inventory store as a source would. The image is a minimal one: Python 3.11 and
OpenSSL, no shell — so the samples' ``bash``, ``curl`` and ``nc`` are code that is not in the
image. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from keelwatch.alerts.outbox import deliver
from keelwatch.cli.context import AppContext
from keelwatch.cli.runtime import register
from keelwatch.config import AlertSettings, ChannelSettings, RuntimeSettings, Settings
from keelwatch.runtime import get, read_lines
from keelwatch.runtime.events import RuntimeEvent
from keelwatch.runtime.ingest import Ingestor, accept, policy_of
from keelwatch.runtime.inuse import in_use, verify_containers
from keelwatch.store import Store
from keelwatch.store import runtime as stored
from keelwatch.store.inventory import ContainerValues, apply_snapshot

pytestmark = pytest.mark.datasets

DATA = Path(__file__).with_name("data")
FALCO_ID = "551e161c47d8"
BATCH_ID = "0123456789ab" + "cd" * 26  # the Falco sample's /tmp/x container, as Docker names it in full


@cache
def shared_image(images_dir: Path) -> tuple[Any, Any]:
    from keelwatch.catalog import CATALOGERS
    from keelwatch.catalog.walker import catalog_image
    from keelwatch.images import open_image
    from keelwatch.runtime.layerfiles import list_image_files

    ref = f"oci-archive:{images_dir}/debian12-python.oci.tar"
    return catalog_image(open_image(ref), CATALOGERS), list_image_files(open_image(ref))


def k8s_container(digest: str) -> ContainerValues:
    return ContainerValues(
        key="eu-1/default/xwing/spaceship", cluster="eu-1", namespace="default", workload_kind="Deployment",
        workload="xwing", pod="xwing", instance="8c3f4a2e-1b7d-4e55-9a61-0d2f6c9b1e77", container="spaceship",
        container_type="container", image="registry.example/alliance/xwing:1.0",
        reference="registry.example/alliance/xwing:1.0", image_id=f"registry.example/alliance/xwing@{digest}",
        digest=digest, index_digest=None, tag_digest=None, platform="linux/amd64", node="node-a", state="running",
        labels={}, annotations={}, owner="alliance", team="pilots", environment="prod", resolution_error=None,
        problem=None)


def docker_container(digest: str) -> ContainerValues:
    return ContainerValues(
        key="build-host/batch", cluster="build-host", namespace="", workload_kind="", workload="batch", pod="batch",
        instance=BATCH_ID, container="batch", container_type="container", image="registry.example/batch:2",
        reference="registry.example/batch:2", image_id=digest, digest=digest, index_digest=None, tag_digest=None,
        platform="linux/amd64", node="node-b", state="running", labels={}, annotations={}, owner="ops", team="",
        environment="prod", resolution_error=None, problem=None)


def learning(start: datetime) -> list[RuntimeEvent]:
    """An hour of ordinary work in xwing: Python runs and asks the cluster DNS (as Falco reports it)."""
    base = {"sensor": "falco", "container_id": FALCO_ID, "namespace": "default", "pod": "xwing",
            "container_name": "spaceship", "executable": "/usr/bin/python3.11"}
    return [
        RuntimeEvent(time=start, kind="exec", parent="runc", args="python3 /app/run.py", **base),
        RuntimeEvent(time=start + timedelta(minutes=1), kind="connect", protocol="udp", address="10.96.0.10", port=53,
                     parent="runc", **base),
        RuntimeEvent(time=start + timedelta(minutes=2), kind="open", path="/usr/lib/x86_64-linux-gnu/libssl.so.3",
                     **base),
    ]


def sample(name: str) -> list[RuntimeEvent]:
    sensor = name.split(".")[0]
    with (DATA / name).open("rb") as handle:
        return list(read_lines(get(sensor), handle))


@pytest.fixture
def world(store: Store, images_dir: Path, tmp_path: Path) -> dict[str, Any]:
    catalog, files = shared_image(images_dir)
    store.save_catalog(catalog)
    digest = catalog.image.manifest_digest
    with store.session() as session:
        stored.save_image_files(session, digest, files.files, files.links)
        apply_snapshot(session, "prod-eu", [k8s_container(digest)], datetime.now(UTC))
    alerts = tmp_path / "alerts.jsonl"
    channel = ChannelSettings(name="archive", kind="jsonl", path=str(alerts))
    settings = Settings(runtime=RuntimeSettings(learning_period=timedelta(minutes=30)),
                        alerts=AlertSettings(channels=[channel]))
    return {"digest": digest, "settings": settings, "alerts": alerts, "catalog": catalog}


def delivered(store: Store, world: dict[str, Any]) -> list[dict[str, Any]]:
    report = deliver(store, world["settings"].alerts)
    assert report.failed == 0 and report.parked == 0
    path: Path = world["alerts"]
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    path.unlink(missing_ok=True)
    return lines


def deviations(store: Store) -> dict[tuple[str, str], dict[str, Any]]:
    with store.session(write=False) as session:
        return {(d["kind"], d["detail"]): d for d in map(stored.deviation_json, stored.list_deviations(session))}


def test_falco_and_tetragon_events_reach_baselines_deviations_are_alerted_once(store: Store,
                                                                               world: dict[str, Any]) -> None:
    digest, settings = world["digest"], world["settings"]
    start = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
    first = Ingestor(store, settings).ingest(learning(start))
    assert (first.attributed, first.deviations_opened, first.alerts_queued) == (3, 0, 0)
    with store.session(write=False) as session:
        (row,) = stored.list_baselines(session)
    assert (row.cluster, row.namespace, row.workload, row.container, row.image_digest, row.phase) == (
        "eu-1", "default", "xwing", "spaceship", digest, "learning")
    assert row.state["execs"] == ["/usr/bin/python3.11"] and row.state["peers"] == [["udp", "10.96.0.0/24", 53]]

    # Two hours later Falco reports the intrusion: the baseline froze, each new thing is a deviation.
    falco = Ingestor(store, settings).ingest(sample("falco.jsonl"))
    assert (falco.events, falco.attributed, falco.host, falco.unattributed) == (7, 5, 1, 1)
    found = deviations(store)
    bash = found[("new_exec", "/bin/bash (parent runc)")]
    assert bash["severity"] == "high" and bash["workload"] == "xwing" and bash["container"] == "spaceship"
    assert bash["image_digest"] == digest and bash["count"] == 1 and bash["first_seen"] == "2024-05-02T10:14:05.123456Z"
    peer = found[("new_peer", "tcp 203.0.113.0/24 port 4444")]
    assert peer["severity"] == "medium" and peer["evidence"]["address"] == "203.0.113.7"
    assert ("unexpected_write", "write to /etc/cron.d/backdoor") in found
    assert ("new_listener", "tcp port 8080") in found
    # bash and nc are not in the image: drift, flagged as such on top of the new exec.
    assert found[("drift", "ran /bin/bash, which is not in the image")]["severity"] == "critical"
    assert ("drift", "ran /usr/bin/nc.openbsd, which is not in the image") in found
    assert all(d["cluster"] == "eu-1" for d in found.values())

    messages = delivered(store, world)
    assert sorted(m["kind"] for m in messages) == ["drift", "new_exec", "new_listener", "new_peer",
                                                   "unexpected_write"]  # one per workload and kind
    by_kind = {m["kind"]: m for m in messages}
    assert all(m["event"] == "runtime_deviation" and m["workload"] == "xwing" for m in messages)
    assert by_kind["drift"]["count"] == 3 and by_kind["drift"]["severity"] == "critical"  # bash, cat, nc
    assert by_kind["new_exec"]["deviations"][0]["detail"] == "/bin/bash (parent runc)"
    assert by_kind["new_peer"]["owners"] == ["alliance", "pilots"]
    assert by_kind["new_peer"]["containers"][0]["environment"] == "prod"
    assert len({m["idempotency_key"] for m in messages}) == len(messages)

    # The same events again: counts rise, nothing is said twice.
    again = Ingestor(store, settings).ingest(sample("falco.jsonl"))
    assert again.deviations_opened == 0 and again.alerts_queued == 0 and again.deviations_repeated > 0
    assert delivered(store, world) == []
    assert deviations(store)[("new_exec", "/bin/bash (parent runc)")]["count"] == 2

    # Tetragon's view of the same pod (attributed by pod and container name): curl is new, its
    # peer is new, the plugin from a volume is drift; the listener on 8080 is a repeat.
    tetragon = Ingestor(store, settings).ingest(sample("tetragon.jsonl"))
    assert tetragon.attributed == 7 and tetragon.host == 1
    found = deviations(store)
    assert found[("new_exec", "/usr/bin/curl (parent /bin/bash)")]["severity"] == "high"
    assert ("new_peer", "tcp 104.198.14.0/24 port 443") in found
    assert ("new_peer", "udp 10.96.0.0/24 port 53") not in found  # learned
    assert found[("drift", "loaded /plugins/libevil.so, which is not in the image")]["severity"] == "high"
    assert found[("new_listener", "tcp port 8080")]["count"] == 3
    kinds = sorted(m["kind"] for m in delivered(store, world))
    assert kinds == ["drift", "new_exec", "new_peer", "unexpected_write"]


def test_verification_over_the_store_marks_in_use_packages_and_drift(store: Store, world: dict[str, Any]) -> None:
    digest, settings = world["digest"], world["settings"]
    with store.session(write=False) as session:
        assert set(in_use(session, digest).values()) == {None}  # nothing observed: unknown
    ingestor = Ingestor(store, settings)
    ingestor.ingest(learning(datetime(2024, 5, 2, 8, 0, tzinfo=UTC)))
    ingestor.ingest(sample("tetragon.jsonl"))
    with store.session(write=False) as session:
        (xwing,) = verify_containers(session)
        used = in_use(session, digest)
    assert (xwing["workload"], xwing["container"], xwing["image_digest"]) == ("xwing", "spaceship", digest)
    assert xwing["catalog"] and xwing["image_files"]
    names = {(p["ecosystem"], p["name"]) for p in xwing["in_use_packages"]}
    assert ("Debian:12", "python3.11-minimal") in names and ("Debian:12", "libssl3") in names
    drift = [d["path"] for d in xwing["drift"]]
    assert {"/plugins/libevil.so", "/usr/bin/curl", "/bin/bash", "/bin/cat", "/usr/bin/nc"} <= set(drift)
    assert all(d["severity"] == "high" for d in xwing["drift"])
    packages = {p.id: p for p in world["catalog"].packages}
    in_use_names = {packages[pid].name for pid, flag in used.items() if flag}
    assert {"python3.11-minimal", "libssl3"} <= in_use_names
    assert used and False in used.values()  # the image's other packages did not run


def test_unattributed_events_are_kept_and_attributed_after_the_inventory_sync(store: Store,
                                                                              world: dict[str, Any]) -> None:
    digest, settings = world["digest"], world["settings"]
    report = Ingestor(store, settings).ingest(sample("falco.jsonl"))
    assert report.unattributed == 1 and report.still_unattributed == 1  # /tmp/x in 0123456789ab
    with store.session() as session:
        apply_snapshot(session, "build-host", [docker_container(digest)], datetime.now(UTC))
    later = Ingestor(store, settings).attribute_pending()
    assert later.attributed_later == 1
    with store.session(write=False) as session:
        assert stored.count_unattributed(session) == 0
        baselines = {(b.cluster, b.workload) for b in stored.list_baselines(session)}
    assert ("build-host", "batch") in baselines
    found = deviations(store)
    # Learning, yet flagged: run from a writable path, and not in the image.
    assert found[("exec_from_writable_path", "/tmp/x (parent /usr/bin/bash)")]["severity"] == "critical"
    assert found[("drift", "ran /tmp/x, which is not in the image")]["workload"] == "batch"
    kinds = {(m["workload"], m["kind"]) for m in delivered(store, world)}
    assert {("batch", "exec_from_writable_path"), ("batch", "drift")} <= kinds
    assert Ingestor(store, settings).attribute_pending().attributed_later == 0


def test_unattributed_events_are_bounded(store: Store, world: dict[str, Any], monkeypatch) -> None:
    import keelwatch.runtime.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "MAX_UNATTRIBUTED", 5)
    at = datetime(2024, 5, 2, tzinfo=UTC)
    strays = [RuntimeEvent(time=at + timedelta(seconds=i), sensor="agent", kind="exec", container_id=f"{i:064x}",
                           executable="/bin/true") for i in range(12)]
    report = Ingestor(store, world["settings"]).ingest(strays)
    assert (report.unattributed, report.unattributed_dropped, report.still_unattributed) == (12, 7, 5)
    with store.session(write=False) as session:
        kept = [e["container_id"] for _, e in stored.pending_unattributed(session)]
    assert kept == [f"{i:064x}" for i in range(7, 12)]  # the newest are kept


def test_accepting_a_deviation_puts_it_into_the_baseline(store: Store, world: dict[str, Any]) -> None:
    settings = world["settings"]
    Ingestor(store, settings).ingest(learning(datetime(2024, 5, 2, 8, 0, tzinfo=UTC)))
    Ingestor(store, settings).ingest(sample("falco.jsonl"))
    found = deviations(store)
    peer = found[("new_peer", "tcp 203.0.113.0/24 port 4444")]
    drift = found[("drift", "ran /bin/bash, which is not in the image")]
    assert accept(store, settings, peer["id"][:8], by="alice")["accepted_by"] == "alice"
    accept(store, settings, drift["id"])
    with store.session(write=False) as session:
        (baseline,) = stored.list_baselines(session)
        assert ["tcp", "203.0.113.0/24", 4444] in baseline.state["peers"]
        assert "/bin/bash" in baseline.state["accepted_paths"]
    delivered(store, world)
    # Seen again: the accepted ones stay quiet, the others only count.
    again = Ingestor(store, settings).ingest(sample("falco.jsonl"))
    assert again.deviations_opened == 0
    after = deviations(store)
    assert ("new_peer", "tcp 203.0.113.0/24 port 4444") not in after
    assert ("drift", "ran /bin/bash, which is not in the image") not in after
    assert delivered(store, world) == []


def test_a_new_digest_starts_a_new_baseline_or_inherits_it(store: Store, world: dict[str, Any]) -> None:
    settings = world["settings"]
    settings.runtime.inherit_baseline = True
    Ingestor(store, settings).ingest(learning(datetime(2024, 5, 2, 8, 0, tzinfo=UTC)))
    with store.session() as session:
        rebuilt = k8s_container("sha256:" + "ab" * 32)
        apply_snapshot(session, "prod-eu", [rebuilt], datetime.now(UTC))
    Ingestor(store, settings).ingest(learning(datetime(2024, 5, 9, 8, 0, tzinfo=UTC)))
    with store.session(write=False) as session:
        rows = {b.image_digest: b for b in stored.list_baselines(session)}
    assert set(rows) == {world["digest"], "sha256:" + "ab" * 32}
    assert rows["sha256:" + "ab" * 32].inherited_from == world["digest"]
    assert policy_of(settings.runtime).inherit_previous_digest


def cli(store: Store, settings: Settings, *args: str, input: str | None = None) -> Any:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        pass

    register(app)
    return CliRunner().invoke(app, list(args), input=input, obj=AppContext(_settings=settings, _store=store))


def test_cli_ingest_baselines_deviations_accept_verify(store: Store, world: dict[str, Any]) -> None:
    settings = world["settings"]
    learned = "\n".join(json.dumps({**e.to_json(), "sensor": "agent"})
                         for e in learning(datetime(2024, 5, 2, 8, 0, tzinfo=UTC)))
    result = cli(store, settings, "runtime", "ingest", "--sensor", "agent", "-", input=learned)
    assert result.exit_code == 0, result.output
    assert "3 attributed to 1 baseline(s)" in result.stderr
    result = cli(store, settings, "runtime", "ingest", "--sensor", "falco", str(DATA / "falco.jsonl"),
                 "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["attributed"] == 5 and summary["deviations_opened"] == 7 and summary["alerts_queued"] == 5

    baselines = json.loads(cli(store, settings, "runtime", "baselines", "--workload", "xwing", "--format",
                               "json").stdout)
    assert [(b["workload"], b["container"], b["state"]) for b in baselines] == [("xwing", "spaceship", "frozen")]
    assert json.loads(cli(store, settings, "runtime", "baselines", "--workload", "nope", "--format",
                          "json").stdout) == []

    listed = json.loads(cli(store, settings, "runtime", "deviations", "--since", "2024-05-02", "--format",
                            "json").stdout)
    assert len(listed) == 7
    interface = {"kind", "severity", "workload", "container", "image_digest", "detail", "first_seen", "count"}
    assert all(interface <= d.keys() for d in listed)
    assert json.loads(cli(store, settings, "runtime", "deviations", "--since", "2024-05-02T10:16:00Z",
                          "--format", "json").stdout) != listed
    assert cli(store, settings, "runtime", "deviations", "--since", "whenever").exit_code == 2

    peer = next(d for d in listed if d["kind"] == "new_peer")
    result = cli(store, settings, "runtime", "accept", peer["id"][:10], "--by", "alice")
    assert result.exit_code == 0 and "accepted" in result.stderr
    assert cli(store, settings, "runtime", "accept", "ffffffffffff").exit_code == 1
    remaining = json.loads(cli(store, settings, "runtime", "deviations", "--format", "json").stdout)
    assert len(remaining) == 6
    everything = json.loads(cli(store, settings, "runtime", "deviations", "--all", "--format", "json").stdout)
    assert [d["accepted_by"] for d in everything if d["accepted"]] == ["alice"]

    verified = json.loads(cli(store, settings, "runtime", "verify", "--format", "json").stdout)
    (container,) = verified
    assert {"in_use_packages", "unpackaged", "drift"} <= container.keys()
    assert "/bin/bash" in [d["path"] for d in container["drift"]]
    assert cli(store, settings, "runtime", "verify").exit_code == 0
    assert cli(store, settings, "runtime", "deviations").exit_code == 0
    assert cli(store, settings, "runtime", "baselines").exit_code == 0


def test_a_clock_running_ahead_does_not_end_learning_early(store: Store, world: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    ahead = [RuntimeEvent(time=now + timedelta(days=2), sensor="falco", kind="exec", container_id=FALCO_ID,
                          namespace="default", pod="xwing", container_name="spaceship", executable="/usr/bin/openssl")]
    ingestor = Ingestor(store, world["settings"], clock=lambda: now)
    assert ingestor.ingest(learning(now - timedelta(minutes=5))).deviations_opened == 0
    report = ingestor.ingest(ahead)
    assert report.clock_skewed == 1 and report.deviations_opened == 0  # still learning: openssl is learned
    with store.session(write=False) as session:
        (baseline,) = stored.list_baselines(session)
    assert baseline.phase == "learning" and "/usr/bin/openssl" in baseline.state["execs"]


def test_the_alert_policy_can_silence_runtime_alerts(store: Store, world: dict[str, Any]) -> None:
    from keelwatch.config import AlertOverride

    settings = world["settings"]
    settings.alerts.overrides = [AlertOverride(environment="prod", notify="none")]
    Ingestor(store, settings).ingest(learning(datetime(2024, 5, 2, 8, 0, tzinfo=UTC)))
    report = Ingestor(store, settings).ingest(sample("falco.jsonl"))
    assert report.deviations_opened == 7 and report.alerts_queued == 0
    assert delivered(store, world) == []
