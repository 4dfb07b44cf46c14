"""The inventory tables on SQLite and PostgreSQL: snapshots end what vanished, pods change as a whole."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from keelwatch.store import inventory as inv
from keelwatch.store.inventory import ContainerValues

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def values(pod: str, container: str = "app", *, namespace: str = "shop", instance: str = "uid-1",
           digest: str | None = "sha256:" + "a" * 64, state: str = "running", **extra) -> ContainerValues:  # type: ignore[no-untyped-def]
    base = ContainerValues(
        key=f"{namespace}/{pod}/{instance}/{container}", cluster="prod", namespace=namespace,
        workload_kind="Deployment", workload="web", pod=pod, instance=instance, container=container,
        container_type="container",
        image="nginx:1.27", reference="docker.io/library/nginx:1.27", image_id="", digest=digest, index_digest=None,
        tag_digest=None, platform="linux/amd64", node="node-1", state=state, labels={"app": "web"}, annotations={},
        owner="", team="payments", environment="prod", resolution_error=None, problem=None)
    return replace(base, **extra)


def snapshot(store, source, vals, now, **kw):  # type: ignore[no-untyped-def]
    with store.session() as session:
        counts = inv.apply_snapshot(session, source, vals, now, **kw)
        inv.record_success(session, source, "static", now)
    return counts


def live(store, **kw):  # type: ignore[no-untyped-def]
    with store.session(write=False) as session:
        return inv.list_containers(session, **kw)


def test_snapshot_adds_touches_changes_and_ends(store) -> None:  # type: ignore[no-untyped-def]
    a, b, c = values("web-1"), values("web-2"), values("web-3")
    assert snapshot(store, "cmdb", [a, b, c], T0) == inv.ApplyCounts(added=3)
    t1 = T0 + timedelta(minutes=5)
    b2 = replace(b, state="waiting")
    assert snapshot(store, "cmdb", [a, b2], t1) == inv.ApplyCounts(changed=1, unchanged=1, ended=1)
    rows = {r.values.pod: r for r in live(store, include_ended=True)}
    assert rows["web-1"].first_seen == T0 and rows["web-1"].last_seen == t1 and rows["web-1"].ended_at is None
    assert rows["web-2"].values.state == "waiting" and rows["web-2"].first_seen == T0
    assert rows["web-3"].ended_at == t1 and rows["web-3"].values.state == "ended"
    assert rows["web-3"].last_seen == T0  # last seen when it was last there
    assert [r.values.pod for r in live(store)] == ["web-1", "web-2"]
    with store.session(write=False) as session:
        (status,) = inv.source_status(session)
    assert status.containers == 2 and status.status == "ok"


def test_an_ended_container_seen_again_comes_back(store) -> None:  # type: ignore[no-untyped-def]
    a = values("web-1")
    snapshot(store, "cmdb", [a], T0)
    snapshot(store, "cmdb", [], T0 + timedelta(minutes=1))
    assert live(store) == []
    assert snapshot(store, "cmdb", [a], T0 + timedelta(minutes=2)).changed == 1
    (row,) = live(store)
    assert row.ended_at is None and row.values.state == "running" and row.first_seen == T0


def test_sources_do_not_touch_each_other(store) -> None:  # type: ignore[no-untyped-def]
    snapshot(store, "one", [values("web-1")], T0)
    snapshot(store, "two", [replace(values("web-1"), key="other")], T0)
    snapshot(store, "one", [], T0 + timedelta(minutes=1))
    assert [r.source for r in live(store)] == ["two"]


def test_unreadable_pods_are_kept_as_they_were(store) -> None:  # type: ignore[no-untyped-def]
    snapshot(store, "k8s", [values("web-1"), values("web-2")], T0)
    counts = snapshot(store, "k8s", [values("web-1")], T0 + timedelta(minutes=1), keep_pods=[("shop", "web-2")])
    assert counts == inv.ApplyCounts(unchanged=1, kept=1)
    rows = {r.values.pod: r for r in live(store)}
    assert rows["web-2"].last_seen == T0 and rows["web-2"].ended_at is None


def test_pod_changes_replace_one_pod_at_a_time(store) -> None:  # type: ignore[no-untyped-def]
    snapshot(store, "k8s", [values("web-1"), values("web-1", "sidecar"), values("web-2")], T0)
    t1 = T0 + timedelta(seconds=3)
    debug = values("web-1", "debugger", container_type="ephemeral")
    with store.session() as session:
        counts = inv.apply_pod_changes(session, "k8s", [
            (("shop", "web-1", "uid-1"), [values("web-1"), debug]),  # sidecar gone, debugger added
            (("shop", "web-9", "uid-9"), [values("web-9", instance="uid-9")]),
            (("shop", "web-9", "uid-9"), []),  # created and deleted within one batch: a later change wins
        ], t1)
    assert counts == inv.ApplyCounts(added=1, unchanged=1, ended=1)
    names = sorted((r.values.pod, r.values.container, r.ended_at is None) for r in live(store, include_ended=True))
    assert names == [("web-1", "app", True), ("web-1", "debugger", True), ("web-1", "sidecar", False),
                     ("web-2", "app", True)]


def test_short_lived_pods_are_recorded_with_their_end(store) -> None:  # type: ignore[no-untyped-def]
    job = values("job-1", instance="uid-j")
    with store.session() as session:
        inv.apply_pod_changes(session, "k8s", [(job_scope := ("shop", "job-1", "uid-j"), [job])], T0)
    with store.session() as session:
        inv.apply_pod_changes(session, "k8s", [(job_scope, [])], T0 + timedelta(seconds=2))
    (row,) = live(store, include_ended=True)
    assert row.first_seen == T0 and row.ended_at == T0 + timedelta(seconds=2)


def test_filters(store) -> None:  # type: ignore[no-untyped-def]
    snapshot(store, "k8s", [
        values("web-1"),
        values("api-1", namespace="api", image="ghcr.io/acme/api:2", reference="ghcr.io/acme/api:2", digest=None,
               resolution_error="unresolved: 401 from registry"),
        values("db-0", namespace="api", image="postgres@sha256:" + "b" * 64,
               reference="docker.io/library/postgres@sha256:" + "b" * 64, digest="sha256:" + "b" * 64),
    ], T0)
    assert [r.values.pod for r in live(store, namespace="api")] == ["api-1", "db-0"]
    assert [r.values.pod for r in live(store, unresolved=True)] == ["api-1"]
    assert [r.values.pod for r in live(store, image="nginx:1.27")] == ["web-1"]
    assert [r.values.pod for r in live(store, image_name="docker.io/library/postgres")] == ["db-0"]
    assert [r.values.pod for r in live(store, image="sha256:" + "b" * 64)] == ["db-0"]
    with store.session(write=False) as session:
        assert inv.running_digests(session) == ["sha256:" + "a" * 64, "sha256:" + "b" * 64]
        assert inv.unscanned_digests(session) == ["sha256:" + "a" * 64, "sha256:" + "b" * 64]


def test_failure_keeps_the_inventory_and_says_why(store) -> None:  # type: ignore[no-untyped-def]
    snapshot(store, "k8s", [values("web-1")], T0)
    with store.session() as session:
        inv.record_failure(session, "k8s", "kubernetes", T0 + timedelta(minutes=1), "403 Forbidden")
    with store.session(write=False) as session:
        (status,) = inv.source_status(session)
    assert (status.status, status.error, status.last_success, status.containers) == ("failed", "403 Forbidden", T0, 1)
    assert len(live(store)) == 1


def test_labels_round_trip_as_json(store) -> None:  # type: ignore[no-untyped-def]
    v = values("web-1", labels={"app.kubernetes.io/name": "web", "tier": "front"}, annotations={"a": "ü"})
    snapshot(store, "k8s", [v], T0)
    (row,) = live(store)
    assert row.values == v
