"""Identity rules against a real registry (Debian's docker-registry) holding the shared multi-arch index."""

from __future__ import annotations

from pathlib import Path

import pytest

from images.registry_helpers import htpasswd_line, push, start_registry
from keelwatch.config import InventorySettings, InventorySourceSettings, ScanSettings, Settings
from keelwatch.inventory.resolve import Resolver, parse_image_id
from keelwatch.inventory.sync import InventorySync, list_inventory

pytestmark = pytest.mark.registry

# The shared images keep their published digests when pushed (tests/images/test_registry.py).
PYTHON_DIGEST = "sha256:5129c28dfcd8447ce45c87e0dcdbbf8f64ace6b642d9c538774c6d4da3af479e"
GO_TOOLS_DIGEST = "sha256:4ade824e8434f61cd51db4de32af98ea8d90ee1011cc94ec2cdf6d8ff5ac95f5"
MULTIARCH_INDEX = "sha256:5ee811d0d6a0939cfd4bb86c28412b5833d1c607a2b64de9b003e5c750c8672a"
MULTIARCH = {
    "amd64": "sha256:1d05fe157ccff59f156a468cd54b579539610ccf04dd8673f359d2ea8f5da7fe",
    "arm64": "sha256:16b1dfaf4f9812d516f4514ce3d77a2254b69bed378ad4d636bdae5b49dc4d49",
}


@pytest.fixture(scope="module")
def registry(images_dir, tmp_path_factory):  # type: ignore[no-untyped-def]
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        push(reg, images_dir / "debian12-multiarch.oci.tar", "debian12-multiarch", "1", all_platforms=True)
        push(reg, images_dir / "debian12-python.oci.tar", "app", "1")
        push(reg, images_dir / "go-tools.oci.tar", "tools", "1")
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def resolver(registry):  # type: ignore[no-untyped-def]
    with Resolver(insecure_registries=[registry.host]) as r:
        yield r


def test_an_arm64_node_running_an_index_is_tied_to_the_arm64_manifest(registry, resolver) -> None:  # type: ignore[no-untyped-def]
    image = f"{registry.host}/debian12-multiarch:1"
    # containerd reports the digest it pulled: for a multi-arch tag, the index.
    got = resolver.resolve(image, stated_digest=MULTIARCH_INDEX, platform="linux/arm64")
    assert (got.digest, got.index_digest, got.error) == (MULTIARCH["arm64"], MULTIARCH_INDEX, None)
    assert got.reference == f"{registry.host}/debian12-multiarch:1" and got.tag_digest == MULTIARCH_INDEX
    amd = resolver.resolve(image, stated_digest=None, platform="linux/amd64")  # tag only
    assert (amd.digest, amd.index_digest, amd.tag_digest) == (MULTIARCH["amd64"], MULTIARCH_INDEX, MULTIARCH_INDEX)


def test_a_platform_manifest_digest_stays_as_it_is(registry, resolver) -> None:  # type: ignore[no-untyped-def]
    got = resolver.resolve(f"{registry.host}/debian12-multiarch@{MULTIARCH['arm64']}", stated_digest=None,
                           platform="linux/arm64")
    assert (got.digest, got.index_digest, got.tag_digest, got.error) == (MULTIARCH["arm64"], None, None, None)


def test_an_index_with_an_unknown_platform_is_unresolved_not_guessed(registry, resolver) -> None:  # type: ignore[no-untyped-def]
    got = resolver.resolve(f"{registry.host}/debian12-multiarch:1", stated_digest=None, platform=None)
    assert got.digest is None and got.index_digest == MULTIARCH_INDEX
    assert got.error == "unresolved: a multi-arch index, and the platform that runs it is not known"
    s390 = resolver.resolve(f"{registry.host}/debian12-multiarch:1", stated_digest=None, platform="linux/s390x")
    assert s390.digest is None and "no manifest for platform linux/s390x" in (s390.error or "")


def test_the_runtime_digest_beats_the_tag_and_drift_shows(registry, images_dir) -> None:  # type: ignore[no-untyped-def]
    from keelwatch.store.inventory import ContainerValues, StoredContainer

    push(registry, images_dir / "debian12-python.oci.tar", "drift", "1")
    image = f"{registry.host}/drift:1"
    with Resolver(insecure_registries=[registry.host]) as before:
        got = before.resolve(image, stated_digest=PYTHON_DIGEST, platform="linux/amd64")
    assert (got.digest, got.tag_digest, got.error) == (PYTHON_DIGEST, PYTHON_DIGEST, None)
    push(registry, images_dir / "go-tools.oci.tar", "drift", "1")  # the tag moves; the pod still runs the old one
    with Resolver(insecure_registries=[registry.host]) as after:
        got = after.resolve(image, stated_digest=PYTHON_DIGEST, platform="linux/amd64")
    assert (got.digest, got.tag_digest, got.error) == (PYTHON_DIGEST, GO_TOOLS_DIGEST, None)
    values = ContainerValues("k", "", "", "", "", "", "", "", "container", image, got.reference, "", got.digest,
                             got.index_digest, got.tag_digest, None, "", "running", {}, {}, "", "", "", None, None)
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    assert StoredContainer("s", values, now, now, None).drift


def test_unresolvable_tags_are_recorded(registry, resolver) -> None:  # type: ignore[no-untyped-def]
    missing = resolver.resolve(f"{registry.host}/app:nope", stated_digest=None, platform="linux/amd64")
    assert missing.digest is None and missing.error is not None
    assert missing.error.startswith("unresolved: ") and "no such image or tag" in missing.error
    bad = resolver.resolve("Not A Reference", stated_digest=None, platform=None)
    assert bad.reference is None and bad.error is not None and bad.error.startswith("invalid reference: ")


def test_answers_are_cached(registry, resolver) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        resolver.resolve(f"{registry.host}/debian12-multiarch:1", stated_digest=None, platform="linux/arm64")
    assert resolver.requests == 2  # one tag HEAD, one index GET
    resolver.resolve(f"{registry.host}/debian12-multiarch:1", stated_digest=None, platform="linux/amd64")
    assert resolver.requests == 2


def test_a_registry_that_refuses_is_recorded_on_the_container(registry, tmp_path: Path, store) -> None:  # type: ignore[no-untyped-def]
    secured = start_registry(tmp_path / "auth", storage=registry.storage, auth={
        "htpasswd": {"realm": "keelwatch-tests", "path": str(_htpasswd(tmp_path))}})
    try:
        cmdb = tmp_path / "cmdb.csv"
        cmdb.write_text("cluster,namespace,workload_kind,workload,pod,container,image,digest\n"
                        f"prod,shop,Deployment,app,app-1,app,{secured.host}/app:1,\n"
                        f"prod,shop,Deployment,tools,tools-1,tools,{registry.host}/tools:1,\n")
        source = InventorySourceSettings(name="cmdb", kind="static", path=str(cmdb), platform="linux/amd64")
        settings = Settings(inventory=InventorySettings(sources=[source]),
                            scan=ScanSettings(insecure_registries=[registry.host, secured.host]))
        sync = InventorySync(store, settings)
        (report,) = sync.sync()
        sync.close()
        assert (report.status, report.containers, report.unresolved) == ("ok", 2, 1)
        rows = {r.values.pod: r.values for r in list_inventory(store)}
        assert rows["tools-1"].digest == GO_TOOLS_DIGEST and rows["tools-1"].resolution_error is None
        assert rows["app-1"].digest is None
        error = rows["app-1"].resolution_error
        assert error.startswith(f"unresolved: {secured.host} asks for credentials and none are configured")
        assert [r.values.pod for r in list_inventory(store, unresolved=True)] == ["app-1"]
    finally:
        secured.stop()


def _htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    path.write_text(htpasswd_line("reader", "secret"))
    return path


@pytest.mark.parametrize(("image_id", "expected"), [
    ("docker.io/library/nginx@sha256:" + "a" * 64, ("docker.io/library/nginx", "sha256:" + "a" * 64)),
    ("docker-pullable://nginx@sha256:" + "a" * 64, ("nginx", "sha256:" + "a" * 64)),
    ("sha256:" + "a" * 64, (None, None)),  # a config digest names nothing in a registry
    ("docker://sha256:" + "a" * 64, (None, None)),
    ("", (None, None)),
    ("nginx@sha256:short", (None, None)),
])
def test_image_ids(image_id: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_image_id(image_id) == expected
