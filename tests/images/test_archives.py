"""Identity and layers of the real shared images, through every local source kind."""

import subprocess

import pytest

from keelwatch.errors import ImageError
from keelwatch.images import open_image
from keelwatch.model import Platform

from .builders import file, oci_dir, tar_bytes

DIGESTS = {
    "debian12-python": "sha256:5129c28dfcd8447ce45c87e0dcdbbf8f64ace6b642d9c538774c6d4da3af479e",
    "debian12-python-v2": "sha256:0a5d3ecea4194db6be1aecc4e9fe610fd2316241158730f2368c567055073297",
    "debian11-openssl": "sha256:3ecd7d6e7b373d76ee525f4ee2d1b66945a01fa50926fdee1bb137ee771922a8",
    "go-tools": "sha256:4ade824e8434f61cd51db4de32af98ea8d90ee1011cc94ec2cdf6d8ff5ac95f5",
    "node-app": "sha256:b844d3178314233c85053380ffeab506306a98fa55edbd2f1fa603f94fa1e621",
    "java-app": "sha256:b0944342a89f358e8bb293d0f387df2f8c865484c08c9a5f0ac28e50fc383453",
}
MULTIARCH_INDEX = "sha256:5ee811d0d6a0939cfd4bb86c28412b5833d1c607a2b64de9b003e5c750c8672a"
MULTIARCH = {
    "amd64": "sha256:1d05fe157ccff59f156a468cd54b579539610ccf04dd8673f359d2ea8f5da7fe",
    "arm64": "sha256:16b1dfaf4f9812d516f4514ce3d77a2254b69bed378ad4d636bdae5b49dc4d49",
}


def walk(opened):
    """Read every layer to the end (which verifies each digest); count entries."""
    count = 0
    for cm in opened.layer_contents():
        with cm as layer:
            count += sum(1 for _ in layer.entries())
            layer.finish()
    return count


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_oci_archive_identity_matches_the_published_digest(images_dir, name):
    opened = open_image(f"oci-archive:{images_dir / name}.oci.tar")
    try:
        assert opened.image.manifest_digest == DIGESTS[name]
        assert opened.image.index_digest is None
        assert opened.image.platform == Platform("linux", "amd64")
        assert opened.image.config_digest.startswith("sha256:")
        assert all(layer.diff_id.startswith("sha256:") for layer in opened.image.layers)
        assert walk(opened) > 0
    finally:
        opened.close()


def test_docker_archive_reads_the_same_layers(images_dir):
    oci = open_image(f"oci-archive:{images_dir}/debian12-python.oci.tar")
    docker = open_image(f"docker-archive:{images_dir}/debian12-python.oci.tar")
    try:
        # A docker archive has no manifest of its own: the computed one differs, the content does not.
        assert docker.image.manifest_digest != oci.image.manifest_digest
        assert docker.image.config_digest == oci.image.config_digest
        assert [la.digest for la in docker.image.layers] == [la.digest for la in oci.image.layers]
        assert [la.diff_id for la in docker.image.layers] == [la.diff_id for la in oci.image.layers]
        assert walk(docker) == walk(oci)
        # Computed, so stable: the same archive gives the same identity every time.
        again = open_image(f"docker-archive:{images_dir}/debian12-python.oci.tar")
        assert again.image.manifest_digest == docker.image.manifest_digest
        again.close()
    finally:
        oci.close()
        docker.close()


@pytest.mark.parametrize(("platform", "arch"), [(None, "amd64"), ("linux/amd64", "amd64"), ("linux/arm64", "arm64"),
                                                ("linux/arm64/v8", "arm64")])
def test_multiarch_index_platform_choice(images_dir, platform, arch):
    from keelwatch.images.source import OpenOptions

    options = OpenOptions(platform=Platform.parse(platform) if platform else None)
    opened = open_image(f"oci-archive:{images_dir}/debian12-multiarch.oci.tar", options)
    try:
        assert opened.image.index_digest == MULTIARCH_INDEX
        assert opened.image.manifest_digest == MULTIARCH[arch]
        assert opened.image.platform.architecture == arch
        walk(opened)
    finally:
        opened.close()


def test_multiarch_unknown_platform_names_the_available_ones(images_dir):
    from keelwatch.images.source import OpenOptions

    with pytest.raises(ImageError, match=r"linux/s390x.*linux/amd64.*linux/arm64"):
        open_image(f"oci-archive:{images_dir}/debian12-multiarch.oci.tar",
                   OpenOptions(platform=Platform.parse("linux/s390x")))


def test_multiarch_is_not_a_docker_archive(images_dir):
    with pytest.raises(ImageError, match="not a docker archive"):
        open_image(f"docker-archive:{images_dir}/debian12-multiarch.oci.tar")


def test_oci_dir_of_an_unpacked_archive_has_the_same_identity(images_dir, tmp_path):
    subprocess.run(["tar", "-xf", str(images_dir / "node-app.oci.tar"), "-C", str(tmp_path)], check=True)
    opened = open_image(f"oci-dir:{tmp_path}")
    try:
        assert opened.image.manifest_digest == DIGESTS["node-app"]
        walk(opened)
    finally:
        opened.close()


def test_dir_source_reads_a_root_filesystem(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (root / "etc" / "link").symlink_to("/etc/shadow")  # must not be followed out of the root
    first = open_image(f"dir:{root}")
    paths = set()
    for cm in first.layer_contents():
        with cm as layer:
            for entry in layer.entries():
                paths.add((entry.path, entry.type))
    assert ("etc/os-release", "file") in paths and ("etc/link", "symlink") in paths
    # Identity follows content: a changed tree is a different digest, an unchanged one is not.
    assert open_image(f"dir:{root}").image.manifest_digest == first.image.manifest_digest
    (root / "etc" / "new").write_text("x")
    assert open_image(f"dir:{root}").image.manifest_digest != first.image.manifest_digest


def test_zstd_and_uncompressed_layers(tmp_path):
    layer = tar_bytes([file("etc/os-release", 'ID=alpine\nVERSION_ID=3.19.1\n')])
    for kind in ("zstd", "none", "gzip"):
        opened = open_image(f"oci-dir:{oci_dir(tmp_path / kind, [layer], kind=kind)}")
        for cm in opened.layer_contents():
            with cm as contents:
                entries = list(contents.entries())
                contents.finish()
        assert [e.path for e in entries] == ["etc/os-release"]
