"""Alerts from real findings on running containers, delivered to a real HTTP receiver, never lost.

The world: the shared debian12-python image (and its v2 rebuild) against the PyPA database of
2022-12-30, then the current one; an inventory of workloads running them, written through the
inventory store as a source would. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from keelwatch.alerts.engine import advisory_key, raise_alerts
from keelwatch.alerts.outbox import deliver, make_digests
from keelwatch.alerts.policy import decide
from keelwatch.config import AlertOverride, AlertSettings, ChannelSettings
from keelwatch.match.rematch import rematch
from keelwatch.match.scan import load_report, scan_image
from keelwatch.store import Store
from keelwatch.store import alerts as stored
from keelwatch.store import findings as stored_findings
from keelwatch.store.inventory import ContainerValues, apply_snapshot
from match.test_rematch import AFTER, BEFORE, store_image, sync_zip  # tests/ is on sys.path

from .receiver import Receiver, running_receiver

pytestmark = pytest.mark.datasets


def container(pod: str, digest: str, *, namespace: str = "shop", environment: str = "prod", owner: str = "payments",
              workload: str = "checkout") -> ContainerValues:
    return ContainerValues(
        key=f"{namespace}/{pod}", cluster="eu-1", namespace=namespace, workload_kind="Deployment", workload=workload,
        pod=pod, instance=f"uid-{pod}", container="app", container_type="container",
        image="registry.example/shop/checkout:1.4", reference="registry.example/shop/checkout:1.4",
        image_id=f"registry.example/shop/checkout@{digest}", digest=digest, index_digest=None, tag_digest=None,
        platform="linux/amd64", node="node-1", state="running", labels={}, annotations={}, owner=owner, team="",
        environment=environment, resolution_error=None, problem=None)


def inventory(store: Store, *values: ContainerValues) -> None:
    with store.session() as session:
        apply_snapshot(session, "test-cluster", list(values), datetime.now(UTC))


def webhook(receiver: Receiver, **extra: Any) -> ChannelSettings:
    return ChannelSettings(name="hook", kind="webhook", url=receiver.url, secret=receiver.secret,
                           timeout=timedelta(seconds=1), **extra)


@pytest.fixture
def world(store: Store, feeds_dir: Path, images_dir: Path, tmp_path: Path) -> dict[str, Any]:
    sync_zip(store, feeds_dir, BEFORE, tmp_path)
    digest = store_image(store, images_dir)
    scan_image(store, digest)
    return {"digest": digest, "feeds_dir": feeds_dir, "tmp_path": tmp_path}


def immediate_keys(store: Store, settings: AlertSettings, digest: str, since: int | None = None) -> dict[str, str]:
    """Advisory key → handled severity of the findings that should page now (the test's own reading)."""
    report = load_report(store, digest)
    assert report is not None
    with store.session(write=False) as session:
        containers = stored.running_containers(session).get(digest, [])
        opened = None if since is None else {e.finding_key for e in stored_findings.finding_events(session, since)
                                             if e.event == "opened"}
    out: dict[str, list[Any]] = {}
    for s in report.findings:
        if opened is not None and s.key not in opened:
            continue
        out.setdefault(advisory_key(s.finding.aliases, s.finding.id), []).append(s.finding)
    result = {}
    for key, group in out.items():
        severity = max((f.severity for f in group), key=("unknown", "low", "medium", "high", "critical").index)
        d = decide(settings, severity, any(f.kev for f in group), containers)
        if d.notify == "immediate":
            result[key] = d.severity
    return result


def test_new_disclosures_reach_the_webhook_once_each_with_deadlines(store: Store, world: dict[str, Any]) -> None:
    digest = world["digest"]
    inventory(store, container("checkout-7d9f-a", digest), container("checkout-7d9f-b", digest))
    with running_receiver() as receiver:
        settings = AlertSettings(channels=[webhook(receiver)])
        first = raise_alerts(store, settings)
        before = immediate_keys(store, settings, digest)
        assert first.opened >= len(before)  # the digest ones are alerts too, sent later
        assert deliver(store, settings).delivered == len(before) == first.queued
        assert {r["body"]["advisory"] for r in receiver.received} == set(before)
        receiver.received.clear()
        since = store.latest_sync_id()

        # The newer database: re-match, raise, deliver. Exactly one message per newly paging advisory.
        sync_zip(store, world["feeds_dir"], AFTER, world["tmp_path"])
        rematch(store)
        update_raised = datetime.now(UTC)
        raised = raise_alerts(store, settings)
        new = immediate_keys(store, settings, digest, since)
        assert new and raised.queued == len(new)
        report = deliver(store, settings)
        assert report.delivered == len(new) and report.failed == 0
        bodies = [r["body"] for r in receiver.received]
        assert sorted(b["advisory"] for b in bodies) == sorted(new)  # one each, no duplicates
        assert receiver.bad_signatures == 0
        for body in bodies:
            assert body["event"] == "opened" and body["severity"] == new[body["advisory"]]
            due_days = getattr(settings.policy, body["severity"]).due_days
            due = datetime.fromisoformat(body["due"])
            assert abs(due - (update_raised + timedelta(days=due_days))) < timedelta(minutes=1)
            assert body["images"][0]["digest"] == digest
            assert {c["pod"] for c in body["containers"]} == {"checkout-7d9f-a", "checkout-7d9f-b"}
            assert body["workloads"] == [{"cluster": "eu-1", "namespace": "shop", "kind": "Deployment",
                                          "name": "checkout"}]
            assert body["owners"] == ["payments"] and body["packages"]
            assert {"id", "aliases", "fixed_versions", "kev"} <= body.keys()
        # Raising again says nothing new.
        assert raise_alerts(store, settings).queued == 0


def test_a_failing_then_hanging_receiver_gets_everything_after_retries(store: Store, world: dict[str, Any]) -> None:
    inventory(store, container("checkout-a", world["digest"]))
    with running_receiver() as receiver:
        settings = AlertSettings(channels=[webhook(receiver)], max_attempts=10)
        queued = raise_alerts(store, settings).queued
        assert queued >= 2
        clock = [datetime.now(UTC)]
        receiver.fail_next = 2
        first = deliver(store, settings, clock=lambda: clock[0])
        assert first.failed == 2 and first.delivered == queued - 2
        assert deliver(store, settings, clock=lambda: clock[0]).delivered == 0  # backoff: not due yet
        clock[0] += timedelta(seconds=5)
        receiver.hang_next = 3.0  # longer than the channel's 1 s timeout
        second = deliver(store, settings, clock=lambda: clock[0])
        assert second.failed == 1 and "timed out" in second.errors[0]
        clock[0] += timedelta(minutes=1)
        third = deliver(store, settings, clock=lambda: clock[0])
        assert third.failed == 0
        assert len(receiver.processed) == queued  # every message, once per key
        with store.session(write=False) as session:
            assert stored.outbox_counts(session) == {"pending": 0, "delivered": queued, "failed": 0}


def test_parked_after_max_attempts_and_retried(store: Store, world: dict[str, Any]) -> None:
    inventory(store, container("checkout-a", world["digest"]))
    with running_receiver() as receiver:
        settings = AlertSettings(channels=[webhook(receiver)], max_attempts=2)
        queued = raise_alerts(store, settings).queued
        clock = [datetime.now(UTC)]
        receiver.fail_next = 10_000
        deliver(store, settings, clock=lambda: clock[0])
        clock[0] += timedelta(hours=1)
        assert deliver(store, settings, clock=lambda: clock[0]).parked == queued
        with store.session() as session:
            assert stored.outbox_counts(session)["failed"] == queued
            assert stored.retry_failed(session, now=clock[0]) == queued
        receiver.fail_next = 0
        assert deliver(store, settings, clock=lambda: clock[0]).delivered == queued


def test_policy_overrides_kev_and_digests(store: Store, world: dict[str, Any]) -> None:
    digest = world["digest"]
    with running_receiver() as receiver:
        settings = AlertSettings(channels=[webhook(receiver)],
                                 overrides=[AlertOverride(environment="dev", notify="none")])
        # Only a dev workload runs the image: nothing pages, nothing is even raised.
        inventory(store, container("checkout-dev", digest, namespace="shop-dev", environment="dev"))
        assert raise_alerts(store, settings).opened == 0
        # A prod workload starts running it: now it alerts (a vulnerable image starts running).
        inventory(store, container("checkout-dev", digest, namespace="shop-dev", environment="dev"),
                  container("checkout-prod", digest))
        raised = raise_alerts(store, settings)
        assert raised.opened > 0
        with store.session(write=False) as session:
            alerts = stored.load_alerts(session, states={"open"})
        assert all({c["environment"] for c in a.body["containers"]} == {"dev", "prod"} for a in alerts.values())
        # Medium and low wait for the digest.
        waiting = [a for a in alerts.values() if a.notify == "digest"]
        assert {a.severity for a in waiting} <= {"medium", "low"}
        deliver(store, settings)
        immediate = len(receiver.received)
        assert immediate == sum(1 for a in alerts.values() if a.notify == "immediate")
        if waiting:
            assert make_digests(store, settings) == 1 and make_digests(store, settings) == 0
            deliver(store, settings)
            [digest_message] = [r["body"] for r in receiver.received[immediate:]]
            assert digest_message["event"] == "digest" and digest_message["count"] == len(waiting)

    # KEV makes it critical, due in 72 hours.
    kev_settings = AlertSettings()
    assert decide(kev_settings, "medium", True, []).severity == "critical"
    assert decide(kev_settings, "medium", True, []).due_days == 3
    assert decide(AlertSettings(kev_as_critical=False), "medium", True, []).notify == "digest"
    # The unrated page like High.
    assert (decide(kev_settings, "unknown", False, []).notify, decide(kev_settings, "unknown", False, []).due_days) \
        == ("immediate", 30)


def test_alerts_resolve_when_the_image_stops_running(store: Store, world: dict[str, Any]) -> None:
    digest = world["digest"]
    inventory(store, container("checkout-a", digest))
    with running_receiver() as receiver:
        settings = AlertSettings(channels=[webhook(receiver, send_resolved=True)])
        opened = raise_alerts(store, settings).opened
        deliver(store, settings)
        inventory(store)  # the workload was redeployed elsewhere: nothing runs the image any more
        report = raise_alerts(store, settings)
        assert report.resolved == opened
        deliver(store, settings)
        resolved = [r["body"] for r in receiver.received if r["body"]["event"] == "resolved"]
        immediate = [r for r in receiver.received if r["body"]["event"] == "opened"]
        assert len(resolved) == len(immediate)
        with store.session(write=False) as session:
            assert not stored.load_alerts(session, states={"open", "acknowledged"})
        # Running again reopens them (same ids), and says so once.
        inventory(store, container("checkout-b", digest))
        assert raise_alerts(store, settings).reopened == opened


def test_a_sender_killed_mid_delivery_loses_nothing(store: Store, store_url: str, world: dict[str, Any],
                                                    tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    inventory(store, container("checkout-a", world["digest"]))
    with running_receiver() as receiver:
        config = tmp_path / "keelwatch.toml"
        config.write_text(f'[store]\nurl = "{store_url}"\n\n[alerts]\nlease = "1s"\n\n'
                          f'[[alerts.channels]]\nname = "hook"\nkind = "webhook"\nurl = "{receiver.url}"\n'
                          f'secret = "{receiver.secret}"\ntimeout = "1s"\n')
        settings = AlertSettings(channels=[webhook(receiver)], lease=timedelta(seconds=1))
        queued = raise_alerts(store, settings).queued
        assert queued >= 3
        receiver.hold_after = 1  # the second message hangs inside the receiver
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEELWATCH_")}
        sender = subprocess.Popen([sys.executable, "-m", "keelwatch", "--config", str(config), "alerts", "deliver"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert receiver.held.wait(60), "the sender never reached the second message"
            sender.send_signal(signal.SIGKILL)  # mid-delivery, lease held, outcome unrecorded
            sender.wait(30)
        finally:
            if sender.poll() is None:
                sender.kill()
        receiver.release.set()  # the held request completes: the receiver accepted it, nobody recorded it
        time.sleep(2.5)  # past the dead sender's lease (1 s + the 1 s channel timeout)
        report = deliver(store, settings)
        assert report.failed == 0
        with store.session(write=False) as session:
            assert stored.outbox_counts(session) == {"pending": 0, "delivered": queued, "failed": 0}
        # Nothing lost: every message reached the receiver. Nothing processed twice: the one
        # message in flight when the sender died came again with the same key, and was deduped.
        assert len(receiver.processed) == queued
        assert len(receiver.received) - len(receiver.processed) <= 1
        assert len(set(receiver.keys())) == queued


def test_joining_kev_or_epss_past_the_threshold_announces_again_with_an_earlier_deadline(
        store: Store, world: dict[str, Any]) -> None:
    from keelwatch.config import FeedSettings
    from keelwatch.model import Exploitability
    from keelwatch.sync.engine import sync_feed
    from sync.feeds import ListFeed

    inventory(store, container("checkout-a", world["digest"]))
    with running_receiver() as receiver:
        settings = AlertSettings(channels=[webhook(receiver)])
        raise_alerts(store, settings)
        deliver(store, settings)
        with store.session(write=False) as session:
            alerts = stored.load_alerts(session, states={"open"})
        high = sorted((a for a in alerts.values() if a.severity in ("high", "unknown")
                       and a.advisory.startswith("CVE-") and not a.kev), key=lambda a: a.advisory)
        assert len(high) >= 2
        kev_target, epss_target = high[0], high[1]
        sync_feed(store, FeedSettings(name="kev", kind="kev", url="test://kev"), workdir=world["tmp_path"] / "k",
                  feed=ListFeed([Exploitability(cve=kev_target.advisory, kev_date_added="2026-12-01"),
                                 Exploitability(cve=epss_target.advisory, epss=0.93, epss_percentile=0.99)]))
        rematch(store)
        report = raise_alerts(store, settings)
        assert (report.opened, report.updated) == (0, 2)
        deliver(store, settings)
        updates = {r["body"]["advisory"]: r["body"] for r in receiver.received if r["body"]["event"] == "updated"}
        assert set(updates) == {kev_target.advisory, epss_target.advisory}
        kev_body = updates[kev_target.advisory]
        assert kev_body["severity"] == "critical" and kev_body["kev"] is True
        assert datetime.fromisoformat(kev_body["due"]) < kev_target.due  # 72 h from now beats 30 days
        assert updates[epss_target.advisory]["epss"] == 0.93
        assert raise_alerts(store, settings).queued == 0


def test_finding_events_and_their_alerts_commit_together(store: Store, world: dict[str, Any]) -> None:
    from keelwatch.alerts.engine import raise_alerts_in

    inventory(store, container("checkout-a", world["digest"]))
    settings = AlertSettings(channels=[ChannelSettings(name="log", kind="jsonl", path=str(world["tmp_path"] / "a"))])
    raise_alerts(store, settings)
    with store.session(write=False) as session:
        alerts_before = set(stored.load_alerts(session))
    since = store.latest_sync_id()
    sync_zip(store, world["feeds_dir"], AFTER, world["tmp_path"])

    def crash(session: Any, report: Any) -> None:
        raise_alerts_in(session, settings)
        raise RuntimeError("the process dies before the commit")

    with pytest.raises(RuntimeError):
        rematch(store, then=crash)
    with store.session(write=False) as session:  # neither the events nor the alerts were committed
        assert stored_findings.finding_events(session, since) == []
        assert set(stored.load_alerts(session)) == alerts_before
    report = rematch(store, then=lambda session, _: raise_alerts_in(session, settings))
    assert report.opened
    with store.session(write=False) as session:
        events = stored_findings.finding_events(session, since)
        new_alerts = set(stored.load_alerts(session)) - alerts_before
    assert events and new_alerts
