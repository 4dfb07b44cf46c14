"""Getting feed bytes onto disk: HTTP(S) with conditional requests, retries, limits and resume;
``file://`` URLs and local paths with content fingerprints. Shared by every feed; not a feed itself.

What a caller can rely on:

- **Spools, never memory.** Bodies stream to a file in ``workdir``; the caller (the sync) deletes
  the spool when it is done. A local source is copied, so deleting a spool never deletes the
  user's file.
- **Unchanged is cheap.** HTTP sends ``If-None-Match``/``If-Modified-Since`` from the stored
  fingerprint and returns ``Unchanged`` on 304. Without validators, a body whose sha256 equals the
  stored one is ``Unchanged`` too. A local file is ``Unchanged`` when size and mtime match (no
  read at all), or when its sha256 does.
- **Failures are classified.** Connection errors, timeouts, 5xx and 429 are retried with
  exponential backoff (``Retry-After`` honoured, capped); what is left is a ``FeedError`` with
  ``retryable=True``. Any other 4xx is a ``FeedError`` at once (retrying will not fix a 404).
- **Limits.** Connect and read timeouts, a total time per download, and a maximum body size
  counted while streaming (the decoded bytes, so a gzip bomb is cut off too): a server sending an
  endless body is stopped at ``max_bytes`` with a ``FeedError``, the partial file removed.
- **Resume.** A broken transfer leaves ``<spool>.part`` and the validator it was sent with; the
  next attempt (a retry now, or the next sync with the same ``workdir``) asks for the rest with
  ``Range`` + ``If-Range``. A 206 whose range starts where the part ends is appended; a 200 (the
  file changed, or the server ignores ranges) starts over.

Fingerprints are JSON objects in a string (``{"etag": …, "last_modified": …, "sha256": …}`` or
``{"size": …, "mtime_ns": …, "sha256": …}``); feeds treat them as opaque.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import random
import re
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlencode, urlsplit

import httpx

from keelwatch import __version__
from keelwatch.errors import ConfigError, FeedError
from keelwatch.feeds.base import Spool, Unchanged

log = logging.getLogger("keelwatch.feeds")

USER_AGENT = f"keelwatch/{__version__} (+https://github.com/keelwatch)"
CHUNK = 1 << 20


# --- options --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """How patient and how trusting a feed's downloads are; every field is a ``[[feeds]]`` option."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0  # longest silence between two reads
    total_timeout: float = 3 * 3600.0  # one download, retries included: a trickling server ends too
    retries: int = 4  # attempts after the first
    backoff: float = 1.0  # first delay in seconds; doubles per attempt
    max_backoff: float = 60.0
    max_retry_after: float = 300.0  # a server asking to wait longer is not waited for that long
    max_bytes: int = 4 << 30
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. a mirror's Authorization
    # Statuses retried besides 429 and 5xx (NVD answers 403 when its rate limit is exceeded).
    retry_statuses: frozenset[int] = frozenset()

    KEYS: ClassVar[tuple[str, ...]] = ("connect_timeout", "read_timeout", "total_timeout", "retries", "backoff",
                                       "max_backoff", "max_retry_after", "max_bytes", "headers")

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any], *, where: str, **overrides: Any) -> FetchOptions:
        values: dict[str, Any] = dict(overrides)
        for f in fields(cls):
            if f.name not in options or f.name not in cls.KEYS:
                continue
            if f.name == "max_bytes":
                values[f.name] = size_option(options, f.name, 0, where=where)  # key present: no default
            elif f.name == "retries":
                values[f.name] = int_option(options, f.name, 0, where=where)
            elif f.name == "headers":
                headers = options[f.name]
                if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
                    raise ConfigError(f"feed {where}: option 'headers' must be a table of strings")
                values[f.name] = dict(headers)
            else:
                values[f.name] = float_option(options, f.name, 0.0, where=where)
        return cls(**values)


def check_options(where: str, options: Mapping[str, Any], known: Iterable[str]) -> None:
    """Unknown ``[[feeds]]`` keys are mistakes to report, never silently ignored settings."""
    known = tuple(known)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"feed {where}: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")


def int_option(options: Mapping[str, Any], key: str, default: int, *, where: str) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"feed {where}: option {key!r} must be a non-negative integer, got {value!r}")
    return value


def float_option(options: Mapping[str, Any], key: str, default: float, *, where: str) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"feed {where}: option {key!r} must be a non-negative number of seconds, got {value!r}")
    return float(value)


def bool_option(options: Mapping[str, Any], key: str, default: bool, *, where: str) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"feed {where}: option {key!r} must be true or false, got {value!r}")
    return value


def str_list_option(options: Mapping[str, Any], key: str, default: Iterable[str], *, where: str) -> tuple[str, ...]:
    value = options.get(key, None)
    if value is None:
        return tuple(default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"feed {where}: option {key!r} must be a list of strings, got {value!r}")
    return tuple(value)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
                 "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40}


def size_option(options: Mapping[str, Any], key: str, default: int, *, where: str) -> int:
    """Bytes as an integer or as text like ``"512 MiB"`` (the config file's size syntax)."""
    value = options.get(key, default)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if not match:
        raise ConfigError(f"feed {where}: option {key!r} must be a size like \"4 GiB\" or bytes, got {value!r}")
    number, unit = match.groups()
    unit = (unit or "").lower()
    unit = unit[:-1] if unit.endswith("b") and unit != "b" else unit
    size = int(float(number) * _SIZE_FACTORS[unit])
    if size <= 0:
        raise ConfigError(f"feed {where}: option {key!r} must be positive")
    return size


# --- fingerprints and names -------------------------------------------------------------------------


def fingerprint_fields(fingerprint: str | None) -> dict[str, Any]:
    """A stored fingerprint as a dict; anything else (None, another feed's format) as ``{}``."""
    if not fingerprint:
        return {}
    try:
        value = json.loads(fingerprint)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def make_fingerprint(**values: Any) -> str:
    return json.dumps({k: v for k, v in values.items() if v not in (None, "")}, sort_keys=True,
                      separators=(",", ":"))


def local_path(url: str) -> Path | None:
    """The path a ``file://`` URL or a plain path names; ``None`` for other schemes."""
    if url.startswith("file://"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise FeedError(f"{url}: file:// URLs must name a local file (no host)")
        return Path(unquote(parts.path))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url):
        return None
    return Path(url).expanduser()


def is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def spool_name(url: str, params: Mapping[str, Any] | None = None) -> str:
    """A stable file name per URL: a retry or the next sync finds the same ``.part`` to resume."""
    key = url + ("?" + urlencode(sorted(params.items())) if params else "")
    base = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or "download"
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base)[-80:]
    return f"{hashlib.sha256(key.encode()).hexdigest()[:12]}-{base}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _too_large(url: str, limit: int) -> FeedError:
    return FeedError(f"{url}: body exceeds max_bytes ({limit} bytes); download stopped",
                     hint="a feed this large is unexpected; raise max_bytes in its [[feeds]] table if it is real")


# --- the fetcher ------------------------------------------------------------------------------------


class _Transient(Exception):
    """One attempt failed in a way another attempt may not (network, 5xx, 429)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Restart(Exception):
    """The partial download cannot be continued: drop it and ask again from byte 0."""


class Fetcher:
    """Downloads for one sync: one HTTP connection pool, the feed's options, one workdir."""

    def __init__(self, options: FetchOptions, workdir: Path,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.options = options
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._sleep = sleep
        self._client: httpx.Client | None = None

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            o = self.options
            self._client = httpx.Client(
                timeout=httpx.Timeout(connect=o.connect_timeout, read=o.read_timeout, write=o.read_timeout,
                                      pool=o.connect_timeout),
                follow_redirects=True,
                headers={"User-Agent": USER_AGENT, **o.headers},
            )
        return self._client

    # -- public ---------------------------------------------------------------------------------

    def file(self, url: str, fingerprint: str | None = None, *, name: str | None = None,
             params: Mapping[str, Any] | None = None) -> Unchanged | Spool:
        """One URL or path → ``Unchanged`` or a spool file in the workdir."""
        dest = self.workdir / (name or spool_name(url, params))
        if is_http(url):
            return self._http(url, fingerprint, dest, params)
        path = local_path(url)
        if path is None:
            raise FeedError(f"{url}: unsupported URL scheme", hint="use https://, http://, file:// or a local path")
        return self._local(path, fingerprint, dest)

    # -- local files ----------------------------------------------------------------------------

    def _local(self, path: Path, fingerprint: str | None, dest: Path) -> Unchanged | Spool:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise FeedError(f"{path}: no such file", hint="check the feed's url") from None
        except OSError as exc:
            raise FeedError(f"{path}: {exc.strerror or exc}") from None
        if path.is_dir():
            raise FeedError(f"{path} is a directory", hint="this feed reads one file: name the file")
        old = fingerprint_fields(fingerprint)
        # Same size and mtime as last time: unchanged without reading (rsync's quick check).
        if old.get("sha256") and old.get("size") == st.st_size and old.get("mtime_ns") == st.st_mtime_ns:
            return Unchanged(fingerprint or "")
        if st.st_size > self.options.max_bytes:
            raise _too_large(str(path), self.options.max_bytes)
        digest = hashlib.sha256()
        copied = 0
        try:
            with path.open("rb") as src, dest.open("wb") as out:
                while chunk := src.read(CHUNK):
                    copied += len(chunk)
                    if copied > self.options.max_bytes:  # the file grew while we read it
                        raise _too_large(str(path), self.options.max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as exc:
            dest.unlink(missing_ok=True)
            raise FeedError(f"{path}: {exc.strerror or exc}") from None
        except FeedError:
            dest.unlink(missing_ok=True)
            raise
        new = make_fingerprint(size=copied, mtime_ns=st.st_mtime_ns, sha256=digest.hexdigest())
        if old.get("sha256") == digest.hexdigest():
            dest.unlink(missing_ok=True)  # touched, not changed
            return Unchanged(new)
        return Spool(path=dest, fingerprint=new, url=str(path))

    # -- HTTP -----------------------------------------------------------------------------------

    def _http(self, url: str, fingerprint: str | None, dest: Path,
              params: Mapping[str, Any] | None) -> Unchanged | Spool:
        o = self.options
        deadline = time.monotonic() + o.total_timeout
        attempt = 0
        restarts = 0
        while True:
            try:
                return self._attempt(url, params, fingerprint, dest, deadline)
            except _Restart:
                restarts += 1
                _drop_partial(dest)
                if restarts > 2:  # a server that keeps answering ranges wrongly
                    raise FeedError(f"GET {url}: the server's partial responses do not line up") from None
            except _Transient as exc:
                attempt += 1
                if attempt > o.retries:
                    raise FeedError(f"GET {url}: {exc.reason} (gave up after {attempt} attempts)",
                                    hint="the server or the network is failing; the previous data is kept",
                                    retryable=True) from None
                delay = min(o.backoff * 2 ** (attempt - 1), o.max_backoff)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, o.max_retry_after))
                delay *= 1 + random.random() * 0.1  # keep many keelwatch instances from retrying in step
                if time.monotonic() + delay > deadline:
                    raise FeedError(f"GET {url}: {exc.reason}; total_timeout ({o.total_timeout:g} s) reached",
                                    retryable=True) from None
                log.warning("GET %s: %s; retry %d of %d in %.1f s", url, exc.reason, attempt, o.retries, delay)
                self._sleep(delay)

    def _attempt(self, url: str, params: Mapping[str, Any] | None, fingerprint: str | None, dest: Path,
                 deadline: float) -> Unchanged | Spool:
        o = self.options
        part, meta = _partial_paths(dest)
        key = url + ("?" + urlencode(sorted(params.items())) if params else "")
        headers: dict[str, str] = {}
        resume_from = 0
        saved = _read_meta(meta)
        if part.exists() and saved.get("key") == key and saved.get("validator"):
            resume_from = part.stat().st_size
        if resume_from:
            headers["Range"] = f"bytes={resume_from}-"
            headers["If-Range"] = saved["validator"]
            headers["Accept-Encoding"] = "identity"  # byte offsets are offsets of the stored bytes
        else:
            old = fingerprint_fields(fingerprint)
            if old.get("etag"):
                headers["If-None-Match"] = old["etag"]
            if old.get("last_modified"):
                headers["If-Modified-Since"] = old["last_modified"]
        try:
            with self.client.stream("GET", url, params=params, headers=headers) as resp:
                return self._receive(url, key, resp, fingerprint, dest, resume_from, deadline)
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out ({type(exc).__name__})") from None
        except (httpx.UnsupportedProtocol, httpx.TooManyRedirects, httpx.InvalidURL) as exc:
            raise FeedError(f"GET {url}: {exc}") from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from None
        finally:
            if o.max_bytes and part.exists() and part.stat().st_size > o.max_bytes:  # never leave a huge part
                _drop_partial(dest)

    def _receive(self, url: str, key: str, resp: httpx.Response, fingerprint: str | None, dest: Path,
                 resume_from: int, deadline: float) -> Unchanged | Spool:
        o = self.options
        part, meta = _partial_paths(dest)
        status = resp.status_code
        if status == 304:
            return Unchanged(fingerprint or "")
        if status == 416 and resume_from:
            raise _Restart()
        if status == 429 or status >= 500 or status in o.retry_statuses:
            raise _Transient(f"HTTP {status} {resp.reason_phrase}", _retry_after(resp.headers.get("Retry-After")))
        if status >= 400:
            raise FeedError(f"GET {url}: HTTP {status} {resp.reason_phrase}", hint=_status_hint(status))
        if status not in (200, 206):
            raise FeedError(f"GET {url}: unexpected HTTP {status} {resp.reason_phrase}")
        etag = resp.headers.get("ETag") or ""
        last_modified = resp.headers.get("Last-Modified") or ""
        encoded = resp.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
        if status == 206:
            if not resume_from or encoded or _range_start(resp.headers.get("Content-Range")) != resume_from:
                raise _Restart()
            written, mode = resume_from, "ab"
        else:
            written, mode = 0, "wb"
        length = resp.headers.get("Content-Length")
        if not encoded and length and length.isdigit() and written + int(length) > o.max_bytes:
            raise _too_large(url, o.max_bytes)
        # A strong validator lets a broken transfer resume later; a weak ETag may not be used in If-Range.
        validator = etag if etag and not etag.startswith("W/") else last_modified
        if validator and not encoded:
            meta.write_text(json.dumps({"key": key, "validator": validator}))
        else:
            meta.unlink(missing_ok=True)
        with part.open(mode) as out:
            for chunk in resp.iter_bytes():  # as received: a chunk_size would hold back bytes a drop loses
                written += len(chunk)
                if written > o.max_bytes:
                    out.close()
                    _drop_partial(dest)
                    raise _too_large(url, o.max_bytes)
                out.write(chunk)
                if time.monotonic() > deadline:
                    raise FeedError(f"GET {url}: total_timeout ({o.total_timeout:g} s) reached after {written} bytes",
                                    hint="the server is too slow; the partial download is kept for the next try",
                                    retryable=True)
        part.replace(dest)
        meta.unlink(missing_ok=True)
        digest = sha256_file(dest)
        new = make_fingerprint(etag=etag, last_modified=last_modified, sha256=digest)
        if fingerprint_fields(fingerprint).get("sha256") == digest:
            dest.unlink(missing_ok=True)  # a server without validators sent the same bytes again
            return Unchanged(new)
        return Spool(path=dest, fingerprint=new, url=url)


def _partial_paths(dest: Path) -> tuple[Path, Path]:
    return dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".part.json")


def _drop_partial(dest: Path) -> None:
    for path in _partial_paths(dest):
        path.unlink(missing_ok=True)


def _read_meta(meta: Path) -> dict[str, Any]:
    try:
        value = json.loads(meta.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _range_start(content_range: str | None) -> int | None:
    match = re.match(r"^\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*$", content_range or "")
    return int(match.group(1)) if match else None


def _retry_after(value: str | None) -> float | None:
    """``Retry-After``: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return "the server refused access: check the URL and any credentials in the feed's headers option"
    if status in (404, 410):
        return "nothing at this URL: check the feed's url"
    return "the server rejected the request; retrying will not help"


# --- conveniences the feeds use ---------------------------------------------------------------------


def fetch_file(url: str, fingerprint: str | None, workdir: Path, options: FetchOptions) -> Unchanged | Spool:
    """One URL or path → ``Unchanged`` or a spool file."""
    with Fetcher(options, workdir) as fetcher:
        return fetcher.file(url, fingerprint)


def write_bundle(dest: Path, members: Iterable[tuple[str, Path]]) -> None:
    """A zip of already-downloaded files (stored, not compressed: it is read once, right away)."""
    tmp = dest.with_name(dest.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for member, path in members:
            archive.write(path, member)
    tmp.replace(dest)


def fetch_bundle(members: Mapping[str, str], workdir: Path, options: FetchOptions, *, name: str) -> Spool:
    """Several URLs into one zip spool (member name → URL), e.g. an OSV delta's records.

    Always downloads every member; use ``fetch_many`` to learn "unchanged" first.
    """
    result = fetch_many(members, None, workdir, options, name=name)
    assert isinstance(result, Spool)
    return result


def fetch_many(members: Mapping[str, str], fingerprint: str | None, workdir: Path, options: FetchOptions,
               *, name: str) -> Unchanged | Spool:
    """Several files as one snapshot: ``Unchanged`` only when every member is, else a zip of all.

    The fingerprint keeps one entry per member, so each is asked for conditionally.
    """
    old = fingerprint_fields(fingerprint).get("members")
    old = old if isinstance(old, dict) else {}
    workdir.mkdir(parents=True, exist_ok=True)
    fetched: dict[str, Spool] = {}
    prints: dict[str, str] = {}
    try:
        with Fetcher(options, workdir) as fetcher:
            for member, url in members.items():
                result = fetcher.file(url, old.get(member) if old.keys() == members.keys() else None)
                prints[member] = result.fingerprint
                if isinstance(result, Spool):
                    fetched[member] = result
            new = make_fingerprint(members=prints)
            if not fetched:
                return Unchanged(new)
            # Something changed: the spool must still hold the whole snapshot.
            for member, url in members.items():
                if member not in fetched:
                    result = fetcher.file(url, None)
                    assert isinstance(result, Spool)
                    fetched[member] = result
        dest = workdir / name
        write_bundle(dest, ((member, fetched[member].path) for member in members))
        return Spool(path=dest, fingerprint=new, url=next(iter(members.values()), ""),
                     extra={"members": str(len(members))})
    finally:
        for spool in fetched.values():
            spool.path.unlink(missing_ok=True)


def pack_directory(path: Path, fingerprint: str | None, workdir: Path, *, name: str,
                   accept: Callable[[str], bool]) -> Unchanged | Spool:
    """A local directory of record files → one zip spool; fingerprint = digest of names + contents."""
    if not path.is_dir():
        raise FeedError(f"{path}: not a directory")
    files = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file())
    files = [(rel, p) for rel, p in files if accept(rel)]
    if not files:
        raise FeedError(f"{path}: no record files in this directory", hint="check the feed's url")
    digest = hashlib.sha256()
    for rel, p in files:
        digest.update(rel.encode() + b"\0" + sha256_file(p).encode() + b"\n")
    new = make_fingerprint(sha256=digest.hexdigest(), files=len(files))
    if fingerprint_fields(fingerprint).get("sha256") == digest.hexdigest():
        return Unchanged(new)
    workdir.mkdir(parents=True, exist_ok=True)
    dest = workdir / name
    write_bundle(dest, files)
    return Spool(path=dest, fingerprint=new, url=str(path), extra={"files": str(len(files))})


class SingleFileFeed:
    """Shared by feeds whose source is one file (KEV, EPSS, the Debian tracker): options + ``fetch``.

    A subclass sets ``kind``, may add its own ``OPTIONS`` (read them from ``self.options``), and
    writes ``parse``.
    """

    kind: str = ""
    OPTIONS: ClassVar[tuple[str, ...]] = FetchOptions.KEYS

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        check_options(self.kind, self.options, self.OPTIONS)
        self.fetch_options = FetchOptions.from_mapping(self.options, where=self.kind)

    def fetch(self, url: str, fingerprint: str | None, workdir: Path) -> Unchanged | Spool:
        return fetch_file(url, fingerprint, workdir, self.fetch_options)
