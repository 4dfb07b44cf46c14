"""A real webhook receiver on 127.0.0.1 for the alert tests: it checks signatures, dedupes on the
Idempotency-Key as a well-behaved receiver should, and can be told to fail, to hang, or to hold a
request until released (to kill a sender mid-delivery)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    secret: str
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)  # every accepted request, duplicates too
    processed: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key → first body
    bad_signatures: int = 0
    fail_next: int = 0  # answer 500 to this many requests
    hang_next: float = 0.0  # sleep this long before answering the next request
    hold_after: int | None = None  # after this many accepted requests, hold the next one until released
    held: threading.Event = field(default_factory=threading.Event)  # set while a request is being held
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keys(self) -> list[str]:
        return [r["headers"]["Idempotency-Key"] for r in self.received]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                hang, receiver.hang_next = receiver.hang_next, 0.0
                fail = receiver.fail_next > 0
                if fail:
                    receiver.fail_next -= 1
                hold = receiver.hold_after is not None and len(receiver.received) >= receiver.hold_after
                if hold:
                    receiver.hold_after = None
            if hang:
                time.sleep(hang)
            if hold:
                receiver.held.set()
                receiver.release.wait(30)
            if fail:
                self._answer(500, b"try later")
                return
            expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(self.headers.get("X-Keelwatch-Signature", ""), expected):
                with receiver.lock:
                    receiver.bad_signatures += 1
                self._answer(401, b"bad signature")
                return
            doc = json.loads(body)
            key = self.headers.get("Idempotency-Key", "")
            with receiver.lock:
                receiver.received.append({"headers": dict(self.headers), "body": doc})
                receiver.processed.setdefault(key, doc)
            self._answer(200, b"ok")

        def _answer(self, status: int, text: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender went away (timed out, or was killed)

    return Handler


@contextmanager
def running_receiver(secret: str = "s3cret") -> Iterator[Receiver]:
    receiver = Receiver(secret)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
