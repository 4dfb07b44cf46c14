"""A Kubernetes API server for the tests, speaking the real wire format over TLS on 127.0.0.1.

There is no kube-apiserver on the machine; this server implements the part of the API an
inventory reads, as the API reference and the API concepts page describe it:

- ``GET /api/v1/pods``, ``/api/v1/namespaces/{ns}/pods``: ``PodList`` JSON with
  ``metadata.resourceVersion``; ``limit`` + ``continue`` pagination (an opaque token; an expired
  one answers ``410 Gone`` with a ``Status`` body, reason ``Expired``);
- ``?watch=1``: a chunked stream of ``{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": …}``
  lines from ``resourceVersion`` on; a version older than the compacted history gets an ``ERROR``
  event carrying a ``Status`` of code 410 (as the real server sends it), ``timeoutSeconds`` ends
  the stream, ``allowWatchBookmarks`` adds ``BOOKMARK`` events;
- nodes, namespaces, ReplicaSets (apps/v1) and Jobs (batch/v1), listed and read by name;
- bearer-token auth: an unknown token is ``401``, a token without rights to a path ``403``.

Faults on purpose: cut a watch stream mid-event, send a malformed line.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

KINDS = {
    "pods": ("v1", "Pod", "PodList"),
    "nodes": ("v1", "Node", "NodeList"),
    "namespaces": ("v1", "Namespace", "NamespaceList"),
    "replicasets": ("apps/v1", "ReplicaSet", "ReplicaSetList"),
    "jobs": ("batch/v1", "Job", "JobList"),
}
CLUSTER_SCOPED = ("nodes", "namespaces")
_PATH = re.compile(r"^/(?:api/v1|apis/(?:apps|batch)/v1)(?:/namespaces/(?P<ns>[^/]+))?/(?P<kind>pods|nodes|namespaces|"
                   r"replicasets|jobs)(?:/(?P<name>[^/]+))?$")
_NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces(?:/(?P<name>[^/]+))?$")


@dataclass
class Grant:
    """What one token may do: every namespace (``None``) or some, and which kinds."""

    namespaces: set[str] | None = None
    kinds: set[str] = field(default_factory=lambda: set(KINDS))


class KubeApiServer:
    def __init__(self, workdir: Path, *, tokens: dict[str, Grant] | None = None, history: int = 10_000) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.tokens = tokens if tokens is not None else {"admin-token": Grant()}
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {k: {} for k in KINDS}
        self.version = 100
        self.events: list[tuple[int, str, dict[str, Any]]] = []  # (rv, type, pod)
        self.history = history
        self.compacted = 0  # watching from a version below this answers 410
        self.changed = threading.Condition()
        self.requests: list[str] = []
        self.cut_after: int | None = None  # cut the next watch stream after this many events, mid-event
        self.malformed_after: int | None = None  # send a line that is not JSON after this many events
        self.bookmark_every: float = 0.2
        self.expired_tokens = False  # every continue token is expired (410)
        self.fail_next_list: int | None = None  # HTTP status for the next list request
        self._stop = threading.Event()
        self.cert, key = _self_signed(workdir)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self.changed:
            self.changed.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()

    def kubeconfig(self, path: Path, *, token: str = "admin-token", context: str = "lab",
                   cluster: str = "lab-cluster", server: str | None = None) -> Path:
        ca = base64.b64encode(self.cert.read_bytes()).decode()
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": cluster,
                          "cluster": {"server": server or self.url, "certificate-authority-data": ca}}],
            "users": [{"name": "tester", "user": {"token": token}}],
            "contexts": [{"name": context, "context": {"cluster": cluster, "user": "tester"}}],
        }
        path.write_text(json.dumps(doc))  # JSON is YAML
        return path

    # --- state --------------------------------------------------------------------------------

    def put(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an object; pods also produce a watch event."""
        with self.changed:
            self.version += 1
            meta = obj.setdefault("metadata", {})
            meta["resourceVersion"] = str(self.version)
            api_version, kind_name, _ = KINDS[kind]
            obj.setdefault("apiVersion", api_version)
            obj.setdefault("kind", kind_name)
            key = (meta.get("namespace", ""), meta["name"])
            existed = key in self.objects[kind]
            self.objects[kind][key] = obj
            if kind == "pods":
                self._event("MODIFIED" if existed else "ADDED", obj)
            self.changed.notify_all()
        return obj

    def delete_pod(self, namespace: str, name: str) -> None:
        with self.changed:
            obj = self.objects["pods"].pop((namespace, name))
            self.version += 1
            obj = json.loads(json.dumps(obj))
            obj["metadata"]["resourceVersion"] = str(self.version)
            self._event("DELETED", obj)
            self.changed.notify_all()

    def _event(self, kind: str, obj: dict[str, Any]) -> None:
        self.events.append((self.version, kind, json.loads(json.dumps(obj))))
        if len(self.events) > self.history:
            dropped = self.events[: len(self.events) - self.history]
            self.events = self.events[len(dropped):]
            self.compacted = dropped[-1][0] + 1

    def compact(self) -> None:
        """Forget the event history, as etcd compaction does: older versions now answer 410."""
        with self.changed:
            self.events.clear()
            self.compacted = self.version + 1

    # --- HTTP -----------------------------------------------------------------------------------

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urlparse(req.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.requests.append(req.path)
        auth = req.headers.get("Authorization", "")
        grant = self.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if grant is None:
            return self._status(req, 401, "Unauthorized", "Unauthorized")
        match = _PATH.match(url.path)
        ns_match = _NAMESPACE_PATH.match(url.path)
        if match:
            kind, namespace, name = match["kind"], match["ns"], match["name"]
            if kind == "namespaces":
                kind, namespace, name = "namespaces", None, match["ns"] if match["name"] is None else match["name"]
        elif ns_match:
            kind, namespace, name = "namespaces", None, ns_match["name"]
        else:
            return self._status(req, 404, "NotFound", f"the server could not find the requested resource ({url.path})")
        if kind not in grant.kinds or (grant.namespaces is not None and kind not in CLUSTER_SCOPED
                                       and (namespace is None or namespace not in grant.namespaces)):
            scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            return self._status(req, 403, "Forbidden",
                                f'{kind} is forbidden: User "system:serviceaccount:tests:reader" cannot list '
                                f'resource "{kind}" in API group "" {scope}')
        if name is not None:
            key = ("" if kind in CLUSTER_SCOPED else namespace or "", name)
            with self.changed:
                obj = self.objects[kind].get(key)
            if obj is None:
                return self._status(req, 404, "NotFound", f'{kind} "{name}" not found')
            return self._json(req, 200, obj)
        if query.get("watch") in ("1", "true"):
            return self._watch(req, namespace, query)
        if self.fail_next_list is not None:
            status, self.fail_next_list = self.fail_next_list, None
            return self._status(req, status, "InternalError", "etcdserver: request timed out")
        return self._list(req, kind, namespace, query)

    def _list(self, req: BaseHTTPRequestHandler, kind: str, namespace: str | None, query: dict[str, str]) -> None:
        token = query.get("continue")
        with self.changed:
            if token:
                try:
                    state = json.loads(base64.urlsafe_b64decode(token.encode()))
                    version, offset = int(state["rv"]), int(state["start"])
                except (ValueError, KeyError, TypeError):
                    return self._status(req, 400, "BadRequest", "continue key is not valid")
                if self.expired_tokens or version < self.compacted:
                    return self._status(req, 410, "Expired", "The provided continue parameter is too old to display "
                                        "a consistent list result. You can start a new list without the continue "
                                        "parameter, or use the continue token in this response to retrieve the "
                                        "remainder of the results.")
            else:
                version, offset = self.version, 0
            # A list at an older version than now: the tests do not change objects mid-pagination.
            items = sorted((o for (ns, _), o in self.objects[kind].items() if namespace is None or ns == namespace),
                           key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        limit = int(query.get("limit") or 0) or len(items) or 1
        page = items[offset:offset + limit]
        metadata: dict[str, Any] = {"resourceVersion": str(version)}
        if offset + limit < len(items):
            metadata["continue"] = base64.urlsafe_b64encode(
                json.dumps({"rv": version, "start": offset + limit}).encode()).decode()
            metadata["remainingItemCount"] = len(items) - offset - limit
        api_version, _, list_kind = KINDS[kind]
        body = json.dumps({"kind": list_kind, "apiVersion": api_version, "metadata": metadata, "items": page},
                          separators=(",", ":")).encode()
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def _watch(self, req: BaseHTTPRequestHandler, namespace: str | None, query: dict[str, str]) -> None:
        since = int(query.get("resourceVersion") or 0) or self.version
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true")
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Transfer-Encoding", "chunked")
        req.end_headers()
        cut, self.cut_after = self.cut_after, None
        malformed, self.malformed_after = self.malformed_after, None
        sent = 0

        def write(line: bytes) -> None:
            req.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            req.wfile.flush()

        try:
            if since < self.compacted:
                status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": f"too old resource version: {since} ({self.compacted})", "reason": "Expired",
                          "code": 410}
                write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
                write(b"")
                return
            last_bookmark = time.monotonic()
            position = since
            while not self._stop.is_set() and time.monotonic() < deadline:
                for rv, kind, obj in self._events_after(position, namespace):
                    position = rv
                    line = json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"
                    if cut is not None and sent >= cut:
                        req.wfile.write(f"{len(line):x}\r\n".encode() + line[: len(line) // 2])
                        req.wfile.flush()
                        req.close_connection = True
                        return  # the connection drops mid-event
                    if malformed is not None and sent >= malformed:
                        write(b'{"type":"MODIFIED","object":{"metadata":\n')
                        malformed = None
                    write(line)
                    sent += 1
                if bookmarks and time.monotonic() - last_bookmark >= self.bookmark_every:
                    with self.changed:
                        version = self.version
                    write(json.dumps({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {
                        "resourceVersion": str(version),
                        "annotations": {"k8s.io/initial-events-end": "true"}}}}).encode() + b"\n")
                    position = max(position, version)
                    last_bookmark = time.monotonic()
                with self.changed:
                    self.changed.wait(timeout=0.05)
            write(b"")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            req.close_connection = True

    def _events_after(self, version: int, namespace: str | None) -> Iterator[tuple[int, str, dict[str, Any]]]:
        with self.changed:
            pending = [e for e in self.events if e[0] > version]
        for rv, kind, obj in pending:
            if namespace is None or obj["metadata"].get("namespace") == namespace:
                yield rv, kind, obj

    def _json(self, req: BaseHTTPRequestHandler, code: int, doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode()
        req.send_response(code)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def _status(self, req: BaseHTTPRequestHandler, code: int, reason: str, message: str) -> None:
        self._json(req, code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": message, "reason": reason, "code": code})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _self_signed(workdir: Path) -> tuple[Path, Path]:
    cert, key = workdir / "apiserver.crt", workdir / "apiserver.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=kube-apiserver", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-addext", "basicConstraints=critical,CA:TRUE"],
                   check=True, capture_output=True, timeout=60)
    return cert, key
