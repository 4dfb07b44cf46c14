"""The kubernetes source, driven by the official client against the test API server (TLS, tokens, real wire format)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from keelwatch.config import InventorySettings, InventorySourceSettings, Settings, StoreSettings
from keelwatch.inventory.base import Bookmark, InventoryError, PodChange, Relisted, WatchProblem
from keelwatch.inventory.kubernetes import KubernetesSource
from keelwatch.inventory.sync import InventorySync, list_inventory

from . import kube_objects as ko
from .kube_server import Grant, KubeApiServer, free_port


@pytest.fixture
def api(tmp_path: Path) -> Iterator[KubeApiServer]:
    server = KubeApiServer(tmp_path / "apiserver", tokens={
        "admin-token": Grant(),
        "shop-reader": Grant(namespaces={"shop"}, kinds={"pods", "replicasets", "jobs"}),
        "pods-only": Grant(kinds={"pods"}),
    })
    for kind, objects in ko.cluster_objects().items():
        for obj in objects:
            server.put(kind, obj)
    yield server
    server.stop()


def source_settings(api: KubeApiServer, tmp_path: Path, *, token: str = "admin-token", **kw) -> InventorySourceSettings:  # type: ignore[no-untyped-def]
    kubeconfig = api.kubeconfig(tmp_path / f"kubeconfig-{token}", token=token)
    kw.setdefault("resolve", False)
    return InventorySourceSettings(name="lab", kind="kubernetes", kubeconfig=str(kubeconfig), **kw)


def by_container(records):  # type: ignore[no-untyped-def]
    return {(r.pod, r.container): r for r in records}


def test_snapshot_identity_of_every_kind_of_pod(api: KubeApiServer, tmp_path: Path) -> None:
    source = KubernetesSource(source_settings(api, tmp_path, page_size=2))
    snapshot = source.snapshot()
    source.close()
    assert snapshot.problems == []
    got = by_container(snapshot.records)
    assert len(got) == 10
    web = got[("web-7d4b9c6f5-x2x9k", "nginx")]
    assert (web.cluster, web.namespace, web.workload_kind, web.workload) == ("lab-cluster", "shop", "Deployment", "web")
    assert (web.image, web.digest, web.platform, web.node, web.state) == (
        "nginx:1.27", ko.NGINX_DIGEST, "linux/amd64", "node-amd64-1", "running")
    assert web.image_id == f"docker.io/library/nginx@{ko.NGINX_DIGEST}"
    assert web.instance == ko.uid("pod/shop/web-7d4b9c6f5-x2x9k")
    init = got[("web-7d4b9c6f5-x2x9k", "migrate")]
    assert (init.container_type, init.state, init.digest) == ("init", "terminated", ko.MIGRATE_DIGEST)
    db = got[("db-0", "postgres")]
    assert (db.workload_kind, db.workload, db.platform, db.digest) == ("StatefulSet", "db", "linux/arm64",
                                                                      ko.POSTGRES_DIGEST)  # docker-pullable://
    exporter = got[("node-exporter-m64-1", "node-exporter")]
    assert (exporter.workload_kind, exporter.workload, exporter.platform) == ("DaemonSet", "node-exporter",
                                                                               "linux/arm64")
    report = got[("report-28901230-q7x2m", "report")]
    assert (report.workload_kind, report.workload, report.state) == ("CronJob", "report", "terminated")
    pending = got[("web-7d4b9c6f5-pend1", "nginx")]
    assert (pending.digest, pending.image_id, pending.platform, pending.node, pending.state) == (
        None, "", None, "", "waiting")
    debugger = got[("shell", "debugger-7xk2p")]
    assert (debugger.container_type, debugger.workload_kind, debugger.workload, debugger.digest) == (
        "ephemeral", "Pod", "shell", ko.BUSYBOX_DIGEST)


def test_pagination_follows_continue_at_one_resource_version(api: KubeApiServer, tmp_path: Path) -> None:
    source = KubernetesSource(source_settings(api, tmp_path, page_size=4))
    snapshot = source.snapshot()
    pod_requests = [r for r in api.requests if r.startswith("/api/v1/pods")]
    assert len(pod_requests) == 2 and "continue=" in pod_requests[1] and "limit=4" in pod_requests[0]
    assert snapshot.resource_version == f'{{"": "{api.version}"}}'


def test_expired_continue_token_lists_again_then_fails_clearly(api: KubeApiServer, tmp_path: Path) -> None:
    api.expired_tokens = True
    source = KubernetesSource(source_settings(api, tmp_path, page_size=4))
    with pytest.raises(InventoryError, match="list pods: the list expired twice while paging"):
        source.snapshot()
    assert sum(1 for r in api.requests if r == "/api/v1/pods?limit=4") == 2


def test_ownership_from_labels_annotations_and_namespace_labels(api: KubeApiServer, tmp_path: Path) -> None:
    settings = source_settings(api, tmp_path, owner=["annotation:keelwatch.io/owner"],
                               team=["label:team", "namespace-label:team", "namespace:data=dba"],
                               environment=["namespace-label:environment", "namespace:*=unknown"])
    got = by_container(KubernetesSource(settings).snapshot().records)
    web = got[("web-7d4b9c6f5-x2x9k", "nginx")]
    assert (web.owner, web.team, web.environment) == ("alice@example.com", "storefront", "production")
    db = got[("db-0", "postgres")]
    assert (db.owner, db.team, db.environment) == ("", "dba", "unknown")
    assert got[("shell", "shell")].environment == "staging"


def test_namespaced_credentials_read_their_namespace(api: KubeApiServer, tmp_path: Path) -> None:
    """A token that may read pods in shop only, and no nodes: pods listed, platforms unknown, said so."""
    source = KubernetesSource(source_settings(api, tmp_path, token="shop-reader", namespaces=["shop"]))
    snapshot = source.snapshot()
    assert {r.namespace for r in snapshot.records} == {"shop"}
    assert {r.platform for r in snapshot.records} == {None}
    (problem,) = snapshot.problems
    assert problem.where == "nodes" and "403 Forbidden" in problem.message and "platforms unknown" in problem.message
    # The ReplicaSet was listed in its namespace: the Deployment is known.
    assert by_container(snapshot.records)[("web-7d4b9c6f5-x2x9k", "nginx")].workload == "web"


def test_owner_chain_guessed_when_controllers_cannot_be_read(api: KubeApiServer, tmp_path: Path) -> None:
    source = KubernetesSource(source_settings(api, tmp_path, token="pods-only"))
    snapshot = source.snapshot()
    assert {p.where for p in snapshot.problems} == {"nodes", "replicasets", "jobs"}
    got = by_container(snapshot.records)
    # <deployment>-<pod-template-hash>: the Deployment's name, from the pod's own label.
    assert got[("web-7d4b9c6f5-x2x9k", "nginx")].workload_kind == "Deployment"
    assert got[("web-7d4b9c6f5-x2x9k", "nginx")].workload == "web"
    # A Job's CronJob cannot be guessed safely: the Job it is.
    assert (got[("report-28901230-q7x2m", "report")].workload_kind,
            got[("report-28901230-q7x2m", "report")].workload) == ("Job", "report-28901230")


@pytest.mark.parametrize(("token", "expected"), [
    ("wrong-token", r"list nodes.*|list pods: 401 Unauthorized \(Unauthorized\)"),
])
def test_refused_credentials(api: KubeApiServer, tmp_path: Path, token: str, expected: str) -> None:
    source = KubernetesSource(source_settings(api, tmp_path, token=token))
    with pytest.raises(InventoryError, match=r"inventory lab: list pods: 401 Unauthorized") as caught:
        source.snapshot()
    assert "credentials were refused" in str(caught.value)


def test_forbidden_pods(api: KubeApiServer, tmp_path: Path) -> None:
    source = KubernetesSource(source_settings(api, tmp_path, token="shop-reader"))  # all namespaces: not allowed
    with pytest.raises(InventoryError, match=r"list pods: 403 Forbidden \(pods is forbidden: User .* cannot list"):
        source.snapshot()


def test_unreachable_server(api: KubeApiServer, tmp_path: Path) -> None:
    kubeconfig = api.kubeconfig(tmp_path / "kc", server=f"https://127.0.0.1:{free_port()}")
    source = KubernetesSource(InventorySourceSettings(name="lab", kind="kubernetes", kubeconfig=str(kubeconfig),
                                                      timeout=timedelta(seconds=3)))
    started = time.monotonic()
    with pytest.raises(InventoryError, match="cannot reach the API server") as caught:
        source.snapshot()
    assert caught.value.retryable and time.monotonic() - started < 10


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot load .*nope.yaml"):
        KubernetesSource(InventorySourceSettings(name="lab", kind="kubernetes", kubeconfig=str(tmp_path / "nope.yaml")))


def test_malformed_objects_are_problems_and_their_pods_kept(api: KubeApiServer, tmp_path: Path) -> None:
    api.put("pods", {"metadata": {"name": "broken", "namespace": "shop", "uid": "u1"}})  # no spec
    api.put("pods", ko.pod("shop", "half", containers=[ko.container("ok", "nginx:1.27"), {"name": "noimage"}]))
    nostatus = ko.pod("shop", "fresh", containers=[ko.container("app", "nginx:1.27")], node_name=None, status=False)
    api.put("pods", nostatus)
    snapshot = KubernetesSource(source_settings(api, tmp_path)).snapshot()
    problems = {p.where: p for p in snapshot.problems}
    assert problems["pod shop/broken"].message == "no spec.containers" and problems["pod shop/broken"].pod == ("shop",
                                                                                                             "broken")
    assert "without name or image" in problems["pod shop/half"].message
    got = by_container(snapshot.records)
    assert ("half", "ok") in got and ("half", "noimage") not in got
    assert got[("fresh", "app")].state == "pending"  # a pod with no status yet


# --- sync through the store -------------------------------------------------------------------------


def make_sync(store, source: InventorySourceSettings, **inventory) -> InventorySync:  # type: ignore[no-untyped-def]
    settings = Settings(store=StoreSettings(url=str(store.url)), inventory=InventorySettings(sources=[source],
                                                                                          **inventory))
    return InventorySync(store, settings)


def test_a_failed_sync_keeps_the_last_good_inventory(store, api: KubeApiServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sync = make_sync(store, source_settings(api, tmp_path))
    (report,) = sync.sync()
    assert (report.status, report.containers, report.counts.added) == ("ok", 10, 10)
    api.tokens.pop("admin-token")  # the credentials are revoked
    (report,) = sync.sync()
    assert report.status == "failed" and "401 Unauthorized" in report.error
    assert len(list_inventory(store)) == 10
    status = store_status(store)
    assert status.status == "failed" and status.containers == 10 and "401" in status.error


def store_status(store):  # type: ignore[no-untyped-def]
    from keelwatch.store import inventory as store_inventory

    with store.session(write=False) as session:
        (status,) = store_inventory.source_status(session)
    return status


def test_a_deleted_pod_is_ended_by_the_next_sync(store, api: KubeApiServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sync = make_sync(store, source_settings(api, tmp_path))
    sync.sync()
    api.delete_pod("data", "db-0")
    (report,) = sync.sync()
    assert report.counts.ended == 1
    ended = [r for r in list_inventory(store, include_ended=True) if r.ended_at is not None]
    assert [(r.values.pod, r.values.state) for r in ended] == [("db-0", "ended")]


# --- watch ------------------------------------------------------------------------------------------


def run_watch(sync: InventorySync, until: Callable[[], bool], timeout: float = 20) -> list:  # type: ignore[type-arg]
    reports: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    thread = threading.Thread(target=sync.watch, kwargs={
        "stop": lambda: until() or time.monotonic() > deadline, "on_report": reports.append})
    thread.start()
    thread.join(timeout + 5)
    assert not thread.is_alive()
    assert time.monotonic() <= deadline, f"the watch did not get there in {timeout} s; reports: {reports}"
    return reports


def live_pods(store) -> set[str]:  # type: ignore[no-untyped-def]
    return {r.values.pod for r in list_inventory(store)}


def test_watch_records_a_pod_that_lives_for_a_moment(store, api: KubeApiServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sync = make_sync(store, source_settings(api, tmp_path), watch_flush=timedelta(milliseconds=50))
    sync.sync()

    def produce() -> None:
        time.sleep(0.5)
        blink = ko.pod("ops", "blink", containers=[ko.container("c", "busybox:1.36")],
                       statuses=[ko.running("c", "busybox:1.36", f"docker.io/library/busybox@{ko.BUSYBOX_DIGEST}")])
        api.put("pods", blink)
        api.delete_pod("ops", "blink")

    threading.Thread(target=produce).start()

    def seen() -> bool:
        return any(r.values.pod == "blink" and r.ended_at for r in list_inventory(store, include_ended=True))

    run_watch(sync, seen)
    (blink,) = [r for r in list_inventory(store, include_ended=True) if r.values.pod == "blink"]
    assert blink.values.digest == ko.BUSYBOX_DIGEST and blink.ended_at >= blink.first_seen


def test_watch_adds_an_ephemeral_container_to_a_running_pod(store, api: KubeApiServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api.put("pods", ko.debug_pod(with_ephemeral=False))
    sync = make_sync(store, source_settings(api, tmp_path), watch_flush=timedelta(milliseconds=50))
    sync.sync()
    assert ("shell", "debugger-7xk2p") not in {(r.values.pod, r.values.container) for r in list_inventory(store)}
    threading.Timer(0.3, lambda: api.put("pods", ko.debug_pod())).start()  # `kubectl debug` patches the pod

    def attached() -> bool:
        return any(r.values.container == "debugger-7xk2p" for r in list_inventory(store))

    run_watch(sync, attached)
    (debugger,) = [r for r in list_inventory(store) if r.values.container == "debugger-7xk2p"]
    assert debugger.values.container_type == "ephemeral"


def test_a_stream_cut_mid_event_resumes_without_losing_it(store, api: KubeApiServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sync = make_sync(store, source_settings(api, tmp_path), watch_flush=timedelta(milliseconds=50))
    sync.sync()
    api.cut_after = 0  # the next watch stream breaks in the middle of its first event
    api.put("pods", ko.daemonset_pod("node-amd64-1"))
    reports = run_watch(sync, lambda: "node-exporter-d64-1" in live_pods(store))
    problems = [r for r in reports if r.status == "partial"]
    assert problems and "stream broke" in problems[0].error


def test_a_malformed_event_is_reported_and_the_watch_goes_on(store, api: KubeApiServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sync = make_sync(store, source_settings(api, tmp_path), watch_flush=timedelta(milliseconds=50))
    sync.sync()
    api.malformed_after = 0
    api.put("pods", ko.daemonset_pod("node-amd64-1"))
    reports = run_watch(sync, lambda: "node-exporter-d64-1" in live_pods(store))
    assert any("malformed event" in r.error for r in reports if r.status == "partial")


def test_410_gone_lists_again(store, api: KubeApiServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = source_settings(api, tmp_path, watch_timeout=timedelta(seconds=1))
    sync = make_sync(store, source, watch_flush=timedelta(milliseconds=50))
    sync.sync()
    api.bookmark_every = 3600  # no bookmark may move the watch past the compaction
    stale = store_status(store).resource_version
    api.delete_pod("data", "db-0")
    api.compact()  # the deletion's event is gone from history: only a new list can tell
    reports = run_watch(sync, lambda: "db-0" not in live_pods(store))
    assert any(r.counts.ended == 1 for r in reports)
    assert any(r == "/api/v1/pods?limit=500" for r in api.requests[-20:])
    assert store_status(store).resource_version != stale


def test_watch_events_and_bookmarks_carry_resource_versions(api: KubeApiServer, tmp_path: Path) -> None:
    source = KubernetesSource(source_settings(api, tmp_path))
    snapshot = source.snapshot()
    events = []
    done = threading.Event()

    def collect() -> None:
        for event in source.watch(snapshot.resource_version, done.is_set):
            events.append(event)
            if isinstance(event, PodChange) and event.deleted:
                done.set()

    thread = threading.Thread(target=collect)
    thread.start()
    time.sleep(0.4)
    api.delete_pod("shop", "report-28901230-q7x2m")
    thread.join(10)
    done.set()
    assert not any(isinstance(e, Relisted | WatchProblem) for e in events)
    assert any(isinstance(e, Bookmark) for e in events)
    deleted = events[-1]
    assert deleted.scope == ("shop", "report-28901230-q7x2m", ko.uid("pod/shop/report-28901230-q7x2m"))
    assert deleted.resource_version == f'{{"": "{api.version}"}}'
