"""A real registry for the tests: Debian's ``docker-registry`` on 127.0.0.1, filled with ``skopeo``.

Also the two small servers a real registry cannot stand in for: a token server (the registry's
``auth: token`` verifies the JWTs it issues, signed with ``openssl``, so the bearer flow is tested
end to end against the real registry), and a registry that lies or fails on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

REGISTRY_BIN = "docker-registry"
SKOPEO_BIN = "skopeo"


def require_tool(name: str) -> str:
    """Path of a tool the registry tests drive; skip without it, fail when datasets are required."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
    if path is None:
        reason = f"{name} is not installed (`make test` installs it from Debian)"
        if os.environ.get("KEELWATCH_REQUIRE_DATASETS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    storage: Path
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def blob_file(self, digest: str) -> Path:
        """Where the filesystem driver keeps a blob: tests that need a lying registry edit it there."""
        algorithm, hexpart = digest.split(":", 1)
        return self.storage / "docker/registry/v2/blobs" / algorithm / hexpart[:2] / hexpart / "data"


def start_registry(workdir: Path, *, storage: Path | None = None, auth: dict[str, object] | None = None,
                   readonly: bool = False) -> Registry:
    """Start ``docker-registry serve`` on a free port; a second one may serve the same storage read-only."""
    binary = require_tool(REGISTRY_BIN)
    workdir.mkdir(parents=True, exist_ok=True)
    storage = storage or workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: dict[str, object] = {
        "version": "0.1",
        "log": {"level": "error", "accesslog": {"disabled": True}},
        # No blob descriptor cache is configured: tests edit blobs on disk and want them served so.
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "maintenance": {"uploadpurging": {"enabled": False}, "readonly": {"enabled": readonly}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": "keelwatch-tests"},
    }
    if auth:
        config["auth"] = auth
    config_path = workdir / "config.yml"
    config_path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    log = workdir / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen([binary, "serve", str(config_path)], stdout=out, stderr=subprocess.STDOUT)
    registry = Registry(f"127.0.0.1:{port}", storage, process, log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"http://{registry.host}/v2/", timeout=1)
            return registry
        except httpx.TransportError:
            time.sleep(0.05)
    registry.stop()
    raise RuntimeError(f"docker-registry did not start on {registry.host}: {log.read_text()[-2000:]}")


def push(registry: Registry, archive: Path, name: str, tag: str, *, all_platforms: bool = False) -> None:
    """``skopeo copy oci-archive:… docker://…``: the registry then holds the archive's exact manifests."""
    skopeo = require_tool(SKOPEO_BIN)
    command = [skopeo, "copy", "--quiet", "--dest-tls-verify=false"]
    if all_platforms:
        command.append("--all")  # keep the index and every platform's manifest, digests unchanged
    command += [f"oci-archive:{archive}", f"docker://{registry.host}/{name}:{tag}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"skopeo copy failed: {done.stderr.strip()}")


def write_docker_config(path: Path, doc: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def basic_auth_entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def htpasswd_line(user: str, password: str) -> str:
    """A bcrypt htpasswd line, the only hash docker-registry accepts (cost 4: tests need no strength)."""
    import bcrypt  # a test dependency: missing, the suite should fail, not skip

    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A token server as the distribution spec's token flow describes it.

    ``GET /token?service=S&scope=repository:NAME:pull`` with basic credentials → ``{"token": JWT}``,
    the JWT signed RS256 by a self-signed certificate the registry trusts (``rootcertbundle``) and
    carried in the ``x5c`` header, so the real registry verifies every token it is given.
    """

    SERVICE = "keelwatch-test-registry"
    ISSUER = "keelwatch-test-token-server"

    def __init__(self, workdir: Path, users: dict[str, str]):
        openssl = require_tool("openssl")
        workdir.mkdir(parents=True, exist_ok=True)
        self._key = workdir / "token.key"
        self.cert = workdir / "token.crt"
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self._key),
                        "-out", str(self.cert), "-days", "1", "-subj", "/CN=keelwatch test token issuer"],
                       check=True, capture_output=True, timeout=60)
        pem = self.cert.read_text()
        self._x5c = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
        self._openssl = openssl
        self.users = users
        self.requests: list[dict[str, object]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                url = urlparse(self.path)
                query = parse_qs(url.query)
                user = server._check_basic(self.headers.get("Authorization"))
                server.requests.append({"path": url.path, "query": query, "user": user})
                if url.path != "/token":
                    self.send_error(404)
                    return
                if user is None:
                    body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("WWW-Authenticate", 'Basic realm="keelwatch test tokens"')
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                token = server._issue(user, query.get("service", [""])[0], query.get("scope", []))
                body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self._httpd.server_address[1]}/token"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def registry_auth(self) -> dict[str, object]:
        return {"token": {"realm": self.realm, "service": self.SERVICE, "issuer": self.ISSUER,
                          "rootcertbundle": str(self.cert)}}

    def _check_basic(self, header: str | None) -> str | None:
        if not header or not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if self.users.get(user) == password else None

    def _issue(self, user: str, service: str, scopes: list[str]) -> str:
        access = []
        for scope in " ".join(scopes).split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            # Grant pull only, whatever was asked: the registry must then refuse anything else.
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a == "pull"]})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {"iss": self.ISSUER, "sub": user, "aud": service, "exp": now + 300, "nbf": now - 30,
                  "iat": now - 30, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run([self._openssl, "dgst", "-sha256", "-sign", str(self._key)],
                                   input=signing_input.encode(), capture_output=True, check=True, timeout=30).stdout
        return f"{signing_input}.{_b64url(signature)}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class ScriptedRegistry:
    """A registry that answers from a script: for one test of a lie or a failure no real one will tell.

    ``routes`` maps (method, path) to a list of replies, served in order (the last one repeats).
    """

    def __init__(self, routes: dict[tuple[str, str], list[Reply]]):
        self.routes = routes
        self.seen: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, method: str) -> None:
                path = urlparse(self.path).path
                server.seen.append((method, path))
                replies = server.routes.get((method, path))
                if replies is None and path == "/v2/":
                    replies = [Reply(200, {"Content-Type": "application/json"}, b"{}")]
                if not replies:
                    replies = [Reply(404, {"Content-Type": "application/json"},
                                     b'{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}')]
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(reply.body)

            def do_GET(self) -> None:  # noqa: N802
                self._answer("GET")

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer("HEAD")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def flip_byte(path: Path, offset: int, new: int | Callable[[int], int]) -> None:
    """Change one byte of a stored blob in place, keeping its size (the registry caches sizes)."""
    data = bytearray(path.read_bytes())
    data[offset] = new(data[offset]) if callable(new) else new
    path.chmod(0o644)
    path.write_bytes(bytes(data))
