"""A real HTTP server on 127.0.0.1 (http.server in a thread) whose routes misbehave on demand.

Each route is a ``Route``: a body with optional ETag / Last-Modified (answering 304 to conditional
requests), Range support, and failure modes — N failing statuses first, a hang, an endless body,
a connection dropped after some bytes. Every request's path and headers are recorded.
"""

from __future__ import annotations

import email.utils
import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Route:
    body: bytes = b""
    etag: str = ""
    last_modified: float | None = None  # epoch seconds
    ranges: bool = True
    fail: list[int] = field(default_factory=list)  # statuses answered first, one per request
    retry_after: str = ""
    hang: float = 0.0  # seconds to sleep before answering
    endless: bool = False  # chunked body that never ends
    drop_after: list[int] = field(default_factory=list)  # per request: send N bytes then close
    gzip: bool = False  # send Content-Encoding: gzip
    content_type: str = "application/octet-stream"
    # A function of the query → body, for paged APIs.
    dynamic: Callable[[dict[str, list[str]]], bytes] | None = None


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class TestServer:
    __test__ = False

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                server.seen.append(Seen(parts.path, query, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(parts.path)
                if route is None:
                    self._plain(404, b"not found")
                    return
                server.serve(self, route, query)

            def _plain(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client hanging up on an endless body is the point of that test, not noise

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # hung handlers must not hold the test up
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- behaviour -------------------------------------------------------------------------------

    def serve(self, h: BaseHTTPRequestHandler, route: Route, query: dict[str, list[str]]) -> None:
        if route.hang:
            time.sleep(route.hang)
        if route.fail:
            status = route.fail.pop(0)
            h.send_response(status)
            if route.retry_after:
                h.send_header("Retry-After", route.retry_after)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if route.endless:
            h.send_response(200)
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            chunk = b"x" * 65536
            try:
                while True:
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                return
        body = route.dynamic(query) if route.dynamic else route.body
        lm = email.utils.formatdate(route.last_modified, usegmt=True) if route.last_modified else ""
        inm = h.headers.get("If-None-Match")
        ims = h.headers.get("If-Modified-Since")
        if (route.etag and inm == route.etag) or (not inm and lm and ims and
                                                  email.utils.parsedate_to_datetime(ims).timestamp()
                                                  >= int(route.last_modified or 0)):
            h.send_response(304)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        status, start = 200, 0
        rng = h.headers.get("Range")
        if route.ranges and rng and rng.startswith("bytes=") and rng.endswith("-"):
            if_range = h.headers.get("If-Range")
            if if_range in (None, route.etag, lm):
                start = int(rng[6:-1])
                if start >= len(body):
                    h.send_response(416)
                    h.send_header("Content-Range", f"bytes */{len(body)}")
                    h.send_header("Content-Length", "0")
                    h.end_headers()
                    return
                status = 206
        payload = body[start:]
        if route.gzip:
            payload = gzip.compress(payload)
        h.send_response(status)
        h.send_header("Content-Type", route.content_type)
        h.send_header("Content-Length", str(len(payload)))
        if route.etag:
            h.send_header("ETag", route.etag)
        if lm:
            h.send_header("Last-Modified", lm)
        if route.ranges:
            h.send_header("Accept-Ranges", "bytes")
        if route.gzip:
            h.send_header("Content-Encoding", "gzip")
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        h.end_headers()
        if route.drop_after:
            cut = route.drop_after.pop(0)
            h.wfile.write(payload[:cut])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)  # the peer sees the body end early
            return
        h.wfile.write(payload)
