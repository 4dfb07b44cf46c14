"""Runtime SBOM verification: in-use packages, unpackaged code and drift, on a small tree and a real image."""

import hashlib
import io
import json
import tarfile
from functools import cache
from pathlib import Path

import pytest

from keelwatch.model import Package
from keelwatch.runtime.layerfiles import ImageFiles, list_image_files
from keelwatch.runtime.verify import resolve, verify


def pkg(name, *files, ecosystem="Debian:12", location=""):
    return Package(ecosystem=ecosystem, name=name, version="1.0", files=files, location=location)


def test_resolve_follows_links_inside_the_image():
    links = {"bin": "usr/bin", "usr/bin/sh": "dash", "lib64/ld.so": "/lib/x/ld-2.so", "lib": "usr/lib",
             "loop/a": "b", "loop/b": "a", "etc/up": "../../../../usr/bin/dash"}
    assert resolve("bin/sh", links) == "usr/bin/dash"
    assert resolve("lib64/ld.so", links) == "usr/lib/x/ld-2.so"
    assert resolve("etc/up", links) == "usr/bin/dash"  # ".." stops at the image's root
    assert resolve("loop/a", links).startswith("loop/")  # a loop ends, it does not hang
    assert resolve("usr/./bin//dash", {}) == "usr/bin/dash"


def test_classification_on_a_small_image():
    image = ImageFiles(
        files={"usr/bin/dash", "usr/lib/x/libz.so.1.2", "app/node_modules/left-pad/index.js",
               "app/node_modules/left-pad/node_modules/inner/index.js", "app/server.js", "usr/bin/python3"},
        links={"bin": "usr/bin", "usr/bin/sh": "dash", "usr/lib/x/libz.so.1": "libz.so.1.2"},
    )
    dash = pkg("dash", "bin/dash", "bin/sh")  # dpkg lists the paths as shipped, before merged /usr
    zlib = pkg("zlib1g", "usr/lib/x/libz.so.1.2", "usr/lib/x/libz.so.1")
    left_pad = pkg("left-pad", ecosystem="npm", location="app/node_modules/left-pad/package.json")
    inner = pkg("inner", ecosystem="npm", location="app/node_modules/left-pad/node_modules/inner/package.json")
    result = verify(
        ["/bin/sh", "/usr/bin/dash", "/usr/lib/x/libz.so.1", "/app/node_modules/left-pad/index.js",
         "/app/node_modules/left-pad/node_modules/inner/index.js", "/app/server.js", "/plugins/evil.so",
         "/usr/bin/python3 (deleted)", "/memfd:payload (deleted)", "/tmp/x"],
        [dash, zlib, left_pad, inner], image)
    assert [(u.package.name, u.paths) for u in result.in_use] == [
        ("dash", ("/bin/sh", "/usr/bin/dash")),
        ("zlib1g", ("/usr/lib/x/libz.so.1",)),
        ("inner", ("/app/node_modules/left-pad/node_modules/inner/index.js",)),
        ("left-pad", ("/app/node_modules/left-pad/index.js",)),
    ]
    assert result.unpackaged == ["/app/server.js"]
    assert result.drift == ["/memfd:payload (deleted)", "/plugins/evil.so", "/tmp/x", "/usr/bin/python3 (deleted)"]
    doc = result.to_json()
    assert doc["drift"][0] == {"path": "/memfd:payload (deleted)", "severity": "high"}
    assert doc["in_use_packages"][0]["name"] == "dash" and doc["unpackaged"] == ["/app/server.js"]


@cache
def debian12_python(images_dir: Path):
    from keelwatch.catalog import CATALOGERS
    from keelwatch.catalog.walker import catalog_image
    from keelwatch.images import open_image

    ref = f"oci-archive:{images_dir}/debian12-python.oci.tar"
    return catalog_image(open_image(ref), CATALOGERS), list_image_files(open_image(ref))


@pytest.mark.datasets
def test_verification_on_the_shared_debian12_python_image(images_dir):
    catalog, files = debian12_python(images_dir)
    assert "usr/bin/python3.11" in files.files and files.links["lib64/ld-linux-x86-64.so.2"].startswith("/")
    seen = [
        "/usr/bin/python3.11",  # the interpreter, as /proc/PID/exe shows it
        "/lib64/ld-linux-x86-64.so.2",  # the loader, through an absolute symlink
        "/lib/x86_64-linux-gnu/libz.so.1",  # a soname link to the real file
        "/usr/local/lib/python3.11/dist-packages/yaml/__init__.py",  # a pip-installed package's module
        "/usr/local/lib/python3.11/dist-packages/django/__init__.py",
        "/var/lib/dpkg/status",  # in the image, owned by nobody
        "/plugins/libevil.so",  # from a volume: not in the image
        "/usr/local/lib/python3.11/dist-packages/backdoor.py",  # written at runtime next to real code
    ]
    result = verify(seen, catalog.packages, files)
    used = {(u.package.ecosystem, u.package.name): u.paths for u in result.in_use}
    assert used[("Debian:12", "python3.11-minimal")] == ("/usr/bin/python3.11",)
    assert used[("Debian:12", "libc6")] == ("/lib64/ld-linux-x86-64.so.2",)
    assert used[("Debian:12", "zlib1g")] == ("/lib/x86_64-linux-gnu/libz.so.1",)
    assert used[("PyPI", "PyYAML")] == ("/usr/local/lib/python3.11/dist-packages/yaml/__init__.py",)
    assert used[("PyPI", "Django")] == ("/usr/local/lib/python3.11/dist-packages/django/__init__.py",)
    assert len(used) == 5
    assert result.unpackaged == ["/var/lib/dpkg/status"]
    assert result.drift == ["/plugins/libevil.so", "/usr/local/lib/python3.11/dist-packages/backdoor.py"]


def layer(*entries) -> bytes:
    """An uncompressed layer tar: (name, data) for files, (name, "->target") for symlinks, (name, None) for dirs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif data.startswith("->"):
                info.type, info.linkname = tarfile.SYMTYPE, data[2:]
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data.encode()))
    return buf.getvalue()


def oci_layout(root: Path, layers: list[bytes]) -> Path:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {
        "type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(raw).hexdigest()}" for raw in layers]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(raw)}
                                      for raw in layers]}).encode()
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(manifest),
         "platform": {"os": "linux", "architecture": "amd64"}}]}))
    return root


def test_layers_are_listed_with_whiteouts_opaque_dirs_and_replacements(tmp_path):
    from keelwatch.images import open_image

    base = layer(("usr/bin/tool", "x"), ("opt/app/a.py", "a"), ("opt/app/b.py", "b"), ("etc/conf", "c"),
                 ("bin", "->usr/bin"), ("var/cache/x", "x"), ("srv/data", "file, then a directory"))
    upper = layer(("opt/app/.wh..wh..opq", ""), ("opt/app/c.py", "c"), ("etc/.wh.conf", ""),
                  ("var/cache/y", "y"), ("usr/bin/tool2", "->tool"), ("srv/data", None), ("srv/data/z", "z"))
    listing = list_image_files(open_image(f"oci-dir:{oci_layout(tmp_path / 'img', [base, upper])}"))
    assert listing.files == {"usr/bin/tool", "opt/app/c.py", "var/cache/x", "var/cache/y", "srv/data/z"}
    assert listing.links == {"bin": "usr/bin", "usr/bin/tool2": "tool"}
