"""The docker source through the ``docker`` SDK against Podman's Docker-compatible API.

``podman system service`` listens on a unix socket under the test's temp dir (vfs storage, its own
root), images come from the real test registry, and ``podman create`` makes real container records
(state ``created``: containers cannot start in this sandbox, and inventory needs no more).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from images.registry_helpers import push, start_registry
from keelwatch.config import InventorySettings, InventorySourceSettings, ScanSettings, Settings
from keelwatch.inventory.base import InventoryError
from keelwatch.inventory.docker import DockerSource
from keelwatch.inventory.sync import InventorySync, list_inventory

pytestmark = pytest.mark.registry

GO_TOOLS_DIGEST = "sha256:4ade824e8434f61cd51db4de32af98ea8d90ee1011cc94ec2cdf6d8ff5ac95f5"


def require_podman() -> str:
    path = shutil.which("podman")
    if path is None:
        reason = "podman is not installed (`make test` installs it from Debian)"
        if os.environ.get("KEELWATCH_REQUIRE_DATASETS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@dataclass
class Podman:
    binary: str
    root: Path
    socket: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def run(self, *args: str) -> str:
        command = [self.binary, "--root", str(self.root / "storage"), "--runroot", str(self.root / "run"),
                   "--storage-driver", "vfs", "--tmpdir", str(self.root / "tmp"), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=180,
                              env={**os.environ, "XDG_RUNTIME_DIR": str(self.root / "xdg")})
        if done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout.strip()


@pytest.fixture(scope="module")
def podman(tmp_path_factory, images_dir) -> Iterator[tuple[Podman, str]]:  # type: ignore[no-untyped-def]
    binary = require_podman()
    root = tmp_path_factory.mktemp("podman")
    for sub in ("storage", "run", "tmp", "xdg"):
        (root / sub).mkdir()
    registry = start_registry(root / "registry")
    push(registry, images_dir / "go-tools.oci.tar", "tools", "1")
    socket = root / "podman.sock"
    log = (root / "service.log").open("wb")
    process = subprocess.Popen(
        [binary, "--root", str(root / "storage"), "--runroot", str(root / "run"), "--storage-driver", "vfs",
         "--tmpdir", str(root / "tmp"), "system", "service", "--time=0", f"unix://{socket}"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "XDG_RUNTIME_DIR": str(root / "xdg")})
    deadline = time.monotonic() + 20
    while not socket.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    service = Podman(binary, root, socket, process)
    try:
        if not socket.exists():
            raise RuntimeError(f"podman system service did not start: {(root / 'service.log').read_text()[-2000:]}")
        image = f"{registry.host}/tools:1"
        service.run("pull", "--tls-verify=false", image)
        service.run("create", "--name", "shop-web-1", "--label", "com.docker.compose.project=shop",
                    "--label", "com.docker.compose.service=web", "--label", "team=storefront", image, "/bin/true")
        service.run("create", "--name", "adhoc", image, "/bin/true")
        yield service, registry.host
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        registry.stop()


def source(url: str, **kw) -> InventorySourceSettings:  # type: ignore[no-untyped-def]
    return InventorySourceSettings(name="build-host", kind="docker", url=url, **kw)


def test_containers_with_their_repo_digests_and_compose_workloads(podman) -> None:  # type: ignore[no-untyped-def]
    service, registry = podman
    docker_source = DockerSource(source(service.url, team=["label:team"]))
    snapshot = docker_source.snapshot()
    docker_source.close()
    assert snapshot.problems == []
    records = {r.pod: r for r in snapshot.records}
    assert sorted(records) == ["adhoc", "shop-web-1"]
    web = records["shop-web-1"]
    assert (web.cluster, web.namespace, web.workload_kind, web.workload, web.container) == (
        "build-host", "shop", "compose-service", "web", "web")
    assert (web.image, web.digest, web.platform, web.state, web.team) == (
        f"{registry}/tools:1", GO_TOOLS_DIGEST, "linux/amd64", "created", "storefront")
    assert web.image_id.startswith("sha256:") and web.image_id != GO_TOOLS_DIGEST  # the config digest
    assert len(web.instance) == 64
    adhoc = records["adhoc"]
    assert (adhoc.namespace, adhoc.workload_kind, adhoc.workload) == ("", "container", "adhoc")


def test_sync_resolves_through_the_registry_and_ends_removed_containers(podman, store) -> None:  # type: ignore[no-untyped-def]
    service, registry = podman
    settings = Settings(inventory=InventorySettings(sources=[source(service.url)]),
                        scan=ScanSettings(insecure_registries=[registry]))
    sync = InventorySync(store, settings)
    (report,) = sync.sync()
    assert (report.status, report.containers, report.unresolved) == ("ok", 2, 0)
    rows = {r.values.pod: r.values for r in list_inventory(store)}
    assert rows["adhoc"].digest == GO_TOOLS_DIGEST and rows["adhoc"].resolution_error is None
    assert rows["adhoc"].reference == f"{registry}/tools:1"
    service.run("rm", "adhoc")
    try:
        (report,) = sync.sync()
        assert report.counts.ended == 1
        assert [r.values.pod for r in list_inventory(store)] == ["shop-web-1"]
    finally:
        service.run("create", "--name", "adhoc", f"{registry}/tools:1", "/bin/true")
        sync.close()


def test_an_engine_that_is_not_there(tmp_path: Path, store) -> None:  # type: ignore[no-untyped-def]
    url = f"unix://{tmp_path / 'nothing.sock'}"
    with pytest.raises(InventoryError, match=r"inventory build-host: Docker API at unix://.*nothing\.sock"):
        DockerSource(source(url)).snapshot()
    sync = InventorySync(store, Settings(inventory=InventorySettings(sources=[source(url)])))
    (report,) = sync.sync()
    assert report.status == "failed" and "is the engine running" in report.error
