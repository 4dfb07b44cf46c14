"""The sync engine on SQLite and PostgreSQL: the journal is exact, a failed sync changes nothing.

Real-data tests sync the shared OSV zips through the real OSV feed (``keelwatch.feeds.get("osv")``)
and check the journal against the two zips compared here, record by record, independently of any
feed code. Synthetic tests use ``ListFeed`` (tests/sync/feeds.py) to hand the engine exact records.
"""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from keelwatch.config import FeedSettings, Settings
from keelwatch.errors import ConfigError, FeedError
from keelwatch.feeds import get as get_feed
from keelwatch.feeds.base import Problem, Spool, Withdrawn
from keelwatch.model import Advisory, Affected, AffectedRange, Exploitability
from keelwatch.store import Store
from keelwatch.store import advisories as kb
from keelwatch.store.tables import AdvisoryRow, AffectedRow, ProblemRow, SyncRow
from keelwatch.sync import engine
from keelwatch.sync.engine import sync_all, sync_feed

from .feeds import ListFeed, osv_records

BEFORE = "osv/PyPI.before-2023-01-01.zip"
AFTER = "osv/PyPI.zip"


def pypi(url: Path | str, name: str = "pypi") -> FeedSettings:
    return FeedSettings(name=name, kind="osv", url=str(url))


def sync(store: Store, settings: FeedSettings, tmp_path: Path, **kwargs: Any) -> engine.SyncReport:
    return sync_feed(store, settings, workdir=tmp_path / "work", **kwargs)


def snapshot(store: Store) -> dict[str, Any]:
    """Everything a failed sync must leave as it was."""
    with store.session(write=False) as session:
        advisories = session.execute(select(AdvisoryRow.advisory_id, AdvisoryRow.content_hash)
                                     .order_by(AdvisoryRow.advisory_id)).all()
        affected = session.execute(select(func.count()).select_from(AffectedRow)).scalar()
    state = {s.name: (s.fingerprint, s.last_success, s.advisories, s.withdrawn) for s in store.feed_status()}
    return {"advisories": advisories, "affected": affected, "state": state,
            "journal": len(store.changes_since(0)), "sample": [store.get_advisory(i) for i in
                                                                ("PYSEC-2005-1", "PYSEC-2021-9", "PYSEC-2022-1")]}


def advisory(advisory_id: str, fixed: str = "2.0", *, name: str = "pkg") -> Advisory:
    return Advisory(id=advisory_id, source="list", modified=datetime(2024, 1, 1, tzinfo=UTC), affected=(
        Affected(ecosystem="PyPI", name=name, ranges=(AffectedRange("ECOSYSTEM", (("introduced", "0"),
                                                                                  ("fixed", fixed))),)),))


# --- real data -----------------------------------------------------------------------------------------


def test_first_sync_stores_every_record(store: Store, feeds_dir: Path, tmp_path: Path) -> None:
    records = osv_records(feeds_dir / BEFORE)
    report = sync(store, pypi(feeds_dir / BEFORE), tmp_path)
    assert (report.status, report.added, report.problems, report.deleted) == ("ok", len(records), 0, 0)
    assert report.sync_id == store.latest_sync_id()
    journal = store.changes_since(0)
    assert Counter(e.change for e in journal) == {"added": len(records)}
    assert {e.advisory_id for e in journal} == set(records)
    [status] = store.feed_status()
    assert (status.name, status.status, status.advisories, status.error) == ("pypi", "ok", len(records), "")
    assert status.withdrawn == sum(1 for r in records.values() if "withdrawn" in r)
    assert status.last_sync == report.sync_id and status.fingerprint

    # The matcher's lookup finds exactly the records naming the package (PEP 503 on both sides).
    naming_django = {i for i, r in records.items() if "withdrawn" not in r
                     and any(a["package"]["name"].lower() == "django" for a in r["affected"])}
    assert {a.id for a in store.advisories_for("PyPI", ["Django"])} == naming_django
    # Read back whole, as the feed parsed it.
    parsed = {a.id: a for a in get_feed("osv").parse(Spool(feeds_dir / BEFORE, "x"), source="pypi")
              if isinstance(a, Advisory)}
    for advisory_id in ("PYSEC-2005-1", "PYSEC-2021-9", sorted(naming_django)[0]):
        assert store.get_advisory(advisory_id) == parsed[advisory_id]


def test_newer_snapshot_journals_exactly_the_differences(store: Store, feeds_dir: Path, tmp_path: Path) -> None:
    old, new = osv_records(feeds_dir / BEFORE), osv_records(feeds_dir / AFTER)
    # The differences, from the raw records: what the journal must say, no more, no less.
    added = set(new) - set(old)
    deleted = set(old) - set(new)
    differing = {i for i in set(old) & set(new) if old[i] != new[i]}
    newly_withdrawn = {i for i in differing if "withdrawn" in new[i] and "withdrawn" not in old[i]}
    changed = differing - newly_withdrawn
    # The shared data's README describes the pair so; the sets above are what the test trusts.
    assert (len(added), len(deleted), len(differing)) == (474, 27, 19)
    assert sum("withdrawn" in r for r in new.values()) == 10

    first = sync(store, pypi(feeds_dir / BEFORE), tmp_path)
    second = sync(store, pypi(feeds_dir / AFTER), tmp_path)  # same feed name, the URL moved on
    assert second.status == "ok" and second.sync_id == first.sync_id + 1  # type: ignore[operator]
    assert (second.added, second.deleted, second.changed, second.withdrawn, second.problems) == (
        len(added), len(deleted), len(changed), len(newly_withdrawn), 0)
    assert second.unchanged == len(set(old) & set(new)) - len(differing)

    journal = store.changes_since(first.sync_id)
    assert {e.sync_id for e in journal} == {second.sync_id}
    by_kind: dict[str, set[str]] = {}
    for entry in journal:
        by_kind.setdefault(entry.change, set()).add(entry.advisory_id)
    assert by_kind == {"added": added, "deleted": deleted, "changed": changed, "withdrawn": newly_withdrawn}
    assert len(journal) == len(added) + len(deleted) + len(differing)  # one entry per advisory

    for entry in journal:
        before, after = old.get(entry.advisory_id), new.get(entry.advisory_id)
        names = {(a["package"]["ecosystem"], kb.normalise_name(a["package"]["ecosystem"], a["package"]["name"]))
                 for doc in (before, after) if doc for a in doc["affected"]}
        assert set(entry.packages) == names, entry.advisory_id
        assert (entry.before is None) == (before is None) and (entry.after is None) == (after is None)
        if entry.change in ("changed", "withdrawn"):
            assert before is not None and after is not None
            raw = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
            fields = set(entry.fields)
            assert ("modified" in fields) == ("modified" in raw), entry.advisory_id
            assert ("withdrawn" in fields) == ("withdrawn" in raw), entry.advisory_id
            if "affected" in raw:
                assert fields & {"ranges", "versions", "packages", "severity", "affected"}, entry.advisory_id
            ranges_moved = [[a.get("ranges") for a in doc["affected"]] for doc in (before, after)]
            assert ("ranges" in fields) == (ranges_moved[0] != ranges_moved[1]), entry.advisory_id

    [status] = store.feed_status()
    assert (status.advisories, status.withdrawn) == (len(new), 10)
    assert {a.id for a in store.advisories_for("PyPI", ["django"], include_withdrawn=True)} == {
        i for i, r in new.items() if any(a["package"]["name"].lower() == "django" for a in r["affected"])}
    for advisory_id in deleted:
        assert store.get_advisory(advisory_id) is None


def test_an_unchanged_feed_journals_nothing(store: Store, feeds_dir: Path, tmp_path: Path) -> None:
    first = sync(store, pypi(feeds_dir / BEFORE), tmp_path)
    again = sync(store, pypi(feeds_dir / BEFORE), tmp_path)
    assert again.status == "unchanged" and again.sync_id == first.sync_id + 1  # type: ignore[operator]
    assert store.changes_since(first.sync_id) == []
    # Forced: fetched and compared record by record, and still nothing to journal.
    forced = sync(store, pypi(feeds_dir / BEFORE), tmp_path, force=True)
    assert (forced.status, forced.added, forced.changed, forced.unchanged) == ("ok", 0, 0, first.added)
    assert store.changes_since(first.sync_id) == []
    [status] = store.feed_status()
    assert status.last_sync == forced.sync_id and status.status == "ok"


def test_a_truncated_download_keeps_the_previous_knowledge(store: Store, feeds_dir: Path, tmp_path: Path) -> None:
    sync(store, pypi(feeds_dir / BEFORE), tmp_path)
    before = snapshot(store)
    truncated = tmp_path / "PyPI.zip"
    data = (feeds_dir / AFTER).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    failed_at = datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(FeedError, match="zip"):
        sync(store, pypi(truncated), tmp_path, now=failed_at)
    assert snapshot(store)["advisories"] == before["advisories"]
    assert {k: v for k, v in snapshot(store).items()} == before
    [status] = store.feed_status()
    assert (status.status, status.last_attempt) == ("failed", failed_at)
    assert "zip" in status.error
    assert status.fingerprint == before["state"]["pypi"][0]  # the old download's, so it is not skipped next time
    assert status.last_success < failed_at  # type: ignore[operator]
    with store.session(write=False) as session:
        last = session.execute(select(SyncRow).order_by(SyncRow.id.desc()).limit(1)).scalar_one()
        assert (last.status, last.finished) == ("failed", failed_at) and "zip" in last.error

    # The whole file arrives later: the sync goes through as if the failure never happened.
    shutil.copyfile(feeds_dir / AFTER, truncated)
    assert sync(store, pypi(truncated), tmp_path).deleted == 27
    assert store.feed_status()[0].status == "ok" and store.feed_status()[0].error == ""


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_write_rolls_everything_back(store: Store, feeds_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, failure: type) -> None:
    sync(store, pypi(feeds_dir / BEFORE), tmp_path)
    before = snapshot(store)
    real_insert = kb.insert_advisories

    def insert_then_fail(session: Any, rows: Any, affected: Any) -> None:
        real_insert(session, rows, affected)  # the rows are written, then the process is stopped
        raise failure("stopped mid-write")

    monkeypatch.setattr(kb, "insert_advisories", insert_then_fail)
    with pytest.raises(failure):
        sync(store, pypi(feeds_dir / AFTER), tmp_path)
    assert snapshot(store) == before
    [status] = store.feed_status()
    assert status.status == "failed"
    assert status.error == ("interrupted" if failure is KeyboardInterrupt else "RuntimeError: stopped mid-write")

    monkeypatch.undo()
    assert sync(store, pypi(feeds_dir / AFTER), tmp_path).added == 474


def test_a_malformed_record_is_reported_and_skipped(store: Store, feeds_dir: Path, tmp_path: Path) -> None:
    import zipfile

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(feeds_dir / "osv/Maven-ghsa-subset.zip") as src, zipfile.ZipFile(bad, "w") as out:
        good = [n for n in src.namelist() if n.endswith(".json")]
        for name in good:
            out.writestr(name, src.read(name))
        out.writestr("broken.json", b"{ not json")
        out.writestr("not-osv.json", b'{"id": "NOT-OSV-1"}')  # no 'modified'
    report = sync(store, FeedSettings(name="maven", kind="osv", url=str(bad)), tmp_path)
    assert (report.status, report.added, report.problems) == ("ok", len(good), 2)
    with store.session(write=False) as session:
        problems = session.execute(select(ProblemRow.sync, ProblemRow.location).order_by(ProblemRow.location)).all()
    assert [p.sync for p in problems] == [report.sync_id] * 2
    assert "broken.json" in problems[0].location and "not-osv.json" in problems[1].location
    assert store.feed_status()[0].problems == 2


# --- exact records ---------------------------------------------------------------------------------------


def test_withdrawn_records_and_partial_snapshots(store: Store, tmp_path: Path) -> None:
    settings = FeedSettings(name="list", kind="osv", url="test://list")
    sync(store, settings, tmp_path, feed=ListFeed([advisory("A"), advisory("B"), advisory("C")]))
    start = store.latest_sync_id()

    # A delta (not complete): B is not listed, so it stays; A is gone (Withdrawn), C changed.
    when = datetime(2026, 1, 2, tzinfo=UTC)
    delta = ListFeed([Withdrawn("A"), advisory("C", "3.0"), Withdrawn("never-seen")], fingerprint="v2",
                     complete=False)
    report = sync(store, settings, tmp_path, feed=delta, now=when)
    assert (report.withdrawn, report.changed, report.deleted, report.added) == (1, 1, 0, 0)
    journal = {e.advisory_id: e for e in store.changes_since(start)}
    assert set(journal) == {"A", "C"}
    assert (journal["A"].change, journal["A"].fields) == ("withdrawn", ("withdrawn",))
    assert (journal["C"].change, journal["C"].fields) == ("changed", ("ranges",))
    assert journal["C"].before["affected"][0]["ranges"][0]["events"][1] == ["fixed", "2.0"]  # type: ignore[index]
    assert journal["C"].after["affected"][0]["ranges"][0]["events"][1] == ["fixed", "3.0"]  # type: ignore[index]
    assert journal["C"].packages == (("PyPI", "pkg"),)
    assert store.get_advisory("A").withdrawn == when  # type: ignore[union-attr]
    assert store.get_advisory("B") is not None
    assert [a.id for a in store.advisories_for("PyPI", ["pkg"])] == ["B", "C"]

    # A complete snapshot without B deletes it; A, still withdrawn, stays as it is.
    mid = store.latest_sync_id()
    full = ListFeed([Withdrawn("A"), advisory("C", "3.0")], fingerprint="v3")
    report = sync(store, settings, tmp_path, feed=full, now=when + timedelta(days=1))
    assert (report.deleted, report.unchanged, report.withdrawn, report.changed) == (1, 2, 0, 0)
    assert [(e.advisory_id, e.change) for e in store.changes_since(mid)] == [("B", "deleted")]


def test_the_engine_removes_its_spool(store: Store, tmp_path: Path) -> None:
    feed = ListFeed([advisory("A")])
    sync(store, FeedSettings(name="list", kind="osv", url="test://x"), tmp_path, feed=feed)
    assert not (tmp_path / "work" / "records.spool").exists()


def test_a_duplicate_id_is_a_problem_and_the_later_record_wins(store: Store, tmp_path: Path) -> None:
    feed = ListFeed([advisory("A", "1.0"), advisory("A", "2.0"), Problem("x.json", "not OSV")])
    report = sync(store, FeedSettings(name="list", kind="osv", url="test://x"), tmp_path, feed=feed)
    assert (report.added, report.problems) == (1, 2)
    assert store.get_advisory("A").affected[0].ranges[0].events[1] == ("fixed", "2.0")  # type: ignore[union-attr]


def test_a_new_url_is_fetched_without_the_old_fingerprint(store: Store, tmp_path: Path) -> None:
    seen: list[str | None] = []

    class Recording(ListFeed):
        def fetch(self, url: str, fingerprint: str | None, workdir: Path):  # type: ignore[no-untyped-def]
            seen.append(fingerprint)
            return super().fetch(url, fingerprint, workdir)

    feed = Recording([advisory("A")])
    sync(store, FeedSettings(name="list", kind="osv", url="test://one"), tmp_path, feed=feed)
    sync(store, FeedSettings(name="list", kind="osv", url="test://one"), tmp_path, feed=feed)
    sync(store, FeedSettings(name="list", kind="osv", url="test://two"), tmp_path, feed=feed)
    assert seen == [None, "v1", None]


def kev(cve: str, added: str = "2024-01-01", ransomware: str = "Unknown") -> Exploitability:
    return Exploitability(cve=cve, kev_date_added=added, kev_due_date="2024-02-01", kev_ransomware=ransomware)


def epss(cve: str, score: float) -> Exploitability:
    return Exploitability(cve=cve, epss=score, epss_percentile=score / 2, epss_date="2026-09-29")


def test_exploitability_is_upserted_per_feed_and_journaled(store: Store, tmp_path: Path) -> None:
    kev_feed = FeedSettings(name="kev", kind="kev", url="test://kev")
    epss_feed = FeedSettings(name="epss", kind="epss", url="test://epss")
    threshold = engine.EPSS_JOURNAL_THRESHOLD

    report = sync(store, kev_feed, tmp_path, feed=ListFeed([kev("CVE-1"), kev("CVE-2")]))
    assert report.exploitability == 2
    entries = store.changes_since(0)
    assert [(e.advisory_id, e.change, e.fields) for e in entries] == [
        ("CVE-1", "exploitability", ("kev",)), ("CVE-2", "exploitability", ("kev",))]
    assert entries[0].before["kev_date_added"] == "" and entries[0].after["kev_date_added"] == "2024-01-01"  # type: ignore[index]

    mark = store.latest_sync_id()
    sync(store, epss_feed, tmp_path, feed=ListFeed([epss("CVE-1", threshold / 2), epss("CVE-3", threshold * 3)]))
    # A first EPSS score is journaled only when it is high enough to matter.
    assert [(e.advisory_id, e.fields) for e in store.changes_since(mark)] == [("CVE-3", ("epss",))]
    both = store.exploitability(["CVE-1", "CVE-2", "CVE-3"])
    assert both["CVE-1"].kev_date_added == "2024-01-01" and both["CVE-1"].epss == pytest.approx(threshold / 2)
    assert both["CVE-3"].kev_date_added == "" and both["CVE-3"].epss == pytest.approx(threshold * 3)

    # EPSS drifts a little (not journaled) and jumps (journaled); KEV drops CVE-2 and flags ransomware.
    mark = store.latest_sync_id()
    sync(store, epss_feed, tmp_path, feed=ListFeed([epss("CVE-1", threshold / 2 + 0.001),
                                                   epss("CVE-3", threshold * 3 - threshold * 1.5)], fingerprint="v2"))
    sync(store, kev_feed, tmp_path, feed=ListFeed([kev("CVE-1", ransomware="Known")], fingerprint="v2"))
    assert [(e.source, e.advisory_id, e.fields) for e in store.changes_since(mark)] == [
        ("epss", "CVE-3", ("epss",)), ("kev", "CVE-1", ("kev",)), ("kev", "CVE-2", ("kev",))]
    now = store.exploitability(["CVE-1", "CVE-2", "CVE-3"])
    assert set(now) == {"CVE-1", "CVE-3"}  # CVE-2 had only KEV's word: the row is gone
    assert now["CVE-1"].kev_ransomware == "Known" and now["CVE-1"].epss == pytest.approx(threshold / 2 + 0.001)
    assert {s.name: s.exploitability for s in store.feed_status()} == {"epss": 2, "kev": 1}


def test_sync_ids_grow_and_changes_since_a_time(store: Store, tmp_path: Path) -> None:
    settings = FeedSettings(name="list", kind="osv", url="test://x")
    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    one = sync(store, settings, tmp_path, feed=ListFeed([advisory("A")]), now=t1)
    two = sync(store, settings, tmp_path, feed=ListFeed([advisory("A"), advisory("B")], fingerprint="v2"), now=t2)
    assert two.sync_id > one.sync_id  # type: ignore[operator]
    assert [e.advisory_id for e in store.changes_since(t2)] == ["B"]
    assert [e.advisory_id for e in store.changes_since(datetime(2026, 1, 15))] == ["B"]  # naive means UTC
    assert [e.advisory_id for e in store.changes_since(t1)] == ["A", "B"]
    assert [e.advisory_id for e in store.changes_since(one.sync_id)] == ["B"]
    assert store.changes_since(two.sync_id) == []
    assert store.changes_since(t2)[0].time == t2


def test_sync_all_goes_on_after_a_failed_feed(store: Store, feeds_dir: Path, tmp_path: Path) -> None:
    maven = str(feeds_dir / "osv/Maven-ghsa-subset.zip")
    settings = Settings(feeds=[FeedSettings(name="missing", kind="osv", url=str(tmp_path / "nope.zip")),
                               FeedSettings(name="maven", kind="osv", url=maven)])
    phases: list[tuple[str, str]] = []
    reports = sync_all(store, settings, progress=lambda feed, phase: phases.append((feed, phase)))
    assert [(r.feed, r.status) for r in reports] == [("missing", "failed"), ("maven", "ok")]
    assert "nope.zip" in reports[0].error and reports[1].added == 7
    assert ("maven", "writing") in phases and ("maven", "done") in phases
    assert {s.name: s.status for s in store.feed_status()} == {"maven": "ok", "missing": "failed"}

    assert [r.feed for r in sync_all(store, settings, names=["maven"])] == ["maven"]
    with pytest.raises(ConfigError, match="no feed named nope"):
        sync_all(store, settings, names=["nope"])


# --- two processes, one feed -------------------------------------------------------------------------------


def test_two_syncs_of_one_feed_never_both_write(store: Store, store_url: str, tmp_path: Path) -> None:
    """Two stores (two processes' worth of connections) sync one feed while the first is mid-fetch."""
    settings = FeedSettings(name="list", kind="osv", url="test://x")
    records = [advisory(f"A-{i}") for i in range(50)]
    slow = ListFeed(records)
    slow.proceed = threading.Event()
    results: dict[str, Any] = {}

    def first() -> None:
        with Store.open(store_url) as other:
            try:
                results["first"] = sync_feed(other, settings, workdir=tmp_path / "one", feed=slow)
            except BaseException as error:  # reported to the test below
                results["first"] = error

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert slow.fetched.wait(30)
        second = sync_feed(store, settings, workdir=tmp_path / "two", feed=ListFeed(records))
    finally:
        slow.proceed.set()
        thread.join(60)
    first_report = results["first"]
    assert isinstance(first_report, engine.SyncReport), first_report
    if store.dialect == "postgresql":
        # The first holds the feed's lock from before its fetch: the second is refused at once.
        assert (second.status, first_report.status, first_report.added) == ("busy", "ok", 50)
    else:
        # SQLite serialises the writes; the later writer sees the same download already stored.
        assert (second.status, second.added, first_report.status) == ("ok", 50, "unchanged")
    journal = store.changes_since(0)
    assert len(journal) == 50 and len({e.sync_id for e in journal}) == 1
    assert store.feed_status()[0].advisories == 50


HOLDER = """
import pathlib, sys, time
from keelwatch.config import FeedSettings
from keelwatch.store import Store
from keelwatch.store import advisories as kb
from keelwatch.sync import sync_feed

url, feed_url, marker = sys.argv[1:4]
real = kb.insert_advisories

def insert_then_hang(session, rows, affected):
    real(session, rows, affected)
    pathlib.Path(marker).write_text("rows written, not committed")
    time.sleep(600)

kb.insert_advisories = insert_then_hang
with Store.open(url) as store:
    sync_feed(store, FeedSettings(name="pypi", kind="osv", url=feed_url), workdir=pathlib.Path(marker).parent / "w")
"""


def test_a_sync_killed_mid_write_leaves_the_store_and_the_feed_free(store: Store, store_url: str, feeds_dir: Path,
                                                                      tmp_path: Path) -> None:
    """SIGKILL, not an exception: the database itself must drop the half-written sync and its lock."""
    import os
    import signal
    import subprocess
    import sys
    import time

    sync(store, pypi(feeds_dir / BEFORE), tmp_path)
    before = snapshot(store)
    marker = tmp_path / "marker"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELWATCH_")}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, store_url, str(feeds_dir / AFTER), str(marker)], env=env,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert holder.poll() is None, holder.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the holder never reached its write"
            time.sleep(0.05)
        if store.dialect == "postgresql":
            # The holder is alive and mid-write: a second process is refused, not queued behind it.
            assert sync(store, pypi(feeds_dir / AFTER), tmp_path).status == "busy"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    assert snapshot(store) == before
    # The lock died with the holder's connection: the next sync goes through at once.
    deadline = time.monotonic() + 30
    while (report := sync(store, pypi(feeds_dir / AFTER), tmp_path)).status == "busy":
        assert time.monotonic() < deadline, "the dead holder's lock was never released"
        time.sleep(0.2)
    assert (report.status, report.added, report.deleted) == ("ok", 474, 27)


def test_kev_and_epss_syncing_at_once_keep_each_others_writes(store: Store, store_url: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """They share rows: KEV reads a row, EPSS commits a new score for it, then KEV writes its part."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite runs one writer at a time: the interleaving cannot happen there")
    kev_feed = FeedSettings(name="kev", kind="kev", url="test://kev")
    epss_feed = FeedSettings(name="epss", kind="epss", url="test://epss")
    sync(store, epss_feed, tmp_path, feed=ListFeed([epss("CVE-1", 0.2), epss("CVE-2", 0.3)]))
    kev_has_read, epss_committed = threading.Event(), threading.Event()
    real_insert = engine._insert

    def insert_after_epss(session: Any, table: Any) -> Any:
        if threading.current_thread().name == "kev":  # KEV has read the rows and is about to write
            kev_has_read.set()
            assert epss_committed.wait(30)
        return real_insert(session, table)

    monkeypatch.setattr(engine, "_insert", insert_after_epss)
    failures: list[BaseException] = []

    def kev_sync() -> None:
        try:
            with Store.open(store_url) as other:
                sync_feed(other, kev_feed, workdir=tmp_path / "kev", feed=ListFeed([kev("CVE-1"), kev("CVE-3")]))
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=kev_sync, name="kev")
    thread.start()
    try:
        assert kev_has_read.wait(30)
        sync(store, epss_feed, tmp_path, feed=ListFeed([epss("CVE-1", 0.9), epss("CVE-2", 0.3)], fingerprint="v2"))
    finally:
        epss_committed.set()
        thread.join(60)
    assert not failures, failures
    rows = store.exploitability(["CVE-1", "CVE-2", "CVE-3"])
    assert (rows["CVE-1"].kev_date_added, rows["CVE-1"].epss) == ("2024-01-01", pytest.approx(0.9))
    assert (rows["CVE-2"].kev_date_added, rows["CVE-3"].epss) == ("", None)
