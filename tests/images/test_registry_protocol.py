"""The registry client against lies and failures a real registry will not produce on request.

A scripted HTTP server on 127.0.0.1 answers each request from a list; everything else about the
client (auth, platforms, real digests) is tested against docker-registry in ``test_registry.py``.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from keelwatch.errors import DigestMismatch, RegistryError, UnsupportedMediaType
from keelwatch.images import open_image, registry
from keelwatch.images.manifest import OCI_CONFIG, OCI_MANIFEST
from keelwatch.images.reference import parse_reference
from keelwatch.images.registry import RegistryClient, registry_host, resolve_tag
from keelwatch.images.source import OpenOptions

from .registry_helpers import Reply, ScriptedRegistry, free_port, sha256

INSECURE = OpenOptions(insecure=True)
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class Tiny:
    """A one-layer image, and the replies of an honest registry serving it as app:1."""

    def __init__(self) -> None:
        tar = _tar({"etc/os-release": b'ID=debian\nVERSION_ID="12"\n'})
        self.layer = gzip.compress(tar, mtime=0)
        self.config = json.dumps({"architecture": "amd64", "os": "linux",
                                  "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]}}).encode()
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(self.config), "size": len(self.config)},
            "layers": [{"mediaType": GZIP_LAYER, "digest": sha256(self.layer), "size": len(self.layer)}],
        }).encode()
        self.digest = sha256(self.manifest)

    def routes(self) -> dict[tuple[str, str], list[Reply]]:
        manifest = Reply(200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": self.digest}, self.manifest)
        blob = {"Content-Type": "application/octet-stream"}
        return {
            ("GET", "/v2/app/manifests/1"): [manifest],
            ("HEAD", "/v2/app/manifests/1"): [manifest],
            ("GET", f"/v2/app/blobs/{sha256(self.config)}"): [Reply(200, blob, self.config)],
            ("GET", f"/v2/app/blobs/{sha256(self.layer)}"): [Reply(200, blob, self.layer)],
        }


@pytest.fixture
def tiny():
    return Tiny()


@pytest.fixture
def serve():
    servers = []

    def start(routes):  # type: ignore[no-untyped-def]
        server = ScriptedRegistry(routes)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _walk(reference: str) -> None:
    opened = open_image(reference, INSECURE)
    try:
        for cm in opened.layer_contents():
            with cm as layer:
                for _ in layer.entries():
                    pass
                layer.finish()
    finally:
        opened.close()


def test_an_honest_registry_is_read(tiny, serve):
    server = serve(tiny.routes())
    _walk(f"{server.host}/app:1")
    assert ("GET", f"/v2/app/blobs/{sha256(tiny.layer)}") in server.seen


def test_blob_redirects_are_followed(tiny, serve):
    routes = tiny.routes()
    # Registries hand blobs off to storage (S3, a CDN) with a redirect.
    routes[("GET", f"/v2/app/blobs/{sha256(tiny.layer)}")] = [Reply(307, {"Location": "/storage/layer"})]
    routes[("GET", "/storage/layer")] = [Reply(200, {}, tiny.layer)]
    server = serve(routes)
    _walk(f"{server.host}/app:1")
    assert ("GET", "/storage/layer") in server.seen


def test_manifest_by_digest_must_hash_to_that_digest(tiny, serve):
    other = sha256(b"another manifest")
    routes = tiny.routes()
    # No Docker-Content-Digest to contradict: only the digest we asked for catches the lie.
    routes[("GET", f"/v2/app/manifests/{other}")] = [Reply(200, {"Content-Type": OCI_MANIFEST}, tiny.manifest)]
    server = serve(routes)
    with pytest.raises(DigestMismatch, match="not the digest asked for"):
        open_image(f"{server.host}/app@{other}", INSECURE)


def test_docker_content_digest_must_match_the_bytes(tiny, serve):
    routes = tiny.routes()
    routes[("GET", "/v2/app/manifests/1")] = [
        Reply(200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": sha256(b"x")}, tiny.manifest)]
    server = serve(routes)
    with pytest.raises(DigestMismatch, match="but the registry says it is " + sha256(b"x")):
        open_image(f"{server.host}/app:1", INSECURE)


def test_a_manifest_without_digest_header_gets_its_computed_digest(tiny, serve):
    routes = tiny.routes()
    routes[("GET", "/v2/app/manifests/1")] = [Reply(200, {"Content-Type": OCI_MANIFEST}, tiny.manifest)]
    server = serve(routes)
    opened = open_image(f"{server.host}/app:1", INSECURE)
    assert opened.image.manifest_digest == tiny.digest
    opened.close()


def test_a_layer_longer_than_its_descriptor_is_cut_off(tiny, serve):
    routes = tiny.routes()
    # Trailing bytes after the gzip stream would be read (and hashed) forever if nothing bounded them.
    routes[("GET", f"/v2/app/blobs/{sha256(tiny.layer)}")] = [Reply(200, {}, tiny.layer + b"\0" * (2 << 20))]
    server = serve(routes)
    with pytest.raises(DigestMismatch, match=f"more than the {len(tiny.layer)} bytes"):
        _walk(f"{server.host}/app:1")


def test_a_truncated_layer_is_a_retryable_error(tiny, serve):
    routes = tiny.routes()
    # Content-Length says all is sent; the descriptor says more was due.
    routes[("GET", f"/v2/app/blobs/{sha256(tiny.layer)}")] = [Reply(200, {}, tiny.layer[:-10])]
    server = serve(routes)
    with pytest.raises(RegistryError) as err:
        _walk(f"{server.host}/app:1")
    assert err.value.retryable
    assert f"of {len(tiny.layer)} bytes" in str(err.value)


def test_5xx_and_429_are_retried(tiny, serve):
    routes = tiny.routes()
    good = routes[("GET", "/v2/app/manifests/1")][0]
    routes[("GET", "/v2/app/manifests/1")] = [Reply(503, {"Retry-After": "0"}), Reply(429, {"Retry-After": "0"}), good]
    server = serve(routes)
    opened = open_image(f"{server.host}/app:1", INSECURE)
    opened.close()
    assert server.seen.count(("GET", "/v2/app/manifests/1")) == 3


def test_a_failing_registry_is_tried_a_few_times_then_reported(tiny, serve):
    routes = tiny.routes()
    body = b'{"errors":[{"code":"UNKNOWN","message":"storage backend down"}]}'
    headers = {"Retry-After": "0", "Content-Type": "application/json"}
    routes[("GET", "/v2/app/manifests/1")] = [Reply(500, headers, body)]
    server = serve(routes)
    with pytest.raises(RegistryError) as err:
        open_image(f"{server.host}/app:1", INSECURE)
    assert err.value.retryable
    assert "answered 500" in str(err.value) and "storage backend down" in str(err.value)
    assert server.seen.count(("GET", "/v2/app/manifests/1")) == registry.ATTEMPTS


def test_nothing_listening_is_a_retryable_error(monkeypatch):
    monkeypatch.setattr(registry, "BACKOFF", 0.01)
    with pytest.raises(RegistryError, match="cannot reach registry") as err:
        open_image(f"127.0.0.1:{free_port()}/app:1", INSECURE)
    assert err.value.retryable


def test_resolve_tag_falls_back_to_get_when_head_says_too_little(tiny, serve):
    routes = tiny.routes()
    routes[("HEAD", "/v2/app/manifests/1")] = [Reply(200, {"Content-Type": OCI_MANIFEST})]
    server = serve(routes)
    assert resolve_tag(f"{server.host}/app:1", INSECURE) == (tiny.digest, OCI_MANIFEST)
    assert server.seen[-2:] == [("HEAD", "/v2/app/manifests/1"), ("GET", "/v2/app/manifests/1")]


def test_resolve_tag_takes_one_head_when_it_is_enough(tiny, serve):
    server = serve(tiny.routes())
    assert resolve_tag(f"registry:{server.host}/app:1", INSECURE) == (tiny.digest, OCI_MANIFEST)
    assert [s for s in server.seen if s[1] != "/v2/"] == [("HEAD", "/v2/app/manifests/1")]


def test_schema1_manifests_are_refused_clearly(tiny, serve):
    routes = tiny.routes()
    body = b'{"schemaVersion": 1, "name": "app", "tag": "1", "fsLayers": []}'
    routes[("GET", "/v2/app/manifests/1")] = [
        Reply(200, {"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"}, body)]
    server = serve(routes)
    with pytest.raises(UnsupportedMediaType, match="schema 1"):
        open_image(f"{server.host}/app:1", INSECURE)


def test_a_server_without_the_registry_api(serve):
    server = serve({("GET", "/v2/"): [Reply(404, {}, b"not here")]})
    with pytest.raises(RegistryError, match="does not serve the registry API"):
        open_image(f"{server.host}/app:1", INSECURE)


def test_docker_hub_is_reached_at_its_api_host():
    assert registry_host("docker.io") == "registry-1.docker.io"
    assert registry_host("ghcr.io") == "ghcr.io"
    assert registry_host("localhost:5000") == "localhost:5000"
    client = RegistryClient(parse_reference("nginx"), OpenOptions())  # builds no connection yet
    try:
        assert client.host == "registry-1.docker.io"
        assert client.ref.repository == "library/nginx"
    finally:
        client.close()
