"""The store's leases and scan queue, on SQLite and PostgreSQL; races between threads on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from keelwatch.store import Store, leases

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


def test_a_lease_is_held_by_one_holder_and_taken_over_after_its_ttl(store: Store) -> None:
    with store.session() as s:
        assert leases.acquire(s, "loop:feeds", "a", ttl=TTL, now=T0).held
    with store.session() as s:
        taken = leases.acquire(s, "loop:feeds", "b", ttl=TTL, now=T0 + timedelta(seconds=10))
        assert not taken.held and taken.retry_at == T0 + TTL
        assert leases.renew(s, "loop:feeds", "a", ttl=TTL, now=T0 + timedelta(seconds=20))
    with store.session() as s:  # a renewed: still not b's at the first expiry
        assert not leases.acquire(s, "loop:feeds", "b", ttl=TTL, now=T0 + timedelta(seconds=31)).held
    with store.session() as s:  # a died: b takes over once the renewed lease ran out
        taken = leases.acquire(s, "loop:feeds", "b", ttl=TTL, now=T0 + timedelta(seconds=51))
        assert taken.held and taken.takeover and taken.previous_holder == "a"
        assert not leases.renew(s, "loop:feeds", "a", ttl=TTL, now=T0 + timedelta(seconds=52))
        assert not leases.release(s, "loop:feeds", "a", now=T0 + timedelta(seconds=52))  # not a's any more
    with store.session(write=False) as s:
        [info] = leases.list_leases(s)
    assert (info.holder, info.runs, info.takeovers) == ("b", 2, 1)


def test_the_cadence_is_global_a_released_lease_is_due_an_interval_later(store: Store) -> None:
    hour = timedelta(hours=1)
    with store.session() as s:
        assert leases.acquire(s, "loop:snapshot", "a", ttl=TTL, now=T0, interval=hour).held
        assert leases.release(s, "loop:snapshot", "a", now=T0 + timedelta(minutes=1))
    with store.session() as s:
        later = leases.acquire(s, "loop:snapshot", "b", ttl=TTL, now=T0 + timedelta(minutes=30), interval=hour)
    assert not later.held and later.retry_at == T0 + timedelta(minutes=61)
    with store.session() as s:
        assert leases.acquire(s, "loop:snapshot", "b", ttl=TTL, now=T0 + timedelta(minutes=61), interval=hour).held


def test_a_digest_queued_three_times_is_one_job_claimed_once(store: Store) -> None:
    job = ("sha256:" + "a" * 64, "registry:r.example/app@sha256:" + "a" * 64)
    with store.session() as s:
        assert leases.enqueue_scans(s, [job], now=T0) == 1
        assert leases.enqueue_scans(s, [job, job], now=T0) == 0
    with store.session() as s:
        [claimed] = leases.claim_scans(s, "w1", now=T0, lease=TTL, limit=10)
        assert leases.claim_scans(s, "w2", now=T0 + timedelta(seconds=5), lease=TTL, limit=10) == []
    assert claimed.attempts == 1
    with store.session() as s:  # w1 died: after the lease w2 gets it, and w1 can no longer finish it
        [again] = leases.claim_scans(s, "w2", now=T0 + timedelta(seconds=31), lease=TTL, limit=10)
        assert again.attempts == 2
        assert not leases.finish_scan(s, claimed, now=T0 + timedelta(seconds=32))
        assert leases.finish_scan(s, again, now=T0 + timedelta(seconds=33))
    with store.session() as s:
        assert leases.enqueue_scans(s, [job], now=T0 + timedelta(minutes=1)) == 0  # done stays done
        assert leases.claim_scans(s, "w3", now=T0 + timedelta(hours=1), lease=TTL, limit=10) == []
        assert leases.scan_counts(s) == {"queued": 0, "running": 0, "done": 1, "failed": 0}


def test_a_failed_scan_waits_for_its_retry_and_a_poison_job_is_given_up(store: Store) -> None:
    jobs = [("sha256:" + c * 64, f"registry:r.example/{c}@sha256:" + c * 64) for c in "bc"]
    with store.session() as s:
        leases.enqueue_scans(s, jobs, now=T0)
        first, second = leases.claim_scans(s, "w1", now=T0, lease=TTL, limit=10)
        assert leases.finish_scan(s, first, now=T0, error="registry down", retry_at=T0 + timedelta(minutes=5))
    with store.session() as s:
        early = leases.claim_scans(s, "w1", now=T0 + timedelta(minutes=1), lease=TTL, limit=10)
        assert [j.digest for j in early] == [second.digest]  # its worker died; the failed one waits
        assert {j.digest for j in leases.claim_scans(s, "w1", now=T0 + timedelta(minutes=5), lease=TTL,
                                                     limit=10)} == {first.digest, second.digest}
    now = T0 + timedelta(minutes=5)
    for _ in range(3):  # the second job's worker dies every time
        now += timedelta(minutes=1)
        with store.session() as s:
            leases.claim_scans(s, "w", now=now, lease=TTL, limit=10, max_attempts=3)
    with store.session() as s:
        rows = {r.digest: r for r in leases.scan_jobs(s)}
    assert rows[second.digest].state == "failed" and "gave up after 3" in rows[second.digest].error
    with store.session() as s:
        assert leases.requeue_failed(s, now=now) >= 1


@pytest.mark.postgres
def test_threads_racing_on_postgresql_never_claim_one_job_twice(pg_url: str) -> None:
    from sqlalchemy import text

    from keelwatch.store.tables import Base

    with Store.open(pg_url) as store:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with store.session() as s:
            s.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        digests = [f"sha256:{i:064x}" for i in range(300)]
        claimed: dict[str, list[str]] = {}
        held: list[str] = []
        barrier = threading.Barrier(6)
        lock = threading.Lock()

        def worker(name: str) -> None:
            barrier.wait()
            with store.session() as s:  # every worker queues every digest at once
                leases.enqueue_scans(s, [(d, f"registry:x@{d}") for d in digests], now=T0)
            with store.session() as s:
                if leases.acquire(s, "loop:feeds", name, ttl=TTL, now=T0).held:
                    with lock:
                        held.append(name)
            while True:
                with store.session() as s:
                    jobs = leases.claim_scans(s, name, now=T0, lease=TTL, limit=7)
                if not jobs:
                    return
                with lock:
                    for job in jobs:
                        claimed.setdefault(job.digest, []).append(name)
                with store.session() as s:
                    for job in jobs:
                        assert leases.finish_scan(s, job, now=T0)

        threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(claimed) == digests
        assert all(len(names) == 1 for names in claimed.values())
        assert len(set().union(*map(set, claimed.values()))) > 1  # the work was shared
        assert len(held) == 1
