"""Pulling from a real registry: Debian's docker-registry on 127.0.0.1, images pushed with skopeo.

The shared images keep their published digests when pushed (``skopeo copy``, ``--all`` for the
index), so every identity below is checked against the table in the shared data's README.
"""

from __future__ import annotations

import json

import pytest

from keelwatch.catalog import CATALOGERS
from keelwatch.catalog.walker import catalog_image
from keelwatch.errors import AuthError, DigestMismatch, ImageError, RegistryError
from keelwatch.images import open_image
from keelwatch.images.manifest import OCI_INDEX, OCI_MANIFEST, host_platform
from keelwatch.images.registry import resolve_tag
from keelwatch.images.source import OpenOptions
from keelwatch.model import Platform

from .registry_helpers import (
    TokenServer,
    basic_auth_entry,
    flip_byte,
    htpasswd_line,
    push,
    start_registry,
    write_docker_config,
)

pytestmark = pytest.mark.registry

PYTHON_DIGEST = "sha256:5129c28dfcd8447ce45c87e0dcdbbf8f64ace6b642d9c538774c6d4da3af479e"
GO_TOOLS_DIGEST = "sha256:4ade824e8434f61cd51db4de32af98ea8d90ee1011cc94ec2cdf6d8ff5ac95f5"
MULTIARCH_INDEX = "sha256:5ee811d0d6a0939cfd4bb86c28412b5833d1c607a2b64de9b003e5c750c8672a"
MULTIARCH = {
    "amd64": "sha256:1d05fe157ccff59f156a468cd54b579539610ccf04dd8673f359d2ea8f5da7fe",
    "arm64": "sha256:16b1dfaf4f9812d516f4514ce3d77a2254b69bed378ad4d636bdae5b49dc4d49",
}
INSECURE = OpenOptions(insecure=True)


def walk(opened) -> int:  # type: ignore[no-untyped-def]
    """Read every layer to its end, as the catalog walker does; ``finish`` verifies each digest."""
    count = 0
    for cm in opened.layer_contents():
        with cm as layer:
            count += sum(1 for _ in layer.entries())
            layer.finish()
    return count


@pytest.fixture(scope="module")
def registry(images_dir, tmp_path_factory):
    """An anonymous registry holding debian12-python:1 and the multi-arch index debian12-multiarch:1."""
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        push(reg, images_dir / "debian12-python.oci.tar", "debian12-python", "1")
        push(reg, images_dir / "debian12-multiarch.oci.tar", "debian12-multiarch", "1", all_platforms=True)
        yield reg
    finally:
        reg.stop()


# -- anonymous pulls: identity --------------------------------------------------------------------


@pytest.mark.parametrize("form", ["registry:{host}/debian12-python:1", "{host}/debian12-python:1",
                                  "registry:{host}/debian12-python@" + PYTHON_DIGEST])
def test_pull_keeps_the_published_manifest_digest(registry, form):
    reference = form.format(host=registry.host)
    opened = open_image(reference, INSECURE)
    try:
        image = opened.image
        assert image.manifest_digest == PYTHON_DIGEST
        assert image.index_digest is None
        assert image.reference == reference
        assert image.name == f"{registry.host}/debian12-python"
        assert image.source_kind == "registry"
        assert image.platform == Platform("linux", "amd64")
        assert image.config_digest.startswith("sha256:")
        assert len(image.layers) == 2
    finally:
        opened.close()


def test_registry_catalog_equals_the_archive_catalog(registry, images_dir):
    """Every layer streamed from the registry (digests verified) gives exactly what the archive gives."""
    results = []
    pulled_from = f"registry:{registry.host}/debian12-python:1"
    for reference in (pulled_from, f"oci-archive:{images_dir}/debian12-python.oci.tar"):
        opened = open_image(reference, INSECURE)
        try:
            results.append(catalog_image(opened, CATALOGERS))
        finally:
            opened.close()
    pulled, archived = results
    assert pulled.image.manifest_digest == archived.image.manifest_digest
    assert pulled.image.os == archived.image.os
    key = [(p.ecosystem, p.name, p.version, p.layer_digest, p.location) for p in pulled.packages]
    assert len(key) >= 39  # the 39 dpkg packages, and whatever language catalogers find
    assert sorted(key) == sorted((p.ecosystem, p.name, p.version, p.layer_digest, p.location)
                                 for p in archived.packages)


@pytest.mark.parametrize("platform", [None, "linux/amd64", "linux/arm64", "linux/arm64/v8"])
def test_multiarch_platform_choice(registry, platform):
    want = Platform.parse(platform) if platform else None
    arch = (want or host_platform()).architecture
    if arch not in MULTIARCH:
        pytest.skip(f"this machine ({arch}) is neither amd64 nor arm64")
    opened = open_image(f"{registry.host}/debian12-multiarch:1", OpenOptions(platform=want, insecure=True))
    try:
        assert opened.image.index_digest == MULTIARCH_INDEX
        assert opened.image.manifest_digest == MULTIARCH[arch]
        assert opened.image.platform.architecture == arch
    finally:
        opened.close()


def test_multiarch_layers_of_the_other_platform_verify(registry):
    opened = open_image(f"{registry.host}/debian12-multiarch:1",
                        OpenOptions(platform=Platform.parse("linux/arm64"), insecure=True))
    try:
        assert walk(opened) > 100
    finally:
        opened.close()


def test_unknown_platform_names_the_available_ones(registry):
    with pytest.raises(ImageError) as err:
        open_image(f"{registry.host}/debian12-multiarch:1",
                   OpenOptions(platform=Platform.parse("linux/s390x"), insecure=True))
    message = str(err.value)
    assert "linux/s390x" in message
    assert "available: linux/amd64, linux/arm64" in message
    assert "\n" not in message


def test_resolve_tag(registry):
    assert resolve_tag(f"{registry.host}/debian12-multiarch:1", INSECURE) == (MULTIARCH_INDEX, OCI_INDEX)
    assert resolve_tag(f"registry:{registry.host}/debian12-python:1", INSECURE) == (PYTHON_DIGEST, OCI_MANIFEST)
    by_digest = f"{registry.host}/debian12-multiarch@{MULTIARCH['arm64']}"
    assert resolve_tag(by_digest, INSECURE) == (MULTIARCH["arm64"], OCI_MANIFEST)


@pytest.mark.parametrize("reference", ["{host}/debian12-python:nope", "{host}/no-such-repo:1",
                                       "{host}/debian12-python@sha256:" + "0" * 64])
def test_missing_image_or_tag(registry, reference):
    reference = reference.format(host=registry.host)
    for attempt in (lambda: open_image(reference, INSECURE), lambda: resolve_tag(reference, INSECURE)):
        with pytest.raises(RegistryError, match="no such image or tag"):
            attempt()


def test_plain_http_needs_insecure(registry):
    with pytest.raises(RegistryError) as err:
        open_image(f"{registry.host}/debian12-python:1")
    assert "--insecure" in str(err.value)
    with pytest.raises(RegistryError, match="--insecure"):
        resolve_tag(f"{registry.host}/debian12-python:1")


# -- a registry that lies: blobs edited in its storage -----------------------------------------------


@pytest.fixture
def lying_registry(images_dir, tmp_path):
    """go-tools pushed into a registry of its own, so a test may alter what it stores."""
    reg = start_registry(tmp_path / "lying")
    try:
        push(reg, images_dir / "go-tools.oci.tar", "go-tools", "1")
        yield reg
    finally:
        reg.stop()


def _stored_manifest(reg) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(reg.blob_file(GO_TOOLS_DIGEST).read_bytes())


@pytest.mark.parametrize("reference", ["{host}/go-tools:1", "{host}/go-tools@" + GO_TOOLS_DIGEST])
def test_altered_manifest_is_refused(lying_registry, reference):
    # Still valid JSON (the registry parses it), same length, other bytes: served under the old digest.
    stored = lying_registry.blob_file(GO_TOOLS_DIGEST)
    data = stored.read_bytes()
    assert b'": ' in data
    stored.chmod(0o644)
    stored.write_bytes(data.replace(b'": ', b'" :', 1))
    reference = reference.format(host=lying_registry.host)
    with pytest.raises(DigestMismatch, match="manifest content is sha256:"):
        open_image(reference, INSECURE)


def test_altered_config_is_refused(lying_registry):
    config = _stored_manifest(lying_registry)["config"]["digest"]
    flip_byte(lying_registry.blob_file(config), 0, ord(" "))
    with pytest.raises(DigestMismatch, match="content is sha256:"):
        open_image(f"{lying_registry.host}/go-tools:1", INSECURE)


def test_altered_layer_fails_when_read(lying_registry):
    layer = _stored_manifest(lying_registry)["layers"][-1]["digest"]
    # Byte 4 is the gzip header's MTIME: the layer still inflates, only its digest tells.
    flip_byte(lying_registry.blob_file(layer), 4, lambda b: b ^ 0xFF)
    opened = open_image(f"{lying_registry.host}/go-tools:1", INSECURE)
    try:
        assert opened.image.manifest_digest == GO_TOOLS_DIGEST
        with pytest.raises(DigestMismatch, match="but the manifest says " + layer):
            walk(opened)
    finally:
        opened.close()


# -- basic auth: docker-registry's htpasswd, credentials from a docker config ------------------------


@pytest.fixture(scope="module")
def htpasswd_registry(registry, tmp_path_factory):
    """The same storage served again, read-only, behind htpasswd (bcrypt) basic auth."""
    work = tmp_path_factory.mktemp("htpasswd")
    (work / "htpasswd").write_text(htpasswd_line("alice", "s3cret"))
    reg = start_registry(work, storage=registry.storage, readonly=True,
                         auth={"htpasswd": {"realm": "keelwatch-test", "path": str(work / "htpasswd")}})
    yield reg
    reg.stop()


def test_basic_auth_with_auth_field(htpasswd_registry, tmp_path):
    config = write_docker_config(tmp_path / "config.json",
                                 {"auths": {htpasswd_registry.host: basic_auth_entry("alice", "s3cret")}})
    reference = f"{htpasswd_registry.host}/debian12-python:1"
    options = OpenOptions(insecure=True, docker_config=str(config))
    opened = open_image(reference, options)
    try:
        assert opened.image.manifest_digest == PYTHON_DIGEST
    finally:
        opened.close()
    assert resolve_tag(reference, options) == (PYTHON_DIGEST, OCI_MANIFEST)


def test_basic_auth_from_docker_config_env(htpasswd_registry, tmp_path, monkeypatch):
    # `docker login` against an http registry writes the key with its scheme; it is the same registry.
    write_docker_config(tmp_path / "dockercfg" / "config.json",
                        {"auths": {f"http://{htpasswd_registry.host}": {"username": "alice", "password": "s3cret"}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dockercfg"))
    opened = open_image(f"{htpasswd_registry.host}/debian12-multiarch:1",
                        OpenOptions(insecure=True, platform=Platform.parse("linux/arm64")))
    try:
        assert opened.image.manifest_digest == MULTIARCH["arm64"]
        assert walk(opened) > 100  # blobs need the credentials too
    finally:
        opened.close()


@pytest.mark.parametrize(("doc", "expected"), [
    ({}, "asks for credentials and none are configured.*docker login"),
    ({"auths": {"{host}": {"username": "alice", "password": "wrong"}}}, "refused the credentials"),
    ({"auths": {"{host}": {}}, "credsStore": "desktop"}, "docker-credential-desktop.*does not run"),
    ({"credHelpers": {"{host}": "ecr-login"}}, "docker-credential-ecr-login"),
])
def test_basic_auth_failures_are_clear(htpasswd_registry, tmp_path, doc, expected):
    text = json.dumps(doc).replace("{host}", htpasswd_registry.host)
    config = tmp_path / "config.json"
    config.write_text(text)
    with pytest.raises(AuthError, match=expected) as err:
        open_image(f"{htpasswd_registry.host}/debian12-python:1",
                   OpenOptions(insecure=True, docker_config=str(config)))
    assert "\n" not in str(err.value)


# -- bearer tokens: the real registry's `auth: token`, verifying the tokens of a tiny token server ---


@pytest.fixture(scope="module")
def token_registry(registry, tmp_path_factory):
    work = tmp_path_factory.mktemp("token")
    tokens = TokenServer(work, users={"bob": "hunter2"})
    reg = start_registry(work, storage=registry.storage, readonly=True, auth=tokens.registry_auth())
    yield reg, tokens
    reg.stop()
    tokens.stop()


def test_bearer_token_flow(token_registry, tmp_path):
    reg, tokens = token_registry
    config = write_docker_config(tmp_path / "config.json", {"auths": {reg.host: basic_auth_entry("bob", "hunter2")}})
    options = OpenOptions(insecure=True, docker_config=str(config))
    tokens.requests.clear()
    opened = open_image(f"{reg.host}/debian12-python:1", options)
    try:
        assert opened.image.manifest_digest == PYTHON_DIGEST  # the config blob came with the token too
    finally:
        opened.close()
    # One token for the whole pull: asked for exactly as the registry's challenge said.
    assert tokens.requests == [{"path": "/token", "user": "bob", "query": {
        "service": [TokenServer.SERVICE], "scope": ["repository:debian12-python:pull"]}}]
    assert resolve_tag(f"{reg.host}/debian12-multiarch:1", options) == (MULTIARCH_INDEX, OCI_INDEX)


@pytest.mark.parametrize(("doc", "expected"), [
    ({}, "needs credentials"),
    ({"auths": {"{host}": {"username": "bob", "password": "wrong"}}}, "refused the credentials"),
])
def test_bearer_token_refused(token_registry, tmp_path, doc, expected):
    reg, _tokens = token_registry
    config = tmp_path / "config.json"
    config.write_text(json.dumps(doc).replace("{host}", reg.host))
    with pytest.raises(AuthError, match=expected):
        open_image(f"{reg.host}/debian12-python:1", OpenOptions(insecure=True, docker_config=str(config)))
