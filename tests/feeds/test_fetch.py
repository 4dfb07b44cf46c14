"""fetch.py against a real HTTP server on 127.0.0.1: retries, timeouts, size cap, 304s, resume."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from keelwatch.errors import ConfigError, FeedError
from keelwatch.feeds.base import Spool, Unchanged
from keelwatch.feeds.fetch import Fetcher, FetchOptions, fetch_file, fetch_many, fingerprint_fields, spool_name

from .httpserver import Route, TestServer

FAST = FetchOptions(connect_timeout=2, read_timeout=2, retries=3, backoff=0.01, max_backoff=0.05)
BODY = bytes(range(256)) * 4096  # 1 MiB, not compressible into nothing


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def spool_of(result: Unchanged | Spool) -> Spool:
    assert isinstance(result, Spool), result
    return result


def test_500s_then_success_is_retried(server: TestServer, tmp_path: Path) -> None:
    server.routes["/all.zip"] = Route(BODY, fail=[500, 502])
    spool = spool_of(fetch_file(server.url("/all.zip"), None, tmp_path, FAST))
    assert spool.path.read_bytes() == BODY and spool.path.parent == tmp_path
    assert len(server.requests_to("/all.zip")) == 3


def test_persistent_503_gives_a_retryable_feed_error(server: TestServer, tmp_path: Path) -> None:
    server.routes["/all.zip"] = Route(BODY, fail=[503] * 10)
    with pytest.raises(FeedError, match=r"HTTP 503 .*gave up after 4 attempts") as err:
        fetch_file(server.url("/all.zip"), None, tmp_path, FAST)
    assert err.value.retryable
    assert len(server.requests_to("/all.zip")) == 4
    assert list(tmp_path.iterdir()) == []


def test_retry_after_is_honoured_and_capped(server: TestServer, tmp_path: Path) -> None:
    server.routes["/a"] = Route(b"ok", fail=[429, 429], retry_after="1")
    server.routes["/b"] = Route(b"ok", fail=[503], retry_after="3600")
    sleeps = Sleeps()
    options = FetchOptions(retries=3, backoff=0.01, max_retry_after=2.0)
    with Fetcher(options, tmp_path, sleep=sleeps) as fetcher:
        assert spool_of(fetcher.file(server.url("/a"))).path.read_bytes() == b"ok"
        assert spool_of(fetcher.file(server.url("/b"))).path.read_bytes() == b"ok"
    assert len(sleeps) == 3
    assert 1.0 <= sleeps[0] <= 1.1 and 1.0 <= sleeps[1] <= 1.1  # Retry-After: 1 beats a 10 ms backoff
    assert 2.0 <= sleeps[2] <= 2.2  # an hour asked for, max_retry_after given


def test_backoff_doubles(server: TestServer, tmp_path: Path) -> None:
    server.routes["/a"] = Route(b"ok", fail=[500, 500, 500])
    sleeps = Sleeps()
    with Fetcher(FetchOptions(retries=3, backoff=1.0, max_backoff=3.0), tmp_path, sleep=sleeps) as fetcher:
        spool_of(fetcher.file(server.url("/a")))
    assert [round(s) for s in sleeps] == [1, 2, 3]  # 1, 2, then 4 capped at 3 (plus ≤10% jitter)


def test_a_hanging_server_times_out(server: TestServer, tmp_path: Path) -> None:
    server.routes["/slow"] = Route(b"late", hang=3)
    options = FetchOptions(connect_timeout=1, read_timeout=0.3, retries=1, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(FeedError, match="timed out") as err:
        fetch_file(server.url("/slow"), None, tmp_path, options)
    assert err.value.retryable
    assert time.monotonic() - started < 2.5
    assert len(server.requests_to("/slow")) == 2


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/all.zip"
    with pytest.raises(FeedError, match="ConnectError.*gave up after 2 attempts"):
        fetch_file(url, None, tmp_path, FetchOptions(retries=1, backoff=0.01))


def test_an_endless_body_is_cut_at_max_bytes(server: TestServer, tmp_path: Path) -> None:
    server.routes["/endless"] = Route(endless=True)
    options = FetchOptions(max_bytes=2 << 20, retries=2, backoff=0.01)
    with pytest.raises(FeedError, match="exceeds max_bytes") as err:
        fetch_file(server.url("/endless"), None, tmp_path, options)
    assert not err.value.retryable
    assert len(server.requests_to("/endless")) == 1  # not retried: the next answer would be as big
    assert list(tmp_path.iterdir()) == []  # nothing left to fill the disk


def test_a_declared_length_over_the_cap_is_refused_before_reading(server: TestServer, tmp_path: Path) -> None:
    server.routes["/big"] = Route(BODY)
    with pytest.raises(FeedError, match="exceeds max_bytes"):
        fetch_file(server.url("/big"), None, tmp_path, FetchOptions(max_bytes=1000))
    assert list(tmp_path.iterdir()) == []


def test_a_gzip_bomb_is_cut_on_decoded_bytes(server: TestServer, tmp_path: Path) -> None:
    server.routes["/bomb"] = Route(b"\0" * (8 << 20), gzip=True, ranges=False)
    with pytest.raises(FeedError, match="exceeds max_bytes"):
        fetch_file(server.url("/bomb"), None, tmp_path, FetchOptions(max_bytes=1 << 20))


def test_4xx_fails_at_once(server: TestServer, tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="HTTP 404") as err:
        fetch_file(server.url("/missing.zip"), None, tmp_path, FAST)
    assert not err.value.retryable and "check the feed's url" in str(err.value)
    assert len(server.requests_to("/missing.zip")) == 1


def test_etag_gives_304_unchanged(server: TestServer, tmp_path: Path) -> None:
    server.routes["/all.zip"] = Route(BODY, etag='"v1"')
    first = spool_of(fetch_file(server.url("/all.zip"), None, tmp_path, FAST))
    assert fingerprint_fields(first.fingerprint)["etag"] == '"v1"'
    first.path.unlink()
    assert fetch_file(server.url("/all.zip"), first.fingerprint, tmp_path, FAST) == Unchanged(first.fingerprint)
    assert server.requests_to("/all.zip")[-1].headers["if-none-match"] == '"v1"'
    server.routes["/all.zip"] = Route(BODY[::-1], etag='"v2"')
    second = spool_of(fetch_file(server.url("/all.zip"), first.fingerprint, tmp_path, FAST))
    assert second.path.read_bytes() == BODY[::-1]


def test_last_modified_gives_304_unchanged(server: TestServer, tmp_path: Path) -> None:
    server.routes["/kev.json"] = Route(b"{}", last_modified=1_700_000_000)
    first = spool_of(fetch_file(server.url("/kev.json"), None, tmp_path, FAST))
    assert fingerprint_fields(first.fingerprint)["last_modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert isinstance(fetch_file(server.url("/kev.json"), first.fingerprint, tmp_path, FAST), Unchanged)
    assert server.requests_to("/kev.json")[-1].headers["if-modified-since"] == "Tue, 14 Nov 2023 22:13:20 GMT"


def test_same_bytes_without_validators_are_unchanged(server: TestServer, tmp_path: Path) -> None:
    server.routes["/plain"] = Route(b"same")
    first = spool_of(fetch_file(server.url("/plain"), None, tmp_path, FAST))
    first.path.unlink()
    assert isinstance(fetch_file(server.url("/plain"), first.fingerprint, tmp_path, FAST), Unchanged)
    assert list(tmp_path.iterdir()) == []


def test_a_dropped_transfer_resumes_with_range(server: TestServer, tmp_path: Path) -> None:
    server.routes["/all.zip"] = Route(BODY, etag='"v1"', drop_after=[300_000, 200_000])
    spool = spool_of(fetch_file(server.url("/all.zip"), None, tmp_path, FAST))
    assert spool.path.read_bytes() == BODY
    seen = server.requests_to("/all.zip")
    assert [s.headers.get("range") for s in seen] == [None, "bytes=300000-", "bytes=500000-"]
    assert seen[1].headers["if-range"] == '"v1"'
    assert sorted(p.name for p in tmp_path.iterdir()) == [spool.path.name]  # no .part left


def test_a_partial_spool_from_an_earlier_sync_is_resumed(server: TestServer, tmp_path: Path) -> None:
    url = server.url("/all.zip")
    server.routes["/all.zip"] = Route(BODY, etag='"v1"', drop_after=[400_000])
    with pytest.raises(FeedError):
        fetch_file(url, None, tmp_path, FetchOptions(retries=0))
    part = tmp_path / (spool_name(url) + ".part")
    assert part.stat().st_size == 400_000
    spool = spool_of(fetch_file(url, None, tmp_path, FAST))  # the next sync, same workdir
    assert spool.path.read_bytes() == BODY
    assert server.requests_to("/all.zip")[-1].headers["range"] == "bytes=400000-"


def test_a_changed_file_is_not_resumed_onto_an_old_part(server: TestServer, tmp_path: Path) -> None:
    url = server.url("/all.zip")
    server.routes["/all.zip"] = Route(BODY, etag='"v1"', drop_after=[400_000])
    with pytest.raises(FeedError):
        fetch_file(url, None, tmp_path, FetchOptions(retries=0))
    server.routes["/all.zip"] = Route(BODY[::-1], etag='"v2"')  # If-Range no longer matches: a 200
    assert spool_of(fetch_file(url, None, tmp_path, FAST)).path.read_bytes() == BODY[::-1]


def test_a_server_without_ranges_restarts_from_zero(server: TestServer, tmp_path: Path) -> None:
    server.routes["/all.zip"] = Route(BODY, etag='"v1"', ranges=False, drop_after=[100_000])
    assert spool_of(fetch_file(server.url("/all.zip"), None, tmp_path, FAST)).path.read_bytes() == BODY


def test_416_on_resume_restarts(server: TestServer, tmp_path: Path) -> None:
    url = server.url("/x")
    server.routes["/x"] = Route(b"short", etag='"v1"')
    name = spool_name(url)
    (tmp_path / (name + ".part")).write_bytes(b"0123456789")  # longer than the file now is
    (tmp_path / (name + ".part.json")).write_text(json.dumps({"key": url, "validator": '"v1"'}))
    assert spool_of(fetch_file(url, None, tmp_path, FAST)).path.read_bytes() == b"short"


# --- local files ---------------------------------------------------------------------------------------


def test_local_file_fingerprints(tmp_path: Path) -> None:
    src = tmp_path / "feed.json"
    src.write_bytes(b"[1]")
    work = tmp_path / "work"
    first = spool_of(fetch_file(src.as_uri(), None, work, FAST))
    assert first.path.read_bytes() == b"[1]" and first.path.parent == work
    assert fetch_file(str(src), first.fingerprint, work, FAST) == Unchanged(first.fingerprint)
    os.utime(src, ns=(1, 1))  # touched, same bytes: unchanged, with the new mtime remembered
    touched = fetch_file(str(src), first.fingerprint, work, FAST)
    assert isinstance(touched, Unchanged) and fingerprint_fields(touched.fingerprint)["mtime_ns"] == 1
    src.write_bytes(b"[2]")
    assert spool_of(fetch_file(str(src), touched.fingerprint, work, FAST)).path.read_bytes() == b"[2]"
    with pytest.raises(FeedError, match="no such file"):
        fetch_file(str(tmp_path / "nope.json"), None, work, FAST)
    with pytest.raises(FeedError, match="exceeds max_bytes"):
        fetch_file(str(src), None, work, FetchOptions(max_bytes=2))
    with pytest.raises(FeedError, match="unsupported URL scheme"):
        fetch_file("ftp://example.org/x", None, work, FAST)


def test_fetch_many_is_unchanged_only_when_every_member_is(server: TestServer, tmp_path: Path) -> None:
    import zipfile

    server.routes["/v3.19/main.json"] = Route(b"{}", etag='"m1"')
    server.routes["/v3.19/community.json"] = Route(b"[]", etag='"c1"')
    members = {"v3.19/main.json": server.url("/v3.19/main.json"),
               "v3.19/community.json": server.url("/v3.19/community.json")}
    first = spool_of(fetch_many(members, None, tmp_path, FAST, name="secdb.zip"))
    with zipfile.ZipFile(first.path) as z:
        assert sorted(z.namelist()) == ["v3.19/community.json", "v3.19/main.json"]
    assert isinstance(fetch_many(members, first.fingerprint, tmp_path, FAST, name="secdb.zip"), Unchanged)
    server.routes["/v3.19/main.json"] = Route(b'{"x": 1}', etag='"m2"')
    second = spool_of(fetch_many(members, first.fingerprint, tmp_path, FAST, name="secdb.zip"))
    with zipfile.ZipFile(second.path) as z:  # the whole snapshot, the unchanged member too
        assert z.read("v3.19/main.json") == b'{"x": 1}' and z.read("v3.19/community.json") == b"[]"


def test_options_from_a_feeds_table() -> None:
    options = FetchOptions.from_mapping({"max_bytes": "512 MiB", "retries": 2, "read_timeout": 5,
                                         "headers": {"Authorization": "Bearer x"}}, where="osv")
    assert (options.max_bytes, options.retries, options.read_timeout) == (512 << 20, 2, 5.0)
    assert options.headers == {"Authorization": "Bearer x"}
    with pytest.raises(ConfigError, match="max_bytes"):
        FetchOptions.from_mapping({"max_bytes": "lots"}, where="osv")
    with pytest.raises(ConfigError, match="retries"):
        FetchOptions.from_mapping({"retries": -1}, where="osv")
