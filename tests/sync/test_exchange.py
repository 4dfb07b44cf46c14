"""Export and import for air-gapped installs: same knowledge on the other side, tampering refused."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from keelwatch.config import FeedSettings
from keelwatch.errors import FeedError
from keelwatch.model import Exploitability
from keelwatch.store import Store
from keelwatch.store import advisories as kb
from keelwatch.sync.engine import sync_feed
from keelwatch.sync.exchange import COMMENT_PREFIX, export_database, import_database, verify_export

from .feeds import ListFeed, osv_records

WHEN = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def fill(store: Store, feeds_dir: Path, tmp_path: Path, pypi: str = "osv/PyPI.before-2023-01-01.zip") -> None:
    for name, url in (("pypi", pypi), ("maven", "osv/Maven-ghsa-subset.zip")):
        sync_feed(store, FeedSettings(name=name, kind="osv", url=str(feeds_dir / url)), workdir=tmp_path / "w",
                  now=WHEN)
    records = [Exploitability(cve="CVE-2021-44228", kev_date_added="2021-12-10", kev_due_date="2021-12-24",
                              kev_ransomware="Known"), Exploitability(cve="CVE-2022-1", kev_date_added="2022-01-01")]
    sync_feed(store, FeedSettings(name="kev", kind="kev", url="test://kev"), workdir=tmp_path / "w",
              feed=ListFeed(records), now=WHEN)
    scores = [Exploitability(cve="CVE-2021-44228", epss=0.94, epss_percentile=0.999, epss_date="2026-09-29"),
              Exploitability(cve="CVE-2023-2", epss=0.001, epss_percentile=0.1, epss_date="2026-09-29")]
    sync_feed(store, FeedSettings(name="epss", kind="epss", url="test://epss"), workdir=tmp_path / "w",
              feed=ListFeed(scores), now=WHEN)


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def knowledge(store: Store) -> dict[str, Any]:
    """Every advisory, exploitability row and feed state a store holds, as comparable values."""
    with store.session(write=False) as session:
        keys = session.execute(select(kb.ADVISORIES.c.id)).scalars().all()
        advisories = sorted(kb.load_advisories(session, keys).values(), key=lambda a: (a.source, a.id))
        exploits = session.execute(select(kb.EXPLOITABILITY).order_by(kb.EXPLOITABILITY.c.cve)).all()
    states = [(s.name, s.kind, s.url, s.fingerprint, s.last_success, s.status, s.advisories, s.withdrawn,
               s.exploitability) for s in store.feed_status()]
    return {"advisories": advisories, "exploitability": [tuple(r) for r in exploits], "states": states}


def test_export_then_import_into_an_empty_store_gives_the_same_knowledge(
        store: Store, feeds_dir: Path, tmp_path: Path) -> None:
    fill(store, feeds_dir, tmp_path)
    path = tmp_path / "kb.zip"
    summary = export_database(store, path, now=WHEN)
    assert summary.feeds == ("epss", "kev", "maven", "pypi")
    assert summary.advisories == len(osv_records(feeds_dir / "osv/PyPI.before-2023-01-01.zip")) + 7
    assert summary.exploitability == 3 and summary.size == path.stat().st_size
    assert verify_export(path)["feeds"] == list(summary.feeds)

    with Store.open(f"sqlite:///{tmp_path / 'air-gapped.db'}") as other:
        report = import_database(other, path)
        assert (report.kind, report.status, report.added, report.deleted) == ("import", "ok", summary.advisories, 0)
        assert knowledge(other) == knowledge(store)
        journal = other.changes_since(0)
        assert len([e for e in journal if e.change == "added"]) == summary.advisories
        assert {e.advisory_id for e in journal if e.change == "exploitability"} == {"CVE-2021-44228", "CVE-2022-1"}
        assert {s.last_sync for s in other.feed_status()} == {report.sync_id}
        # Exported again, the other side writes the very same records.
        again = export_database(other, tmp_path / "again.zip", now=WHEN)
        assert members(again.path) == members(path)

        # Importing the same file twice changes nothing and journals nothing.
        second = import_database(other, path)
        assert (second.added, second.changed, second.deleted, second.unchanged) == (0, 0, 0, summary.advisories)
        assert other.changes_since(report.sync_id) == []


def test_an_import_journals_the_update_it_brings(store: Store, feeds_dir: Path, tmp_path: Path) -> None:
    """The air-gapped update: the connected side moved to the newer snapshot; the import says what changed."""
    with Store.open(f"sqlite:///{tmp_path / 'connected.db'}") as connected:
        fill(connected, feeds_dir, tmp_path)
        export_database(connected, tmp_path / "old.zip")
        fill(connected, feeds_dir, tmp_path, pypi="osv/PyPI.zip")
        export_database(connected, tmp_path / "new.zip")
        expected = knowledge(connected)
    first = import_database(store, tmp_path / "old.zip")
    report = import_database(store, tmp_path / "new.zip")
    assert (report.added, report.deleted, report.changed, report.withdrawn) == (474, 27, 16, 3)
    assert {e.sync_id for e in store.changes_since(first.sync_id)} == {report.sync_id}
    assert knowledge(store) == expected


def test_an_import_leaves_feeds_it_does_not_carry_alone(store: Store, feeds_dir: Path, tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'connected.db'}") as connected:
        sync_feed(connected, FeedSettings(name="maven", kind="osv", url=str(feeds_dir / "osv/Maven-ghsa-subset.zip")),
                  workdir=tmp_path / "w")
        export_database(connected, tmp_path / "maven.zip")
    sync_feed(store, FeedSettings(name="npm", kind="osv", url=str(feeds_dir / "osv/npm-ghsa-subset.zip")),
              workdir=tmp_path / "w")
    import_database(store, tmp_path / "maven.zip")
    assert {s.name: s.advisories for s in store.feed_status()} == {"maven": 7, "npm": 33}


def rewrite(path: Path, out: Path, change: dict[str, bytes], *, comment: bytes | None = None) -> None:
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, change.get(name, src.read(name)))
        dst.comment = src.comment if comment is None else comment


def tampered_files(path: Path, tmp_path: Path) -> dict[str, Path]:
    original = members(path)
    lines = original["advisories.jsonl"].splitlines(keepends=True)
    doc = json.loads(lines[0])
    doc["affected"][0]["ranges"][0]["events"][-1][1] = "999"  # "fixed" moved: every image looks patched
    edited = b"".join([json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n", *lines[1:]])
    files: dict[str, Path] = {}

    files["member edited"] = tmp_path / "edited.zip"
    rewrite(path, files["member edited"], {"advisories.jsonl": edited})

    manifest = json.loads(original["manifest.json"])
    manifest["files"]["advisories.jsonl"].update(sha256=hashlib.sha256(edited).hexdigest(),
                                                 size=len(edited))
    files["member and manifest edited"] = tmp_path / "both.zip"
    rewrite(path, files["member and manifest edited"], {"advisories.jsonl": edited,
                                                         "manifest.json": json.dumps(manifest).encode()})

    files["no checksum"] = tmp_path / "nocomment.zip"
    rewrite(path, files["no checksum"], {}, comment=b"")

    data = path.read_bytes()
    files["truncated"] = tmp_path / "truncated.zip"
    files["truncated"].write_bytes(data[: len(data) * 2 // 3])
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # inside advisories.jsonl's compressed bytes
    files["a flipped byte"] = tmp_path / "flipped.zip"
    files["a flipped byte"].write_bytes(bytes(flipped))
    files["not an export"] = tmp_path / "other.zip"
    with zipfile.ZipFile(files["not an export"], "w") as other:
        other.writestr("PYSEC-1.json", "{}")
    files["not a zip"] = tmp_path / "text.zip"
    files["not a zip"].write_text("hello")
    files["missing"] = tmp_path / "missing.zip"
    return files


def test_a_tampered_or_truncated_file_is_refused_and_nothing_changes(
        store: Store, feeds_dir: Path, tmp_path: Path) -> None:
    fill(store, feeds_dir, tmp_path)
    path = tmp_path / "kb.zip"
    export_database(store, path)
    assert COMMENT_PREFIX in path.read_bytes()[-200:]
    # The store already holds older data for pypi: a bad file must not touch it.
    with Store.open(f"sqlite:///{tmp_path / 'older.db'}") as older_store:
        sync_feed(older_store, FeedSettings(name="pypi", kind="osv", url=str(feeds_dir / "osv/PyPI.zip")),
                  workdir=tmp_path / "w")
        before = knowledge(older_store)
        journal = older_store.changes_since(0)
        for what, bad in tampered_files(path, tmp_path).items():
            with pytest.raises(FeedError) as caught:
                import_database(older_store, bad)
            assert str(bad) in str(caught.value), what
            assert knowledge(older_store) == before, what
            assert older_store.changes_since(0) == journal, what
        import_database(older_store, path)  # the intact file still goes in


def test_an_import_that_fails_mid_write_changes_nothing(store: Store, feeds_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'connected.db'}") as connected:
        fill(connected, feeds_dir, tmp_path, pypi="osv/PyPI.zip")
        export_database(connected, tmp_path / "kb.zip")
    fill(store, feeds_dir, tmp_path)
    before, journal = knowledge(store), store.changes_since(0)
    real = kb.insert_advisories
    calls = []

    def fail_on_second_feed(*args: Any) -> None:
        calls.append(1)
        real(*args)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(kb, "insert_advisories", fail_on_second_feed)
    with pytest.raises(KeyboardInterrupt):
        import_database(store, tmp_path / "kb.zip")
    assert knowledge(store) == before and store.changes_since(0) == journal
