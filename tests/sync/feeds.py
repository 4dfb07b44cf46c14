"""A feed for the engine's tests, following ``keelwatch.feeds.base.Feed`` exactly, and an
independent reader of OSV zips to check the journal against.

``ListFeed`` hands out records given by the test (the real feeds are tested on real data through
``keelwatch.feeds.get``), and can stop inside ``fetch`` until told to go on, for the concurrency
tests.
"""

from __future__ import annotations

import json
import threading
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from keelwatch.feeds.base import Record, Spool, Unchanged


class ListFeed:
    """Records given by the test; the fingerprint is whatever the test says it is."""

    kind = "osv"

    def __init__(self, records: Sequence[Record] = (), *, fingerprint: str = "v1", complete: bool = True) -> None:
        self.records = list(records)
        self.fingerprint = fingerprint
        self.complete = complete
        self.fetched = threading.Event()  # set once fetch has begun
        self.proceed: threading.Event | None = None  # when set by a test, fetch waits for it

    def fetch(self, url: str, fingerprint: str | None, workdir: Path) -> Unchanged | Spool:
        self.fetched.set()
        if self.proceed is not None:
            assert self.proceed.wait(30), "the test never let fetch go on"
        if fingerprint == self.fingerprint:
            return Unchanged(fingerprint)
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "records.spool"
        path.write_text("records are held by the test")
        return Spool(path=path, fingerprint=self.fingerprint, url=url, complete=self.complete)

    def parse(self, spool: Spool, *, source: str) -> Iterator[Record]:
        assert spool.path.exists()
        yield from self.records


def osv_records(path: Path) -> dict[str, dict[str, Any]]:
    """An OSV zip's records by id, read here independently of any feed."""
    with zipfile.ZipFile(path) as archive:
        docs = [json.loads(archive.read(name)) for name in archive.namelist() if name.endswith(".json")]
    return {doc["id"]: doc for doc in docs}
